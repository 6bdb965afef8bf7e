"""Recursive allocation: one revenue, split exactly, upstream through the lineage.

```
revenue ─► service ─► model ──policy──► retained by the operator (1 − pool)
                        │                pool ─► roles ─► input assets (valuation,
                        │                                 declared, equal or volume)
                        │                                   ├─► contributors (declared shares)
                        │                                   └─► an upstream model: again,
                        │                                       under its own policy
```

Every split is `quotepart.money.split_exact`, so each level conserves the money to
the minor unit and the result does not depend on the order facts were read in. Each
line of the result carries its trace: the entries (by leaf hash) its money went
through, from the revenue to the contribution.

Money that reaches an asset along several paths (a dataset used by two upstream models)
is pooled there and split once: nodes are processed in topological order, so a lineage
with many shared ancestors costs time in its number of edges, not of paths. A line's
trace follows the first path (in digest order) that reached its asset and says how
many paths there were.

Only what a model was made from earns: the inputs of the runs that made it (and what it
derives from). What a run used without learning from it (its `uses`: evaluation data,
code, a tokenizer, a reference set) earns nothing, unless the model's policy gives the
role `evaluation` a part of the pool: then the data the model was evaluated with shares
that part, as any other role's inputs do.

Where the money of a step has nobody to go to (a role with no inputs, inputs all
valued at zero, every contributor's consent withdrawn), it stays with the operator of
the policy that sent it, and the allocation says so in a note.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import TypeVar

from quotepart.allocation.facts import Fact, SharingFacts
from quotepart.errors import (
    ConservationError,
    LineageCycleError,
    PolicyError,
    VerificationError,
)
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import (
    AssetRegistered,
    ContributionRecorded,
    OverlapDetected,
    PolicySet,
    ValuationRecorded,
    format_fraction,
)
from quotepart.money import split_exact

ROLE_OF_KIND = {
    "dataset": "data",
    "cohort": "data",
    "labelling_batch": "annotation",
    "compute_grant": "compute",
    "model": "upstream_model",
    "service": "upstream_model",
}
"""The role in which an input asset takes part in a model's split."""

DATA_ROLES = frozenset({"data", "evaluation"})
"""Roles whose inputs are record sets: where an overlap with an earlier asset is credited."""


@dataclass(frozen=True, slots=True, order=True)
class SplitKey:
    """One part of a split, in tie-break order: by `rank`, then by `name`.

    `split_exact` gives a leftover minor unit that several parts tie for to the key that
    sorts first, so the ranks below are the allocation's tie-break order, written out.
    """

    rank: int
    name: str


RETAINED = SplitKey(0, "retained")
"""A model's split: what the operator keeps wins a tie first, ..."""
POOL = SplitKey(1, "pool")
"""... then the contributors' pool, ..."""
UPSTREAM_RANK = 2
"""... then the fixed upstream shares, one per ancestor model, in digest order."""

INPUT_RANK = 0
"""A role's split: the inputs, in digest order, win ties before ..."""
CAPPED_REST = SplitKey(1, "operator")
"""... what caps leave over, which goes to the operator."""

REGISTRANT_KEY = "~registrant"
"""An asset's split: contributions, keyed by their entry's leaf hash (lowercase hex), win
ties before the registrant's undeclared rest, as '~' sorts after every hex digit. A plain
string rather than a SplitKey, so that a million contributors need no key objects."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a line's trace: what the money went through, and the entry saying so."""

    what: str  # revenue, service, model, policy, valuation, role, dataset, …, contribution
    ref: str  # an id, a digest or a role name
    entry: str | None  # leaf hash (hex) of the entry behind this step, if one


@dataclass(frozen=True, slots=True)
class Line:
    party: PartyId
    amount_minor: int
    reason: str  # contribution, retained, registrant, unallocated
    via: tuple[Hop, ...]  # shared by every line paid at the same asset
    contribution: Hop | None = None  # the contribution entry, for contribution lines
    at: Digest | None = None  # the asset where it was paid out

    @property
    def trace(self) -> tuple[Hop, ...]:
        """Every step from the revenue to this line, naming the entries behind them."""
        return self.via if self.contribution is None else (*self.via, self.contribution)


@dataclass(slots=True)
class NodeFlow:
    """Money at one asset: `received` = `kept` (lines paid out here) + `passed` (sent upstream)."""

    received: int = 0
    kept: int = 0
    passed: int = 0


@dataclass(frozen=True, slots=True)
class _PaidAtAsset:
    """The contribution lines of one split, kept as the split left them (no object per line)."""

    asset: Digest
    via: tuple[Hop, ...]
    contributions: list[Fact[ContributionRecorded]]
    parts: dict[str, int]  # contribution entry -> minor units

    def lines(self, party: PartyId | None = None) -> list[Line]:
        return [
            Line(c.body.party, part, "contribution", self.via,
                 Hop("contribution", c.body.role, c.entry), self.asset)
            for c in self.contributions
            if (party is None or c.body.party == party) and (part := self.parts[c.entry])
        ]  # fmt: skip


ADJUSTMENT_KINDS = ("clipped", "capped", "floored", "no-floor", "discounted")
"""Why an input's part of a role differs from its plain proportional share (robust policies):
its value (its party's, under `per: party`) was below zero; its share was held at the cap;
raised to the floor; not raised to the floor, its value being within twice its error; or
its weight discounted for records an earlier asset holds (`overlap.detected`)."""


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One input of one role whose part a robust policy's rule changed, and why.

    `value` and `stderr` are what the rule was applied to: the input's weight (its value,
    size or 1) and standard error, or under `per: party` the sums over its registrant's
    inputs of the role. `amount_minor` is what the input received in the role;
    `before_minor` what plain proportional weighting would have paid it (rounded down;
    for `no-floor`, what the floor would have paid). `entries` are the leaf hashes the
    adjustment follows from: the policy, the valuation, the overlap entries.
    """

    party: PartyId  # the input's registrant
    asset: Digest  # the input
    model: Digest  # whose policy applied the rule
    role: str
    kind: str  # one of ADJUSTMENT_KINDS
    value: Fraction
    stderr: Fraction | None  # None where the weighting has no error bar
    amount_minor: int
    before_minor: int
    why: str
    entries: tuple[str, ...]

    def describe(self) -> str:
        """'capped: its party's share of data is held at the cap 1/5 ...; value 0.6 ± 0.01;
        paid 20000 where plain proportion gives 30000' (minor units)."""
        value = _shown(self.value)
        if self.stderr is not None and self.stderr > 0:
            value += f" ± {_shown(self.stderr)}"
        before = "the floor gives" if self.kind == "no-floor" else "plain proportion gives"
        return (
            f"{self.kind}: {self.why}; value {value}; paid {self.amount_minor} "
            f"where {before} {self.before_minor}"
        )


def _shown(number: Fraction) -> str:
    """A value or error bar for reading (6 significant digits; entries keep the exact text)."""
    return f"{float(number):.6g}"


@dataclass(frozen=True)
class Allocation:
    revenue: str
    currency: str
    total_minor: int
    amounts: dict[PartyId, int]  # positive amounts only, by party
    inputs: list[str]  # leaf hashes of every fact it was derived from
    notes: list[str]
    flows: dict[Digest, NodeFlow]  # what reached each asset, and where it went
    edges: dict[tuple[Digest | None, Digest], int]  # (from asset, or None for the revenue) -> to
    other_lines: list[Line]  # operators' parts, registrants' parts
    paid_at_assets: list[_PaidAtAsset]
    adjustments: list[Adjustment] = field(default_factory=list)  # robust policies only

    def adjustments_of(self, party: PartyId) -> list[Adjustment]:
        """Why the inputs `party` registered were paid other than in plain proportion."""
        return [a for a in self.adjustments if a.party == party]

    @property
    def lines(self) -> list[Line]:
        """Every line, built on demand: a million contributors need no million objects to be paid."""
        lines = list(self.other_lines)
        for batch in self.paid_at_assets:
            lines.extend(batch.lines())
        return lines

    def amount_of(self, party: PartyId) -> int:
        return self.amounts.get(party, 0)

    def paid_at(self) -> dict[tuple[Digest, PartyId], int]:
        """Minor units each party received at each asset: the last hop of a money-flow diagram."""
        paid: dict[tuple[Digest, PartyId], int] = {}
        for line in self.other_lines:
            assert line.at is not None  # every line is paid out at an asset
            key = (line.at, line.party)
            paid[key] = paid.get(key, 0) + line.amount_minor
        for batch in self.paid_at_assets:
            for contribution in batch.contributions:
                part = batch.parts[contribution.entry]
                if part:
                    key = (batch.asset, contribution.body.party)
                    paid[key] = paid.get(key, 0) + part
        return paid

    def lines_of(self, party: PartyId) -> list[Line]:
        lines = [line for line in self.other_lines if line.party == party]
        for batch in self.paid_at_assets:
            lines.extend(batch.lines(party))
        return lines


def allocate(facts: SharingFacts) -> Allocation:
    """Split the revenue in `facts` among every party its lineage reaches.

    Raises:
        PolicyError: a model without a policy, a missing valuation the policy does not
            allow to replace, fixed upstream shares above the pool, a volume-weighted
            input without a size.
        LineageCycleError: an asset that is its own ancestor.
        VerificationError: the facts name an asset they do not hold.
        ConservationError: the parts do not add up to the revenue, or an asset passed on
            or paid out other than what reached it (a bug; checked on every allocation).
    """
    return _Allocator(facts).run()


@dataclass(slots=True)
class _Arrival:
    amount: int
    trace: tuple[Hop, ...]
    paths: int


_Context = tuple[str, str, str]
"""("model", pass upstream "1"/"0", "") or ("asset", consent moment, operator)."""


class _Allocator:
    def __init__(self, facts: SharingFacts) -> None:
        self.facts = facts
        self.lines: list[Line] = []
        self.paid_at_assets: list[_PaidAtAsset] = []
        self.notes: list[str] = []
        self.default_moment = facts.revenue.timestamp
        self.pending: dict[Digest, dict[_Context, _Arrival]] = {}
        self.flows: dict[Digest, NodeFlow] = {}
        self.current: NodeFlow | None = None
        self.current_asset: Digest | None = None
        self.edges: dict[tuple[Digest | None, Digest], int] = {}
        self.consented_assets = {asset for _, asset in facts.consents}
        self._parents_cache: dict[Digest, list[tuple[Digest, Hop | None]]] = {}
        self._evaluated: dict[Digest, set[Digest]] = {}  # model -> its paid evaluation data
        self.adjustments: list[Adjustment] = []
        self._credited: dict[Digest, set[Digest]] = {}  # model -> earlier assets it may credit

    def run(self) -> Allocation:
        # Millions of small acyclic objects (lines, hops): the cyclic collector would walk
        # them again and again for nothing (6.2 s -> 3.9 s for 1M contributors).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if collecting:
                gc.enable()

    def _run(self) -> Allocation:
        revenue = self.facts.revenue
        body = revenue.body
        trace = (Hop("revenue", str(body.revenue), revenue.entry),)
        self._send(body.asset, ("model", "1", ""), body.amount_minor, trace)
        for digest in self._topological_order(body.asset):
            arrivals = self.pending.pop(digest, {})
            self.current = self.flows.setdefault(digest, NodeFlow())
            self.current_asset = digest
            for context in sorted(arrivals):
                arrival = arrivals[context]
                self.current.received += arrival.amount
                self._handle(digest, context, arrival)
        # Summed by ULID text, whose hash Python caches, rather than by PartyId.
        amounts: dict[str, int] = {}
        parties: dict[str, PartyId] = {}
        for line in self.lines:
            ulid = line.party.ulid
            amounts[ulid] = amounts.get(ulid, 0) + line.amount_minor
            parties[ulid] = line.party
        for batch in self.paid_at_assets:
            parts = batch.parts
            for contribution in batch.contributions:
                part = parts[contribution.entry]
                if part:
                    party = contribution.body.party
                    ulid = party.ulid
                    amounts[ulid] = amounts.get(ulid, 0) + part
                    parties[ulid] = party
        positive = {parties[u]: amounts[u] for u in sorted(amounts) if amounts[u] > 0}
        _check_conserved(str(body.revenue), body.amount_minor, positive, self.flows)
        return Allocation(
            str(body.revenue),
            body.currency,
            body.amount_minor,
            positive,
            list(self.facts.entries),
            sorted(set(self.notes)),
            self.flows,
            self.edges,
            self.lines,
            self.paid_at_assets,
            self.adjustments,
        )

    # ---------------------------------------------------------------- graph

    def _asset(self, digest: Digest) -> Fact[AssetRegistered]:
        fact = self.facts.assets.get(digest)
        if fact is None:
            raise VerificationError(
                f"the allocation reaches asset {digest}, but its asset.registered entry is missing",
                hint="the facts of an allocation include every asset of its lineage",
            )
        return fact

    def _parents(self, digest: Digest) -> list[tuple[Digest, Hop | None]]:
        """What `digest` came from: assets it derives from, and the inputs of runs that made
        it; and the data those runs evaluated it with, where its policy pays evaluation."""
        cached = self._parents_cache.get(digest)
        if cached is not None:
            return cached
        parents: dict[Digest, Hop | None] = {}
        for parent in self._asset(digest).body.derived_from:
            parents.setdefault(parent, None)
        for run in self.facts.generated_by.get(digest, []):
            for parent in run.body.inputs:
                parents.setdefault(parent, Hop("run", str(run.body.run), run.entry))
        policy = self.facts.policies.get(digest)
        if policy is not None and policy.body.roles.get("evaluation", 0) > 0:
            for run in self.facts.generated_by.get(digest, []):
                for parent in run.body.used_as("evaluation"):
                    if parent not in parents:  # learned from too: it earns as an input
                        parents[parent] = Hop("run", str(run.body.run), run.entry)
                        self._evaluated.setdefault(digest, set()).add(parent)
        if policy is not None and policy.body.robust:
            for parent in sorted(parents):  # earlier record sets that data inputs copy
                evaluation = parent in self._evaluated.get(digest, set())
                role = (
                    "evaluation"
                    if evaluation
                    else ROLE_OF_KIND[self._asset(parent).body.asset_kind]
                )
                if role not in policy.body.roles or not self._credits_overlaps(
                    digest, policy.body, role
                ):
                    continue
                for overlap in self._overlaps_of(parent, digest):
                    if overlap.body.earlier not in parents:
                        parents[overlap.body.earlier] = Hop("overlap", str(parent), overlap.entry)
                        self._credited.setdefault(digest, set()).add(overlap.body.earlier)
        result = sorted(parents.items(), key=lambda item: item[0])
        self._parents_cache[digest] = result
        return result

    def _topological_order(self, start: Digest) -> list[Digest]:
        """Every asset upstream of `start`, each after all the assets that came from it.

        Raises LineageCycleError, naming the loop, if an asset is its own ancestor.
        """
        children_left: dict[Digest, int] = {}
        stack, seen = [start], {start}
        while stack:
            node = stack.pop()
            for parent, _ in self._parents(node):
                children_left[parent] = children_left.get(parent, 0) + 1
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        order: list[Digest] = []
        ready = [start] if children_left.get(start, 0) == 0 else []
        while ready:
            node = ready.pop()
            order.append(node)
            for parent, _ in self._parents(node):
                children_left[parent] -= 1
                if children_left[parent] == 0:
                    ready.append(parent)
        if len(order) != len(seen):
            raise LineageCycleError(
                f"the lineage of {self.facts.revenue.body.revenue} loops: "
                f"{self._find_cycle(seen - set(order))}",
                hint="an asset cannot be its own ancestor; register changed content as a new asset",
            )
        return order

    def _find_cycle(self, nodes: set[Digest]) -> str:
        node = min(nodes)
        path: list[Digest] = []
        while node not in path:
            path.append(node)
            node = min(p for p, _ in self._parents(node) if p in nodes)
        loop = [*path[path.index(node) :], node]
        return " -> ".join(str(d) for d in loop)

    def _run_started(self, digest: Digest) -> datetime | None:
        runs = self.facts.generated_by.get(digest, [])
        return min((run.body.started for run in runs), default=None)

    # ----------------------------------------------------------------- flow

    def _send(self, digest: Digest, context: _Context, amount: int, trace: tuple[Hop, ...]) -> None:
        if amount == 0:
            return
        if self.current is not None:
            self.current.passed += amount
        edge = (self.current_asset, digest)
        self.edges[edge] = self.edges.get(edge, 0) + amount
        arrivals = self.pending.setdefault(digest, {})
        arrival = arrivals.get(context)
        if arrival is None:
            arrivals[context] = _Arrival(amount, trace, 1)
        else:
            arrival.amount += amount
            arrival.paths += 1

    def _handle(self, digest: Digest, context: _Context, arrival: _Arrival) -> None:
        asset = self._asset(digest)
        amount = arrival.amount
        trace = (*arrival.trace, Hop(asset.body.asset_kind, str(digest), asset.entry))
        if arrival.paths > 1:
            trace = (*trace, Hop("paths", str(arrival.paths), None))
        policy = self.facts.policies.get(digest)
        kind = asset.body.asset_kind
        if kind in ("model", "service") and context[0] == "model":
            pass_upstream = context[1] == "1"
            if policy is not None:
                moment = self._run_started(digest) or self.default_moment
                self._share_model(digest, policy, amount, trace, moment, pass_upstream)
                return
            if kind == "model":
                raise PolicyError(
                    f"model {digest} ({asset.body.name}) has no sharing policy",
                    hint="set one with `quotepart policy set` before sharing revenue through it",
                )
            models = [
                p for p in self._parents(digest) if self._asset(p[0]).body.asset_kind == "model"
            ]
            if not models:
                raise PolicyError(
                    f"service {digest} has no sharing policy and serves no registered model",
                    hint="set a policy on the service, or register it as derived from its model",
                )
            parts = split_exact(amount, {str(model): 1 for model, _ in models})
            for model, hop in models:
                hops = trace if hop is None else (*trace, hop)
                self._send(model, context, parts[str(model)], hops)
            return
        if context[0] == "model":  # revenue recorded against something that is not a model
            raise PolicyError(
                f"revenue reached {kind} {digest}, which does not share revenue",
                hint="record revenue against a model or a service",
            )
        moment = datetime.fromisoformat(context[1])
        operator = PartyId.parse(context[2]) if context[2] else None
        self._share_contributions(digest, amount, trace, moment, operator, None)

    def _asset_context(self, moment: datetime, operator: PartyId | None) -> _Context:
        return ("asset", moment.isoformat(), "" if operator is None else str(operator))

    def _share_model(
        self,
        digest: Digest,
        policy_fact: Fact[PolicySet],
        amount: int,
        trace: tuple[Hop, ...],
        moment: datetime,
        pass_upstream: bool,
    ) -> None:
        policy = policy_fact.body
        operator = policy.operator
        trace = (*trace, Hop("policy", format_fraction(policy.pool), policy_fact.entry))
        ancestors: list[Digest] = []
        if policy.upstream_mode == "fixed" and pass_upstream:
            ancestors = self._ancestor_models(digest)
            if policy.upstream_share * len(ancestors) > policy.pool:
                raise PolicyError(
                    f"the policy of {digest} gives {format_fraction(policy.upstream_share)} to "
                    f"each of {len(ancestors)} ancestor models, more than its pool "
                    f"{format_fraction(policy.pool)}",
                    hint="lower the fixed upstream share, raise the pool, or use dilute mode",
                )
        upstream = {ancestor: SplitKey(UPSTREAM_RANK, str(ancestor)) for ancestor in ancestors}
        weights: dict[SplitKey, Fraction] = {
            RETAINED: 1 - policy.pool,
            POOL: policy.pool - policy.upstream_share * len(ancestors),
        }
        for key in upstream.values():
            weights[key] = policy.upstream_share
        parts = split_exact(amount, weights)
        self._line(operator, parts[RETAINED], "retained", trace)
        hop = Hop("upstream_model", f"fixed {format_fraction(policy.upstream_share)}", None)
        for ancestor, key in upstream.items():
            self._send(ancestor, ("model", "0", ""), parts[key], (*trace, hop))
        skip_upstream = policy.upstream_mode == "fixed" or not pass_upstream
        self._share_pool(digest, policy_fact, parts[POOL], trace, moment, skip_upstream)

    def _ancestor_models(self, digest: Digest) -> list[Digest]:
        """Every model or service upstream of `digest`, through any of its inputs, once each."""
        found: set[Digest] = set()
        stack, seen = [digest], {digest}
        while stack:
            for parent, _ in self._parents(stack.pop()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
                    if self._asset(parent).body.asset_kind in ("model", "service"):
                        found.add(parent)
        return sorted(found)

    def _share_pool(
        self,
        digest: Digest,
        policy_fact: Fact[PolicySet],
        pool: int,
        trace: tuple[Hop, ...],
        moment: datetime,
        skip_upstream: bool,
    ) -> None:
        policy = policy_fact.body
        candidates: dict[str, list[tuple[Digest, Hop | None]]] = {}
        parents = self._parents(digest)
        direct = {parent for parent, _ in parents}
        evaluated = self._evaluated.get(digest, set())
        credited = self._credited.get(digest, set())
        for parent, hop in parents:
            if parent in credited:
                continue  # an input only through the records others copied from it
            if parent in evaluated:
                candidates.setdefault("evaluation", []).append((parent, hop))
                continue
            derived_from = self._asset(parent).body.derived_from
            if (
                derived_from
                and set(derived_from) <= direct
                and parent not in self.facts.contributions
            ):
                # e.g. the training matrix assembled from cohorts the run also names: with no
                # contributors of its own it restates them, and counting it would pay them twice.
                # (A labelling batch of a cohort is derived from it too, but adds its own work.)
                continue
            role = ROLE_OF_KIND[self._asset(parent).body.asset_kind]
            if role == "upstream_model" and skip_upstream:
                continue
            candidates.setdefault(role, []).append((parent, hop))
        own_roles = sorted({c.body.role for c in self.facts.contributions.get(digest, [])})
        for role in own_roles:
            candidates.setdefault(role, []).append((digest, None))  # the model's own contributors
        roles = {
            role: ratio for role, ratio in policy.roles.items() if ratio > 0 and role in candidates
        }
        if not roles:
            self.notes.append(
                f"{digest}: no input in the policy's roles; the pool stays with the operator"
            )
            self._line(policy.operator, pool, "unallocated", trace)
            return
        for role in sorted(set(policy.roles) - set(roles)):
            if policy.roles[role] > 0:
                self.notes.append(
                    f"{digest}: no {role} inputs; the {role} part went to the other roles"
                )
        role_parts = split_exact(pool, roles)
        for role in sorted(roles):
            self._share_role(
                digest, policy_fact, role, role_parts[role], candidates[role], trace, moment
            )

    def _share_role(
        self,
        digest: Digest,
        policy_fact: Fact[PolicySet],
        role: str,
        amount: int,
        candidates: list[tuple[Digest, Hop | None]],
        trace: tuple[Hop, ...],
        moment: datetime,
    ) -> None:
        if amount == 0:
            return
        policy = policy_fact.body
        if policy.robust:
            self._share_role_robust(digest, policy_fact, role, amount, candidates, trace, moment)
            return
        role_trace = (*trace, Hop("role", role, None))
        weights, valuation_hop = self._weights(digest, policy, role, [c for c, _ in candidates])
        if valuation_hop is not None:
            role_trace = (*role_trace, valuation_hop)
        bounded = _bounded(weights, policy.floor, policy.cap)
        leftover = 1 - sum(bounded.values(), Fraction(0))
        if not any(bounded.values()):
            self.notes.append(
                f"{digest}: every {role} input weighs zero; its part stays with the operator"
            )
            self._line(policy.operator, amount, "unallocated", role_trace)
            return
        keyed = {SplitKey(INPUT_RANK, str(c)): bounded[c] for c in bounded}
        if leftover > 0:
            self.notes.append(
                f"{digest}: caps leave {format_fraction(leftover)} of {role} to the operator"
            )
            keyed[CAPPED_REST] = leftover
        parts = split_exact(amount, keyed)
        if leftover > 0:
            self._line(policy.operator, parts[CAPPED_REST], "unallocated", role_trace)
        paid = {c: parts.get(SplitKey(INPUT_RANK, str(c)), 0) for c, _ in candidates}
        self._pay_inputs(digest, policy, role, candidates, paid, role_trace, moment)

    def _pay_inputs(
        self,
        digest: Digest,
        policy: PolicySet,
        role: str,
        candidates: list[tuple[Digest, Hop | None]],
        paid: Mapping[Digest, int],
        role_trace: tuple[Hop, ...],
        moment: datetime,
    ) -> None:
        for candidate, hop in candidates:
            part = paid.get(candidate, 0)
            hops = role_trace if hop is None else (*role_trace, hop)
            if candidate == digest:
                self._share_contributions(digest, part, hops, moment, policy.operator, role)
            elif self._asset(candidate).body.asset_kind in ("model", "service"):
                self._send(candidate, ("model", "1", ""), part, hops)
            else:
                self._send(candidate, self._asset_context(moment, policy.operator), part, hops)

    def _weights(
        self, digest: Digest, policy: PolicySet, role: str, candidates: list[Digest]
    ) -> tuple[dict[Digest, Fraction], Hop | None]:
        weighting = policy.weighting[role]
        if weighting == "equal":
            return dict.fromkeys(candidates, Fraction(1)), None
        if weighting == "volume":
            weights: dict[Digest, Fraction] = {}
            for candidate in candidates:
                size = self._asset(candidate).body.size
                if size is None:
                    raise PolicyError(
                        f"the policy of {digest} weighs {role} by volume, but asset "
                        f"{candidate} has no registered size",
                        hint="register sizes (records or bytes), or weigh this role otherwise",
                    )
                weights[candidate] = Fraction(size)
            return weights, None
        if weighting == "valuation":
            valuation = self.facts.valuations.get(digest)
            values = {c: valuation.body.value_of(c) for c in candidates} if valuation else {}
            if valuation is not None and all(v is not None for v in values.values()):
                return self._clip(digest, policy, role, values), Hop(
                    "valuation", valuation.body.method, valuation.entry
                )
            missing = [c for c in candidates if values.get(c) is None]
            if policy.missing_valuation != "declared":
                named = ", ".join(f"{self._asset(c).body.name!r} ({c})" for c in missing)
                raise PolicyError(
                    f"model {digest} ({self._asset(digest).body.name}) weighs its {role} "
                    f"inputs by valuation, but has no recorded valuation of {named}",
                    hint=f"record a valuation of the model that values {named} "
                    "(`quotepart value`, or Workspace.record_valuation), or set "
                    'missing_valuation: "declared" in its policy to fall back to declared '
                    "weights",
                )
            self.notes.append(f"{digest}: no valuation of {role}; declared weights used")
        return {c: policy.declared.get(c, Fraction(1)) for c in candidates}, None

    def _clip(
        self,
        digest: Digest,
        policy: PolicySet,
        role: str,
        values: Mapping[Digest, Fraction | None],
    ) -> dict[Digest, Fraction]:
        exact = {c: v for c, v in values.items() if v is not None}
        lowest = min(exact.values())
        if lowest >= 0:
            return exact
        if policy.negative_values == "shift":
            self.notes.append(
                f"{digest}: {role} values shifted up by {-lowest} so the lowest is zero"
            )
            return {c: v - lowest for c, v in exact.items()}
        clipped = sorted(str(c) for c, v in exact.items() if v < 0)
        self.notes.append(
            f"{digest}: negative values of {', '.join(clipped)} clipped to zero (policy: clip)"
        )
        return {c: max(v, Fraction(0)) for c, v in exact.items()}

    # ------------------------------------------------------- robust policies

    def _share_role_robust(
        self,
        digest: Digest,
        policy_fact: Fact[PolicySet],
        role: str,
        amount: int,
        candidates: list[tuple[Digest, Hop | None]],
        trace: tuple[Hop, ...],
        moment: datetime,
    ) -> None:
        """A role's part under a policy that names `per` (docs/sharing.md, "Gaming-resistant
        sharing"): overlaps credited to the earlier asset, then per party (or per input)
        clipping, floors only above twice the error, caps, and each party's part split among
        its own inputs in proportion to their positive weights."""
        policy = policy_fact.body
        role_trace = (*trace, Hop("role", role, None))
        inputs = [c for c, _ in candidates]
        weights, variances, valuation = self._robust_weights(digest, policy, role, inputs)
        proofs: tuple[str, ...] = (policy_fact.entry,)
        if valuation is not None:
            role_trace = (*role_trace, Hop("valuation", valuation.body.method, valuation.entry))
            proofs = (*proofs, valuation.entry)
        before = dict(weights)
        variances_before = None if variances is None else dict(variances)
        candidates = list(candidates)
        discounts: dict[Digest, list[Fact[OverlapDetected]]] = {}
        if self._credits_overlaps(digest, policy, role):
            discounts = self._credit_overlaps(digest, role, weights, variances, candidates)

        def group_of(c: Digest) -> str:
            return str(self._asset(c).author) if policy.per == "party" else str(c)

        groups: dict[str, list[Digest]] = {}
        for c in sorted(weights):
            groups.setdefault(group_of(c), []).append(c)
        summed = {k: sum((weights[c] for c in cs), Fraction(0)) for k, cs in groups.items()}
        variance = (
            None
            if variances is None
            else {k: sum((variances[c] for c in cs), Fraction(0)) for k, cs in groups.items()}
        )
        clipped = sorted(k for k, w in summed.items() if w < 0)

        def named(keys: list[str]) -> str:
            if policy.per != "party":
                return ", ".join(keys)
            return ", ".join(f"{k} ({', '.join(str(c) for c in groups[k])})" for k in keys)

        if clipped:
            self.notes.append(
                f"{digest}: {role} values below zero of {named(clipped)} clipped to zero "
                f"(policy: clip, per {policy.per})"
            )
        group_weights = {k: max(w, Fraction(0)) for k, w in summed.items()}
        eligible = {
            k
            for k, w in group_weights.items()
            if w > 0 and (variance is None or w * w > 4 * variance[k])
        }
        unfloored = sorted(k for k, w in group_weights.items() if w > 0 and k not in eligible)
        if policy.floor > 0 and unfloored:
            self.notes.append(
                f"{digest}: no {role} floor for {named(unfloored)}: "
                "value within twice its standard error"
            )
        shares, at_cap, at_floor = _bounded_detail(
            group_weights, policy.floor, policy.cap, eligible
        )
        if not any(shares.values()):
            self.notes.append(
                f"{digest}: every {role} input weighs zero; its part stays with the operator"
            )
            self._line(policy.operator, amount, "unallocated", role_trace)
            parts: dict[SplitKey, int] = {}
        else:
            leftover = 1 - sum(shares.values(), Fraction(0))
            keyed = {SplitKey(INPUT_RANK, k): v for k, v in shares.items()}
            if leftover > 0:
                self.notes.append(
                    f"{digest}: caps leave {format_fraction(leftover)} of {role} to the operator"
                )
                keyed[CAPPED_REST] = leftover
            parts = split_exact(amount, keyed)
            if leftover > 0:
                self._line(policy.operator, parts[CAPPED_REST], "unallocated", role_trace)
        paid: dict[Digest, int] = {}
        within: dict[Digest, Fraction] = {}  # each input's part of its group
        for k, members in groups.items():
            positive = {c: weights[c] for c in members if weights[c] > 0}
            inner = positive or dict.fromkeys(members, Fraction(1))
            total = sum(inner.values(), Fraction(0))
            for c in members:
                within[c] = inner.get(c, Fraction(0)) / total
            part = parts.get(SplitKey(INPUT_RANK, k), 0)
            if part:
                paid.update({Digest.parse(c): a for c, a in split_exact(
                    part, {str(c): w for c, w in inner.items()}).items()})  # fmt: skip
        positive_total = sum(group_weights.values(), Fraction(0))

        def plain(c: Digest, weight: Fraction) -> int:
            if positive_total == 0:
                return 0
            return math.floor(amount * weight / positive_total)

        def record(c: Digest, kind: str, value: Fraction, var: Fraction | None, before_minor: int,
                   why: str, entries: tuple[str, ...] = proofs) -> None:  # fmt: skip
            self.adjustments.append(
                Adjustment(self._asset(c).author, c, digest, role, kind, value,
                           None if var is None else _sqrt(var), paid.get(c, 0), before_minor,
                           why, entries)
            )  # fmt: skip

        whose = "its party's" if policy.per == "party" else "its"
        for k, members in groups.items():
            var = None if variance is None else variance[k]
            for c in members:
                if k in clipped:
                    record(c, "clipped", summed[k], var, 0,
                           f"{whose} {role} value is below zero: clipped to zero")  # fmt: skip
                elif k in at_cap:
                    record(c, "capped", summed[k], var, plain(c, group_weights[k] * within[c]),
                           f"{whose} share of {role} is held at the cap "
                           f"{format_fraction(policy.cap)}; the rest goes to the other inputs "
                           "or, where none can take it, to the operator")  # fmt: skip
                elif k in at_floor:
                    record(c, "floored", summed[k], var, plain(c, group_weights[k] * within[c]),
                           f"{whose} share of {role} is raised to the floor "
                           f"{format_fraction(policy.floor)}")  # fmt: skip
                elif k in unfloored and policy.floor > 0 and shares[k] < policy.floor:
                    record(c, "no-floor", summed[k], var,
                           math.floor(amount * policy.floor * within[c]),
                           f"{whose} {role} value is within twice its standard error: "
                           f"no floor of {format_fraction(policy.floor)}")  # fmt: skip
        for c, found in sorted(discounts.items()):
            shared = sum((o.body.shared for o in found), Fraction(0))
            earlier = ", ".join(str(o.body.earlier) for o in found)
            record(c, "discounted", before[c],
                   None if variances_before is None else variances_before[c],
                   plain(c, before[c]),
                   f"{format_fraction(min(shared, Fraction(1)))} of its records are copies of "
                   f"earlier registered {earlier}: that part of its {role} weight is "
                   "credited to the earlier asset",
                   (*proofs, *(o.entry for o in found)))  # fmt: skip
        if (
            role in DATA_ROLES
            and valuation is not None
            and valuation.body.parameters.get("deduplicated") == "true"
        ):  # the valuation removed the copies itself: say so on the copier's statement
            for c in sorted(weights):
                found = [] if c in discounts else self._overlaps_of(c, digest)
                if not found:
                    continue
                copied = "; ".join(
                    f"{o.body.records:,} of its {o.body.of:,} records copy earlier registered "
                    f"{o.body.earlier}" + (" (near-duplicates)" if o.body.match == "near" else "")
                    for o in found
                )
                record(c, "discounted", before[c],
                       None if variances_before is None else variances_before[c],
                       plain(c, before[c]),
                       f"{copied}: the valuation (deduplicated) counted those records as the "
                       "earlier asset's, so they earn nothing here",
                       (*proofs, *(o.entry for o in found)))  # fmt: skip
        self._pay_inputs(digest, policy, role, candidates, paid, role_trace, moment)

    def _robust_weights(
        self, digest: Digest, policy: PolicySet, role: str, candidates: list[Digest]
    ) -> tuple[
        dict[Digest, Fraction], dict[Digest, Fraction] | None, Fact[ValuationRecorded] | None
    ]:
        """Each input's weight (a valuation's values unclipped), the variance of each where
        the weighting has error bars (a valuation's stderr squared; none recorded counts as
        an exact value), and the valuation read."""
        if policy.weighting[role] == "valuation":
            valuation = self.facts.valuations.get(digest)
            if valuation is not None:
                values = {c: valuation.body.value_of(c) for c in candidates}
                if all(v is not None for v in values.values()):
                    errors = valuation.body.stderr
                    variances = {
                        c: Fraction(errors[c]) ** 2 if c in errors else Fraction(0)
                        for c in candidates
                    }
                    return {c: v for c, v in values.items() if v is not None}, variances, valuation
        weights, _ = self._weights(digest, policy, role, candidates)
        return weights, None, None

    def _credit_overlaps(
        self,
        digest: Digest,
        role: str,
        weights: dict[Digest, Fraction],
        variances: dict[Digest, Fraction] | None,
        candidates: list[tuple[Digest, Hop | None]],
    ) -> dict[Digest, list[Fact[OverlapDetected]]]:
        """Move the weight of copied records from each later input to the earlier asset it
        copies (adding that asset as an input of the role when it is not one), in place.
        Only a positive weight moves: a harmful copy stays its copier's. One level: the
        earlier asset's own overlaps are read when it is itself a model's input."""
        discounts: dict[Digest, list[Fact[OverlapDetected]]] = {}
        credits: dict[Digest, Fraction] = {}
        credit_variances: dict[Digest, Fraction] = {}
        hops: dict[Digest, Hop] = {}
        for c in sorted(weights):
            found = self._overlaps_of(c, digest)
            if not found or weights[c] <= 0:
                continue
            weight, left = weights[c], Fraction(1)
            for overlap in found:
                moved_ratio = min(overlap.body.shared, left)
                left -= moved_ratio
                earlier = overlap.body.earlier
                credits[earlier] = credits.get(earlier, Fraction(0)) + moved_ratio * weight
                if variances is not None:
                    credit_variances[earlier] = (
                        credit_variances.get(earlier, Fraction(0)) + moved_ratio**2 * variances[c]
                    )
                hops.setdefault(earlier, Hop("overlap", str(c), overlap.entry))
                self.notes.append(
                    f"{digest}: {format_fraction(overlap.body.shared)} of the records of {c} "
                    f"are copies of earlier {earlier}; that part of its {role} weight went to it"
                )
            weights[c] = weight * left
            if variances is not None:
                variances[c] = variances[c] * left**2
            discounts[c] = found
        present = {c for c, _ in candidates}
        for earlier in sorted(credits):
            weights[earlier] = weights.get(earlier, Fraction(0)) + credits[earlier]
            if variances is not None:
                variances[earlier] = variances.get(earlier, Fraction(0)) + credit_variances[earlier]
            if earlier not in present:
                candidates.append((earlier, hops[earlier]))
        return discounts

    def _credits_overlaps(self, digest: Digest, policy: PolicySet, role: str) -> bool:
        """Whether `role` of `digest`'s robust policy credits copied records to the earlier
        asset: a data role, weighed otherwise than by declared weights, by no valuation
        that says it removed copies already (`parameters["deduplicated"] == "true"`)."""
        if role not in DATA_ROLES or policy.weighting.get(role) == "declared":
            return False
        valuation = self.facts.valuations.get(digest)
        return not (
            policy.weighting[role] == "valuation"
            and valuation is not None
            and valuation.body.parameters.get("deduplicated") == "true"
        )

    def _overlaps_of(self, digest: Digest, model: Digest) -> list[Fact[OverlapDetected]]:
        """The overlaps of `digest` with assets registered before it, other than `model`
        (which cannot be its own input): the latest entry for each earlier asset, in the
        earlier assets' order."""
        latest: dict[Digest, Fact[OverlapDetected]] = {}
        registered = self._asset(digest).leaf_index
        for overlap in self.facts.overlaps.get(digest, []):
            earlier = overlap.body.earlier
            if earlier == model or self._asset(earlier).leaf_index >= registered:
                continue  # not earlier after all, or the model itself: not credited
            current = latest.get(earlier)
            if current is None or overlap.leaf_index > current.leaf_index:
                latest[earlier] = overlap
        return [latest[e] for e in sorted(latest)]

    def _share_contributions(
        self,
        digest: Digest,
        amount: int,
        trace: tuple[Hop, ...],
        moment: datetime,
        operator: PartyId | None,
        role: str | None,
    ) -> None:
        if amount == 0:
            return
        contributions = self.facts.contributions.get(digest, [])
        if role is not None:
            contributions = [c for c in contributions if c.body.role == role]
        asset = self._asset(digest)
        if not contributions:
            parents = self._parents(digest)
            if parents:  # a cohort or preprocessed set: its value flows to what it came from
                parts = split_exact(amount, {str(p): 1 for p, _ in parents})
                for parent, hop in parents:
                    hops = trace if hop is None else (*trace, hop)
                    if self._asset(parent).body.asset_kind in ("model", "service"):
                        context: _Context = ("model", "1", "")
                    else:
                        context = self._asset_context(moment, operator)
                    self._send(parent, context, parts[str(parent)], hops)
                return
            self._line(asset.author, amount, "registrant", trace)
            return
        # Shares as integers over their common denominator: Fraction arithmetic per
        # contributor cost more than everything else here (1M contributors, bench/sharing.py).
        ratios = [c.body.share.as_integer_ratio() for c in contributions]
        denominators = {d for _, d in ratios}
        weights: dict[str, int]
        if len(denominators) == 1:
            denominator = denominators.pop()
            weights = {c.entry: n for c, (n, _) in zip(contributions, ratios, strict=True)}
        else:
            denominator = math.lcm(*denominators)
            weights = {
                c.entry: n * (denominator // d)
                for c, (n, d) in zip(contributions, ratios, strict=True)
            }
        claimed = sum(weights.values())
        if digest in self.consented_assets:
            for contribution in contributions:
                if self._withdrawn(contribution.body.party, digest, moment):
                    weights[contribution.entry] = 0
                    self.notes.append(
                        f"{contribution.body.party}: consent for {digest} withdrawn before the "
                        "run; its part went to the other contributors"
                    )
        if role is None and claimed < denominator:
            withdrawn = digest in self.consented_assets and self._withdrawn(
                asset.author, digest, moment
            )
            weights[REGISTRANT_KEY] = 0 if withdrawn else denominator - claimed
        if not any(weights.values()):
            self.notes.append(
                f"{digest}: no contributor with consent; its part stays with the operator"
            )
            receiver = operator if operator is not None else asset.author
            self._line(receiver, amount, "unallocated", trace)
            return
        parts = split_exact(amount, weights)
        registrant_part = parts.pop(REGISTRANT_KEY, 0)
        self.paid_at_assets.append(_PaidAtAsset(digest, trace, contributions, parts))
        assert self.current is not None
        self.current.kept += amount - registrant_part
        self._line(asset.author, registrant_part, "registrant", trace)

    def _withdrawn(self, party: PartyId, digest: Digest, moment: datetime) -> bool:
        """Whether `party`'s last consent action on `digest` effective before `moment` was a withdrawal."""
        state = "grant"
        for consent in self.facts.consents.get((party, digest), []):
            if consent.body.effective <= moment:
                state = consent.body.action
        return state == "withdraw"

    def _line(self, party: PartyId, amount: int, reason: str, trace: tuple[Hop, ...]) -> None:
        if amount:
            assert self.current_asset is not None
            self.lines.append(Line(party, amount, reason, trace, None, self.current_asset))
            assert self.current is not None
            self.current.kept += amount


def _check_conserved(
    revenue: str, total_minor: int, amounts: Mapping[PartyId, int], flows: Mapping[Digest, NodeFlow]
) -> None:
    """Raise ConservationError unless the parties' amounts add up to the revenue and every
    asset passed on or paid out exactly what reached it.

    Raised, not asserted: `python -O` strips asserts, and an allocation that lost or made
    a minor unit must never be recorded.
    """
    paid = sum(amounts.values())
    if paid != total_minor:
        raise ConservationError(
            f"the allocation of {revenue} pays {paid} minor units to {len(amounts)} parties, "
            f"but the revenue is {total_minor} ({paid - total_minor:+d})",
            hint="this is a bug in quotepart; nothing was recorded; please report it",
        )
    for digest, flow in flows.items():
        if flow.received != flow.kept + flow.passed:
            raise ConservationError(
                f"in the allocation of {revenue}, asset {digest} received {flow.received} "
                f"minor units but kept {flow.kept} and passed on {flow.passed}",
                hint="this is a bug in quotepart; nothing was recorded; please report it",
            )


_K = TypeVar("_K", bound=Hashable)


def _sqrt(variance: Fraction) -> Fraction:
    """A standard error from its variance, to nine decimal places (for showing only)."""
    return Fraction(math.isqrt(math.floor(variance * 10**18)), 10**9)


def _bounded(
    weights: Mapping[Digest, Fraction], floor: Fraction, cap: Fraction
) -> dict[Digest, Fraction]:
    """Shares proportional to `weights`, each positive one kept within [floor, cap].

    Water-filling: shares that cross a bound are fixed at it and the rest is shared
    again in proportion, until none crosses. Zero weights stay zero (a floor never pays
    a contribution worth nothing). Where the caps cannot hold the whole (too few
    inputs), the shares sum to less than 1 and the caller gives the rest to the operator.
    """
    return _bounded_detail(weights, floor, cap, None)[0]


def _bounded_detail(
    weights: Mapping[_K, Fraction],
    floor: Fraction,
    cap: Fraction,
    eligible: set[_K] | None,
) -> tuple[dict[_K, Fraction], set[_K], set[_K]]:
    """`_bounded`, where only the `eligible` keys (every positive one when None) may be
    raised to the floor; also gives the keys held at the cap and those raised to the floor."""
    positive = {c: w for c, w in weights.items() if w > 0}
    shares = dict.fromkeys(weights, Fraction(0))
    at_cap: set[_K] = set()
    at_floor: set[_K] = set()
    if not positive:
        return shares, at_cap, at_floor
    floorable = set(positive) if eligible is None else set(positive) & eligible
    if floorable and floor * len(floorable) > 1:
        floor = Fraction(1, len(floorable))
    fixed: dict[_K, Fraction] = {}
    while True:
        free = {c: w for c, w in positive.items() if c not in fixed}
        mass = 1 - sum(fixed.values(), Fraction(0))
        total = sum(free.values(), Fraction(0))
        if not free or mass <= 0:
            break
        proposal = {c: mass * w / total for c, w in free.items()}
        over = {c for c, s in proposal.items() if s > cap}
        under = {c for c, s in proposal.items() if s < floor and c in floorable}
        if not over and not under:
            fixed.update(proposal)
            break
        for c in over:
            fixed[c] = cap
            at_cap.add(c)
        if not over:
            for c in under:
                fixed[c] = floor
                at_floor.add(c)
    shares.update(fixed)
    return shares, at_cap, at_floor
