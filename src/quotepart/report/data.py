"""What a fair value share report says, gathered from the log: one JSON document.

The document is `report.json` itself, and the HTML page and the PDF are drawn from it
alone, so the three files cannot disagree. Amounts are never read from projections:
each allocation of the period is recomputed from the entries it names (as a statement
is) and must give the amounts the log recorded before it is shown.

The document depends only on the facts it reads, never on when it was made: its
checkpoint is the first one signed after the newest entry it reads, not the log's
latest. So publishing the same report again gives the same bytes (and the same
digests), and `report.published` entries, which the report does not read, never
change it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any, TypeVar

from sqlalchemy import Connection, func, literal_column, select

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId, Period, RevenueId
from quotepart.log import NoteVerifier, SignedEntry
from quotepart.log.kinds import (
    AllocationRecorded,
    AssetRegistered,
    PolicySet,
    RevenueRecorded,
    ValuationRecorded,
    format_fraction,
)
from quotepart.money import format_amount
from quotepart.provenance.lineage import lineage, locate
from quotepart.sharing.allocation import Allocation
from quotepart.sharing.facts import Fact, SharingFacts
from quotepart.sharing.ledger import (
    allocation_leaf,
    entries_by_hash,
    latest_leaves,
    read_entries,
)
from quotepart.sharing.statements import recompute
from quotepart.store.engine import select_where_in
from quotepart.store.projections import digest_prefix
from quotepart.store.schema import (
    assets,
    checkpoints,
    lineage_edges,
    parties,
    policies,
    revenues,
    usage,
    valuations,
)

FORMAT = "quotepart-report/1"
T = TypeVar("T")
REPORTED_KINDS = frozenset({"service", "model"})
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

ROLE_WORDS = {
    "data": "data",
    "annotation": "annotation (labelling)",
    "compute": "compute",
    "code": "code",
    "upstream_model": "upstream models",
}
WEIGHTING_WORDS = {
    "valuation": "weighted by the recorded valuation",
    "declared": "by the declared weights",
    "equal": "equally",
    "volume": "by registered size (volume)",
}
REASON_WORDS = {
    "retained": "operator's part",
    "registrant": "registrant's remainder",
    "unallocated": "no one to pass it to",
}


@dataclass(frozen=True, slots=True)
class ReportData:
    """The report document (report.json) and what publishing it needs to know."""

    document: dict[str, Any]  # exactly what report.json holds
    asset: Digest
    period: Period
    name: str  # the asset's name
    allocations: tuple[str, ...]  # leaf hashes of the allocations covered, sorted
    signer: PartyId  # who signed the first allocation covered

    def to_json_bytes(self) -> bytes:
        """The exact bytes of report.json: sorted keys, so the same facts give the same digest."""
        text = json.dumps(self.document, indent=2, sort_keys=True, ensure_ascii=False)
        return (text + "\n").encode()


@dataclass(slots=True)
class _Covered:
    leaf_index: int
    entry: SignedEntry
    allocation: Allocation
    facts: SharingFacts
    revenue: RevenueRecorded


@dataclass(slots=True)
class _Reader:
    """Reads the facts of one report, remembering the newest leaf it looked at."""

    conn: Connection
    newest: int = -1
    party_names: dict[str, str] = field(default_factory=dict)
    assets: dict[str, AssetRegistered] = field(default_factory=dict)

    def saw(self, leaves: Iterable[int]) -> None:
        self.newest = max([self.newest, *leaves])

    def entries(self, leaves: Iterable[int]) -> list[tuple[int, SignedEntry]]:
        found = read_entries(self.conn, leaves)
        self.saw(index for index, _ in found)
        return found

    def names_of(self, party_ids: Iterable[str]) -> None:
        wanted = sorted(set(party_ids) - set(self.party_names))
        for party, name, leaf in select_where_in(
            self.conn, parties, ["party_id", "name", "leaf_index"], "party_id", wanted
        ):
            self.party_names[str(party)] = str(name)
            self.saw([int(leaf)])

    def asset_bodies(self, digests: Iterable[str]) -> None:
        wanted = sorted(set(digests) - set(self.assets))
        if not wanted:
            return
        rows = select_where_in(
            self.conn,
            assets,
            ["digest", "leaf_index"],
            "digest_prefix",
            sorted({digest_prefix(d) for d in wanted}),
        )
        leaves = [int(leaf) for d, leaf in rows if d in set(wanted)]
        for _, entry in self.entries(leaves):
            body = entry.body()
            assert isinstance(body, AssetRegistered)
            self.assets[str(body.asset)] = body

    def asset_name(self, digest: Digest | str) -> str:
        body = self.assets.get(str(digest))
        return body.name if body is not None else str(digest)[:19] + "…"

    def party_name(self, party: PartyId | str) -> str:
        return self.party_names.get(str(party), str(party))


def build_report_data(
    conn: Connection, asset: Digest | str, period: Period | str, *, verifier: NoteVerifier
) -> ReportData:
    """Everything the report of `asset` (a service or a model, by digest or unique name)
    for `period` shows, read from the log and recomputed from its signed entries.

    A model's report covers the revenue booked on the model and on the services that
    serve it. Each revenue must have been shared: the report shows allocations, it does
    not make them.

    Raises:
        InputError: a period that does not parse, an asset that is not a service or
            model, a revenue of the period that has not been shared yet.
        NotFoundError: no such asset, or no revenue of it within the period.
        VerificationError: an allocation does not follow from the entries it names.
    """
    the_period = Period.parse(str(period))
    root, root_leaf = locate(conn, str(asset))
    if root.type != "asset" or root.kind not in REPORTED_KINDS:
        raise InputError(
            f"{root.name!r} is a {root.kind}; a report is about a service or a model",
            hint="name the service or model that earned the revenue",
        )
    read = _Reader(conn)
    read.saw([root_leaf])
    digest = Digest.parse(root.id)
    earners = _earners(conn, digest, root_leaf, root.kind)
    covered = _covered(read, earners, the_period, root.name)
    graph = lineage(conn, root.id, "upstream")
    read.saw(node.leaf_index for node in graph.nodes)
    for c in covered:
        read.assets.update((str(d), fact.body) for d, fact in c.facts.assets.items())
    read.asset_bodies([*(node.id for node in graph.nodes if node.type == "asset"), *earners])
    for c in covered:
        for valuation in c.facts.valuations.values():
            read.asset_bodies(str(d) for d in valuation.body.values)
    models = [node.id for node in graph.nodes if node.kind == "model"]
    valued = _latest_facts(
        read, covered, lambda facts: facts.valuations, valuations.c.model, models
    )
    ruled = _latest_facts(
        read,
        covered,
        lambda facts: facts.policies,
        policies.c.asset,
        [node.id for node in graph.nodes if node.type == "asset"],
    )
    party_ids = {str(p) for c in covered for line in c.allocation.lines for p in [line.party]}
    party_ids |= {str(f.body.operator) for f, _ in ruled}
    read.names_of(party_ids)
    currencies = sorted({c.revenue.currency for c in covered})
    document: dict[str, Any] = {
        "format": FORMAT,
        "asset": {"digest": root.id, "name": root.name, "kind": root.kind},
        "period": str(the_period),
        "earned_by": [{"digest": d, "name": read.asset_name(d)} for d in earners],
        "revenues": [_revenue_json(c) for c in covered],
        "totals": _totals(covered),
        "parties": _parties_json(read, covered),
        "lineage": _lineage_json(graph, earners, digest, read),
        "valuations": [_valuation_json(read, fact, used) for fact, used in valued],
        "money_flow": {code: _flow_json(read, covered, code) for code in currencies},
        "usage": _usage_json(read, earners, the_period),
        "policies": [
            {
                "asset": str(f.body.asset),
                "name": read.asset_name(f.body.asset),
                "entry": f.entry,
                "operator": str(f.body.operator),
                "operator_name": read.party_name(f.body.operator),
                "words": policy_in_words(
                    f.body,
                    asset_name=read.asset_name(f.body.asset),
                    operator_name=read.party_name(f.body.operator),
                    currency=currencies[0] if len(currencies) == 1 else None,
                ),
                "rules": f.body.to_body(),
                "used_by_allocations": used,
            }
            for f, used in ruled
        ],
    }
    allocations = tuple(sorted(c.entry.leaf_hash.hex() for c in covered))
    document["verification"] = _verification_json(read, verifier, allocations, the_period)
    return ReportData(document, digest, the_period, root.name, allocations, covered[0].entry.author)


# ------------------------------------------------------------------ gathering


def _earners(conn: Connection, digest: Digest, leaf: int, kind: str) -> list[str]:
    """The asset, and for a model the services derived from it (they book its revenue)."""
    found = [str(digest)]
    if kind == "model":
        children = [
            int(child)
            for (child,) in conn.execute(
                select(lineage_edges.c.child).where(
                    lineage_edges.c.parent == leaf, lineage_edges.c.relation == "derived"
                )
            )
        ]
        for service, _leaf in sorted(
            (str(d), int(i))
            for d, kind_, i in select_where_in(
                conn, assets, ["digest", "asset_kind", "leaf_index"], "leaf_index", children
            )
            if kind_ == "service"
        ):
            found.append(service)
    return found


def _covered(read: _Reader, earners: list[str], period: Period, name: str) -> list[_Covered]:
    rows = select_where_in(
        read.conn, revenues, ["revenue_id", "period", "leaf_index"], "asset", earners
    )
    in_period = sorted(
        (int(leaf), str(revenue))
        for revenue, text, leaf in rows
        if period.contains(Period.parse(str(text)))
    )
    if not in_period:
        raise NotFoundError(
            f"{name!r} earned no recorded revenue in {period}",
            hint="record it with `quotepart revenue record`, or choose another period",
        )
    covered: list[_Covered] = []
    for _leaf, revenue_text in in_period:
        revenue = RevenueId.parse(revenue_text)
        index = allocation_leaf(read.conn, revenue)
        if index is None:
            raise InputError(
                f"{revenue} ({name!r}, {period}) has not been shared yet",
                hint=f"share it first with `quotepart share {revenue}`, then publish the report",
            )
        [(_, entry)] = read.entries([index])
        body = entry.body()
        assert isinstance(body, AllocationRecorded)
        inputs = entries_by_hash(read.conn, body.inputs)
        read.saw(i for i, _ in inputs)
        allocation = recompute(entry, inputs)  # raises unless it gives the recorded amounts
        facts = SharingFacts.from_entries(inputs, revenue)
        covered.append(_Covered(index, entry, allocation, facts, facts.revenue.body))
    return covered


def _latest_facts(
    read: _Reader,
    covered: list[_Covered],
    used_in: Callable[[SharingFacts], Mapping[Digest, Fact[Any]]],
    column: Any,
    keys: list[str],
) -> list[tuple[Fact[Any], int]]:
    """The latest valuation or policy of each key: among those the allocations used, else
    the latest in the log. Each comes with the number of the period's allocations that
    used it."""
    used: dict[str, list[Fact[Any]]] = {}
    for c in covered:
        for key, fact in used_in(c.facts).items():
            used.setdefault(str(key), []).append(fact)
    chosen = _latest(used)
    missing = [k for k in keys if k not in chosen]
    for index, entry in read.entries(latest_leaves(read.conn, column, missing)):
        body: Any = entry.body()
        key = body.model if isinstance(body, ValuationRecorded) else body.asset
        chosen[str(key)] = (Fact(body, entry.leaf_hash.hex(), index, entry.author, entry.time), 0)
    return _in_order(chosen, keys)


def _latest(used: Mapping[str, list[Fact[T]]]) -> dict[str, tuple[Fact[T], int]]:
    """Per key: the newest fact, and how many of the allocations named it."""
    chosen: dict[str, tuple[Fact[T], int]] = {}
    for key, facts in used.items():
        newest = max(facts, key=lambda f: f.leaf_index)
        chosen[key] = (newest, sum(1 for f in facts if f.entry == newest.entry))
    return chosen


def _in_order(chosen: dict[str, tuple[Fact[T], int]], keys: list[str]) -> list[tuple[Fact[T], int]]:
    """In the lineage's order (root first), then any others by key."""
    order = {k: i for i, k in enumerate(keys)}
    return [chosen[k] for k in sorted(chosen, key=lambda k: (order.get(k, len(order)), k))]


# ------------------------------------------------------------------ the parts


def _revenue_json(c: _Covered) -> dict[str, Any]:
    r = c.revenue
    return {
        "revenue": str(r.revenue),
        "asset": str(r.asset),
        "period": str(r.period),
        "amount_minor": r.amount_minor,
        "amount": format_amount(r.amount_minor, r.currency),
        "currency": r.currency,
        "source": r.source,
        "entry": c.facts.revenue.entry,
        "allocation": {"leaf_index": c.leaf_index, "entry": c.entry.leaf_hash.hex()},
        "notes": list(c.allocation.notes),
    }


def _money(amount_minor: int, code: str) -> dict[str, Any]:
    return {"amount_minor": amount_minor, "amount": format_amount(amount_minor, code)}


def _totals(covered: list[_Covered]) -> dict[str, Any]:
    totals: dict[str, dict[str, int]] = {}
    for c in covered:
        sums = totals.setdefault(c.revenue.currency, {})
        sums["earned"] = sums.get("earned", 0) + c.revenue.amount_minor
        for line in c.allocation.lines:
            key = "operators" if line.reason in ("retained", "unallocated") else "contributors"
            sums[key] = sums.get(key, 0) + line.amount_minor
    return {
        code: {
            "earned": _money(sums["earned"], code),
            "to_contributors": _money(sums.get("contributors", 0), code),
            "kept_by_operators": _money(sums.get("operators", 0), code),
        }
        for code, sums in sorted(totals.items())
    }


def _parties_json(read: _Reader, covered: list[_Covered]) -> list[dict[str, Any]]:
    """Per party and currency: the amount, as what and at which assets."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for c in covered:
        code = c.revenue.currency
        for line in c.allocation.lines:
            row = rows.setdefault(
                (str(line.party), code), {"amount_minor": 0, "as": set(), "at": {}}
            )
            row["amount_minor"] += line.amount_minor
            row["as"].add(
                ROLE_WORDS.get(line.contribution.ref, line.contribution.ref)
                if line.contribution is not None
                else REASON_WORDS.get(line.reason, line.reason)
            )
            at = str(line.at)
            row["at"][at] = row["at"].get(at, 0) + line.amount_minor
    out = []
    for (party, code), row in sorted(
        rows.items(), key=lambda kv: (kv[0][1], -kv[1]["amount_minor"], kv[0][0])
    ):
        if row["amount_minor"] == 0:
            continue
        out.append(
            {
                "party": party,
                "name": read.party_name(party),
                "currency": code,
                **_money(row["amount_minor"], code),
                "as": sorted(row["as"]),
                "at": [
                    {"asset": a, "name": read.asset_name(a), **_money(amount, code)}
                    for a, amount in sorted(row["at"].items(), key=lambda kv: (-kv[1], kv[0]))
                    if amount
                ],
            }
        )
    return out


def _lineage_json(graph: Any, earners: list[str], root: Digest, read: _Reader) -> dict[str, Any]:
    nodes = [
        {"id": n.id, "type": n.type, "kind": n.kind, "name": n.name, "status": n.status}
        for n in graph.nodes
    ]
    edges = [{"from": e.parent, "to": e.child, "relation": e.relation} for e in graph.edges]
    for service in earners:
        if service != str(root):  # a model's services: drawn downstream of it
            nodes.append(
                {
                    "id": service,
                    "type": "asset",
                    "kind": "service",
                    "name": read.asset_name(service),
                    "status": None,
                }
            )
            edges.append({"from": str(root), "to": service, "relation": "derived"})
    return {"root": str(root), "nodes": nodes, "edges": edges}


def _valuation_json(read: _Reader, fact: Fact[ValuationRecorded], used: int) -> dict[str, Any]:
    body = fact.body
    read.asset_bodies(str(d) for d in body.values)
    players = [
        {
            "asset": str(d),
            "name": read.asset_name(d),
            "kind": read.assets[str(d)].asset_kind if str(d) in read.assets else None,
            "value": value,
            "stderr": body.stderr.get(d),
        }
        for d, value in sorted(body.values.items(), key=lambda kv: -Fraction(kv[1]))
    ]
    return {
        "model": str(body.model),
        "model_name": read.asset_name(body.model),
        "entry": fact.entry,
        "method": body.method,
        "parameters": dict(sorted(body.parameters.items())),
        "seed": body.seed,
        "evaluations": body.evaluations,
        "converged": body.converged,
        "utility": body.utility,
        "used_by_allocations": used,
        "players": players,
    }


def _flow_json(read: _Reader, covered: list[_Covered], code: str) -> dict[str, Any]:
    """Revenue -> service -> models -> assets -> parties, summed over the period's allocations."""
    edges: dict[tuple[str | None, str], int] = {}
    paid: dict[tuple[str, str], int] = {}
    for c in covered:
        if c.revenue.currency != code:
            continue
        for (source, target), amount in c.allocation.edges.items():
            key = (None if source is None else str(source), str(target))
            edges[key] = edges.get(key, 0) + amount
        for (at, party), amount in c.allocation.paid_at().items():
            paid_key = (str(at), str(party))
            paid[paid_key] = paid.get(paid_key, 0) + amount
    return {
        "assets": [
            {"from": s, "to": t, "from_name": None if s is None else read.asset_name(s),
             "to_name": read.asset_name(t), "amount_minor": a}
            for (s, t), a in sorted(edges.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
            if a
        ],
        "parties": [
            {"at": at, "at_name": read.asset_name(at), "party": p,
             "party_name": read.party_name(p), "amount_minor": a}
            for (at, p), a in sorted(paid.items())
            if a
        ],
    }  # fmt: skip


def _usage_json(read: _Reader, earners: list[str], period: Period) -> dict[str, Any]:
    """Units per day (per month for a year) and distinct consumer pseudonyms: counts only."""
    by_month = period.last_month - period.first_month >= 3
    width = 7 if by_month else 10  # "2026-01" or "2026-01-31" out of the RFC 3339 start
    # Literal bounds: PostgreSQL must see the grouped expression and the selected one as
    # the same, which two bound parameters would hide from it.
    bucket = func.substr(usage.c.start, literal_column("1"), literal_column(str(width)))
    where = (
        usage.c.service.in_(earners),
        usage.c.month >= period.first_month,
        usage.c.month <= period.last_month,
    )
    counted = {
        str(b): (int(units), int(consumers))
        for b, units, consumers in read.conn.execute(
            select(bucket, func.sum(usage.c.units), func.count(func.distinct(usage.c.consumer)))
            .where(*where)
            .group_by(bucket)
        )
    }
    units, consumers, newest = read.conn.execute(
        select(
            func.coalesce(func.sum(usage.c.units), 0),
            func.count(func.distinct(usage.c.consumer)),
            func.max(usage.c.leaf_index),
        ).where(*where)
    ).one()
    if newest is not None:
        read.saw([int(newest)])
    start = date(period.first_month // 12, period.first_month % 12 + 1, 1)
    end_month = period.last_month + 1
    end = date(end_month // 12, end_month % 12 + 1, 1)
    buckets: list[str] = []
    day = start
    while day < end:
        buckets.append(day.isoformat()[:width])
        day = (
            date(day.year + day.month // 12, day.month % 12 + 1, 1)
            if by_month
            else day + timedelta(days=1)
        )
    units_named = {
        str((read.assets[e].metadata or {}).get("unit", "unit"))
        for e in earners
        if e in read.assets
    }
    return {
        "unit": units_named.pop() if len(units_named) == 1 else "unit",
        "per": "month" if by_month else "day",
        "series": [
            {"start": b, "units": counted.get(b, (0, 0))[0], "consumers": counted.get(b, (0, 0))[1]}
            for b in buckets
        ],
        "total_units": int(units),
        "distinct_consumers": int(consumers),
    }


def _verification_json(
    read: _Reader, verifier: NoteVerifier, allocations: tuple[str, ...], period: Period
) -> dict[str, Any]:
    row = read.conn.execute(
        select(checkpoints.c.tree_size, checkpoints.c.root_hash, checkpoints.c.note)
        .where(checkpoints.c.tree_size > read.newest)
        .order_by(checkpoints.c.tree_size)
        .limit(1)
    ).first()
    if row is None:  # only a log filled without checkpoints (benchmarks) lacks one
        raise InputError("no signed checkpoint covers the report's entries", hint="append an entry")
    key = str(verifier)
    return {
        "checkpoint": {
            "tree_size": int(row.tree_size),
            "root_hash": bytes(row.root_hash).hex(),
            "note": str(row.note),
        },
        "verifier_key": key,
        "allocations": list(allocations),
        "commands": [
            "quotepart verify",
            f"quotepart statement PARTY --period {period} --proof > mine.json",
            f"quotepart verify-statement mine.json --key '{key}'",
        ],
    }


# ------------------------------------------------------------------ words


def percent(ratio: Fraction) -> str:
    """'20 %' for 1/5; one decimal where it is not whole ('33.3 %')."""
    value = ratio * 100
    return f"{value.numerator} %" if value.denominator == 1 else f"{float(value):.1f} %"


def policy_in_words(
    policy: PolicySet, *, asset_name: str, operator_name: str, currency: str | None = None
) -> str:
    """A sharing policy as a sentence a contributor can check against their statement."""
    sentences = [
        f"{percent(policy.pool)} of what reaches {asset_name} goes to its contributors; "
        f"{operator_name}, the operator, keeps the rest."
    ]
    parts = []
    for role, ratio in sorted(policy.roles.items(), key=lambda kv: (-kv[1], kv[0])):
        share = "all" if ratio == 1 else format_fraction(ratio)
        parts.append(
            f"{share} to {ROLE_WORDS.get(role, role)}, {WEIGHTING_WORDS[policy.weighting[role]]}"
        )
    sentences.append("Of the contributors' part: " + "; ".join(parts) + ".")
    if "valuation" in policy.weighting.values():
        sentences.append(
            "Negative values count as zero."
            if policy.negative_values == "clip"
            else "Values are shifted so that the lowest counts as zero."
        )
        sentences.append(
            "An input without a recorded value stops the sharing."
            if policy.missing_valuation == "refuse"
            else "An input without a recorded value falls back to its declared weight."
        )
    if policy.floor > 0:
        sentences.append(f"Each input gets at least {percent(policy.floor)} of its role's part.")
    if policy.cap < 1:
        sentences.append(f"No input gets more than {percent(policy.cap)} of its role's part.")
    if policy.upstream_mode == "fixed":
        sentences.append(
            f"Every ancestor model receives {percent(policy.upstream_share)} of what reaches "
            f"{asset_name}, shared under its own policy (fixed)."
        )
    elif "upstream_model" in policy.roles:
        sentences.append("Upstream models share their part under their own policies (dilute).")
    if policy.minimum_payout:
        amount = (
            f"{format_amount(policy.minimum_payout, currency)} {currency}"
            if currency
            else f"{policy.minimum_payout} minor units"
        )
        sentences.append(f"Balances below {amount} are carried to the next payout.")
    return " ".join(sentences)


def named_notes(notes: Iterable[str], names: Mapping[str, str]) -> list[str]:
    """Allocation notes with asset digests replaced by the assets' names."""
    return [_DIGEST_RE.sub(lambda m: names.get(m.group(0), m.group(0)), note) for note in notes]


__all__ = ["FORMAT", "ReportData", "build_report_data", "named_notes", "percent", "policy_in_words"]
