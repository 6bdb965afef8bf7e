"""`policy.set`: how the revenue of a model or service is shared (the latest one applies).

```json
{"asset": "sha256:…", "operator": "party:…", "pool": "1/5",
 "roles": {"data": "3/5", "annotation": "1/5", "code": "1/10", "upstream_model": "1/10"},
 "weighting": {"data": "valuation", "annotation": "volume", "code": "declared",
               "upstream_model": "valuation"},
 "negative_values": "clip", "missing_valuation": "refuse", "declared": {},
 "floor": "0", "cap": "1", "upstream": {"mode": "dilute"}, "minimum_payout": 1000}
```

* `pool`: the contributors' part of what reaches the asset; the rest goes to `operator`.
* `roles`: how the pool splits between roles; their ratios sum to 1. The roles are the
  contribution roles (what the model was made from) and, from version 2, `evaluation`:
  the data the model was scored on, which earns only when the policy names it.
* `weighting`, per role, decides each input asset's part of that role's money:
  `valuation` (the model's recorded valuation), `declared` (the weights in `declared`,
  1 where none is given), `equal`, or `volume` (the asset's registered size).
* `negative_values`: `clip` (a harmful input gets zero) or `shift` (values shifted so the
  lowest is zero).
* `missing_valuation`: `refuse`, or `declared` to fall back to declared weights.
* `floor` / `cap`: bounds on any one input's part of a role, as ratios of it.
* `upstream`: `dilute` (an upstream model's part is shared under its own policy, so the
  share of an ancestor shrinks at every level) or `fixed` with a `share`: every ancestor
  model, at any depth, receives that ratio of what reaches this asset.
* `minimum_payout`: balances below it (minor units) are carried to the next payout.
* `per`: `party` or `input` (written by every policy since quotepart 0.x; absent from older
  bodies). Whether a role's inputs are weighed, clipped, floored and capped one by one
  (`input`) or grouped by the party that registered them (`party`), so that splitting a
  contribution into several assets, or registering sybil copies, gains nothing. A policy
  that carries `per` also follows the robust rules: a floor is paid only where a valuation
  exceeds twice its standard error, `negative_values` is `clip` (`shift` is refused: a
  harmful sybil input could raise every other share with it), and data inputs found to
  copy an earlier asset's records (`overlap.detected`) are discounted in favour of it.
  A body without `per` keeps the rules it was written under: per input, floors for any
  positive weight, `shift` allowed, overlaps not read — so every recorded allocation
  recomputes exactly (docs/sharing.md, "Gaming-resistant sharing").
"""

from __future__ import annotations

from dataclasses import field
from fractions import Fraction
from typing import Any, Self

from quotepart.errors import PolicyError
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind, format_fraction
from quotepart.log.kinds.contribution import CONTRIBUTION_ROLES

WEIGHTINGS = frozenset({"declared", "equal", "valuation", "volume"})
NEGATIVE_VALUES = frozenset({"clip", "shift"})
MISSING_VALUATION = frozenset({"declared", "refuse"})
UPSTREAM_MODES = frozenset({"dilute", "fixed"})
PER = frozenset({"input", "party"})
POLICY_ROLES = CONTRIBUTION_ROLES | {"evaluation"}
"""Roles a policy may split its pool between: the inputs a model was made from, by
role, and `evaluation`, the data it was evaluated with (a run's `uses`)."""


def upcast_policy_v1(body: RawBody) -> RawBody:
    """v1 policies are v2 policies that pay no evaluation data: v1 could not name it, so a
    v1 body that does is refused, as a v1 reader refused it."""
    roles = body.get("roles")
    if isinstance(roles, dict) and "evaluation" in roles:
        raise PolicyError(
            "a version 1 policy names role 'evaluation', which only version 2 knows",
            hint="write the policy with this version of quotepart",
        )
    return dict(body)


@entry_kind("policy.set", version=2, upcasters={1: upcast_policy_v1})
class PolicySet(KindBody):
    asset: Digest
    operator: PartyId
    pool: Fraction
    roles: dict[str, Fraction]
    weighting: dict[str, str]
    negative_values: str = "clip"
    missing_valuation: str = "refuse"
    declared: dict[Digest, Fraction] = field(default_factory=dict)
    floor: Fraction = Fraction(0)
    cap: Fraction = Fraction(1)
    upstream_mode: str = "dilute"
    upstream_share: Fraction = Fraction(0)  # per ancestor, in `fixed` mode
    minimum_payout: int = 0
    per: str | None = None  # None: a body written before `per` existed (the legacy rules)

    @property
    def robust(self) -> bool:
        """Whether the gaming-resistant rules apply: every body that names `per` does."""
        return self.per is not None

    def to_body(self) -> RawBody:
        upstream: RawBody = {"mode": self.upstream_mode}
        if self.upstream_mode == "fixed":
            upstream["share"] = format_fraction(self.upstream_share)
        return {
            "asset": str(self.asset),
            "operator": str(self.operator),
            "pool": format_fraction(self.pool),
            "roles": {role: format_fraction(r) for role, r in sorted(self.roles.items())},
            "weighting": dict(sorted(self.weighting.items())),
            "negative_values": self.negative_values,
            "missing_valuation": self.missing_valuation,
            "declared": {str(a): format_fraction(w) for a, w in sorted(self.declared.items())},
            "floor": format_fraction(self.floor),
            "cap": format_fraction(self.cap),
            "upstream": upstream,
            "minimum_payout": self.minimum_payout,
        } | ({} if self.per is None else {"per": self.per})

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "asset", "operator", "pool", "roles", "weighting", "negative_values",
            "missing_valuation", "declared", "floor", "cap", "upstream", "minimum_payout", "per",
        )  # fmt: skip
        pool_text = body.get("pool")
        if isinstance(pool_text, str) and _over_one(pool_text):
            raise PolicyError(
                f"the contributors' pool is {pool_text}, more than 100 % of the revenue",
                hint="pool is a ratio from 0 to 1, e.g. '1/5' for 20 %",
            )
        roles_raw = read.mapping("roles")
        unknown = sorted(set(roles_raw) - POLICY_ROLES)
        if unknown:
            raise PolicyError(
                f"the policy names unknown role(s) {', '.join(map(repr, unknown))}",
                hint=f"roles are {', '.join(sorted(POLICY_ROLES))}",
            )
        roles = {role: read.ratio_value(f"roles[{role}]", v) for role, v in roles_raw.items()}
        if sum(roles.values()) != 1:
            raise PolicyError(
                "the role split sums to "
                f"{format_fraction(sum(roles.values(), Fraction(0)))}, not 1",
                hint="give each role a ratio of the pool, e.g. data 3/5, annotation 2/5",
            )
        weighting = read.mapping("weighting")
        if set(weighting) != set(roles) or any(w not in WEIGHTINGS for w in weighting.values()):
            raise PolicyError(
                f"weighting must name one of {', '.join(sorted(WEIGHTINGS))} for each role "
                f"of the split ({', '.join(sorted(roles))}), got {weighting!r}",
                hint="e.g. {'data': 'valuation', 'annotation': 'volume'}",
            )
        declared = {
            Digest.parse(asset): read.ratio_value(f"declared[{asset}]", w, at_most_one=False)
            for asset, w in read.mapping("declared", optional=True).items()
        }
        floor = read.ratio("floor")
        cap = read.ratio("cap")
        if floor > cap:
            raise PolicyError(
                f"floor {format_fraction(floor)} is above cap {format_fraction(cap)}",
                hint="a floor is at most the cap: lower the floor or raise the cap",
            )
        per = body.get("per")
        if per is not None and per not in PER:
            raise PolicyError(
                f"per must be 'party' or 'input', got {per!r}",
                hint="'party' groups a role's inputs by their registrant (the default for "
                "valuation-weighted roles); 'input' weighs each asset alone",
            )
        if per is not None and body.get("negative_values") == "shift":
            raise PolicyError(
                "negative_values 'shift' is no longer accepted: adding a harmful input "
                "lowers the minimum and raises every other input's share with it",
                hint="use negative_values 'clip' (a harmful input gets zero); policies "
                "recorded with 'shift' before keep recomputing as they were",
            )
        upstream = read.mapping("upstream")
        mode = upstream.get("mode")
        if mode not in UPSTREAM_MODES or set(upstream) != (
            {"mode", "share"} if mode == "fixed" else {"mode"}
        ):
            raise PolicyError(
                f"upstream must be {{'mode': 'dilute'}} or {{'mode': 'fixed', 'share': '1/20'}}, "
                f"got {upstream!r}",
                hint="dilute: ancestors share under their own policies; fixed: each ancestor "
                "receives a set ratio",
            )
        share: Any = Fraction(0)
        if mode == "fixed":
            share = read.ratio_value("upstream.share", upstream["share"])
        return cls(
            asset=Digest.parse(read.text("asset")),
            operator=PartyId.parse(read.text("operator")),
            pool=read.ratio("pool"),
            roles=roles,
            weighting=dict(weighting),
            negative_values=read.choice("negative_values", NEGATIVE_VALUES),
            missing_valuation=read.choice("missing_valuation", MISSING_VALUATION),
            declared=declared,
            floor=floor,
            cap=cap,
            upstream_mode=str(mode),
            upstream_share=share,
            minimum_payout=read.integer("minimum_payout"),
            per=None if per is None else str(per),
        )


def _over_one(text: str) -> bool:
    try:
        return Fraction(text) > 1
    except (ValueError, ZeroDivisionError):
        return False
