"""Building the report's document from its gathered facts: pure, no reads, no clock.

Gathering (`quotepart.report.gather`) has read and checked every fact; this module only
sums, sorts, names and words them, so the same facts always give the same document and
the same report.json bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal

from quotepart.ids import Digest, PartyId, Period
from quotepart.log.kinds import AssetRegistered, PolicySet, ValuationRecorded
from quotepart.money import format_amount
from quotepart.report.document import (
    FORMAT,
    AllocationRef,
    AssetFlow,
    CopiedRecords,
    Delegate,
    Earner,
    FiledClaim,
    LineageEdge,
    LineageGraph,
    LineageNode,
    MeteredUsage,
    Money,
    MoneyFlow,
    PaidAt,
    PartyFlow,
    PartyLine,
    PinnedCheckpoint,
    Player,
    Policy,
    PrivateRelease,
    ReportData,
    ReportDocument,
    ReportedAsset,
    RevenueLine,
    Rights,
    Totals,
    Usage,
    UsagePoint,
    Valuation,
    Verification,
)
from quotepart.report.facts import Covered, InForce, ReportFacts
from quotepart.report.words import REASON_WORDS, ROLE_WORDS, policy_in_words


class _Names:
    """Assets and parties by name, falling back to (a prefix of) their ids."""

    def __init__(self, assets: Mapping[str, AssetRegistered], parties: Mapping[str, str]) -> None:
        self.assets = assets
        self.parties = parties

    def asset(self, digest: Digest | str) -> str:
        body = self.assets.get(str(digest))
        return body.name if body is not None else str(digest)[:19] + "…"

    def party(self, party: PartyId | str) -> str:
        return self.parties.get(str(party), str(party))


def usage_per(period: Period) -> Literal["day", "month"]:
    """Usage is counted per day, or per month for a period longer than a quarter."""
    return "month" if period.last_month - period.first_month >= 3 else "day"


def build_report(facts: ReportFacts, *, verifier_key: str) -> ReportData:
    """The report's document (and what publishing it needs) from its facts.

    `verifier_key` is the log's key, as the reader passes it to `verify-statement`.
    """
    names = _Names(facts.assets, facts.party_names)
    root = facts.root
    digest = Digest.parse(root.id)
    covered = facts.covered
    currencies = sorted({c.revenue.currency for c in covered})
    allocations = tuple(sorted(c.entry.leaf_hash.hex() for c in covered))
    document = ReportDocument(
        format=FORMAT,
        asset=ReportedAsset(root.id, root.name, root.kind),
        period=str(facts.period),
        earned_by=tuple(Earner(d, names.asset(d)) for d in facts.earners),
        revenues=tuple(_revenue(c) for c in covered),
        totals=_totals(covered),
        parties=_parties(names, covered),
        lineage=_lineage(facts, digest, names),
        valuations=tuple(_valuation(names, shown) for shown in facts.valuations),
        money_flow={code: _flow(names, covered, code) for code in currencies},
        usage=_usage(facts, names),
        policies=tuple(
            _policy(names, shown, currencies[0] if len(currencies) == 1 else None)
            for shown in facts.policies
        ),
        rights=_rights(facts, names),
        verification=_verification(facts, verifier_key, allocations),
    )
    return ReportData(
        document, digest, facts.period, root.name, allocations, covered[0].entry.author
    )


def _money(amount_minor: int, code: str) -> Money:
    return Money(amount_minor, format_amount(amount_minor, code))


def _revenue(c: Covered) -> RevenueLine:
    r = c.revenue
    return RevenueLine(
        revenue=str(r.revenue),
        asset=str(r.asset),
        period=str(r.period),
        amount_minor=r.amount_minor,
        amount=format_amount(r.amount_minor, r.currency),
        currency=r.currency,
        source=r.source,
        entry=c.facts.revenue.entry,
        allocation=AllocationRef(c.leaf_index, c.entry.leaf_hash.hex()),
        notes=tuple(c.allocation.notes),
    )


def _totals(covered: tuple[Covered, ...]) -> dict[str, Totals]:
    totals: dict[str, dict[str, int]] = {}
    for c in covered:
        sums = totals.setdefault(c.revenue.currency, {})
        sums["earned"] = sums.get("earned", 0) + c.revenue.amount_minor
        for line in c.allocation.lines:
            key = "operators" if line.reason in ("retained", "unallocated") else "contributors"
            sums[key] = sums.get(key, 0) + line.amount_minor
    return {
        code: Totals(
            earned=_money(sums["earned"], code),
            to_contributors=_money(sums.get("contributors", 0), code),
            kept_by_operators=_money(sums.get("operators", 0), code),
        )
        for code, sums in sorted(totals.items())
    }


def _parties(names: _Names, covered: tuple[Covered, ...]) -> tuple[PartyLine, ...]:
    """Per party and currency: the amount, as what and at which assets."""
    amounts: dict[tuple[str, str], int] = {}
    roles: dict[tuple[str, str], set[str]] = {}
    paid_at: dict[tuple[str, str], dict[str, int]] = {}
    for c in covered:
        code = c.revenue.currency
        for line in c.allocation.lines:
            key = (str(line.party), code)
            amounts[key] = amounts.get(key, 0) + line.amount_minor
            roles.setdefault(key, set()).add(
                ROLE_WORDS.get(line.contribution.ref, line.contribution.ref)
                if line.contribution is not None
                else REASON_WORDS.get(line.reason, line.reason)
            )
            at = paid_at.setdefault(key, {})
            at[str(line.at)] = at.get(str(line.at), 0) + line.amount_minor
    return tuple(
        PartyLine(
            party=party,
            name=names.party(party),
            currency=code,
            amount_minor=amount,
            amount=format_amount(amount, code),
            as_=tuple(sorted(roles[party, code])),
            at=tuple(
                PaidAt(asset, names.asset(asset), paid, format_amount(paid, code))
                for asset, paid in sorted(
                    paid_at[party, code].items(), key=lambda kv: (-kv[1], kv[0])
                )
                if paid
            ),
        )
        for (party, code), amount in sorted(
            amounts.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0])
        )
        if amount != 0
    )


def _lineage(facts: ReportFacts, root: Digest, names: _Names) -> LineageGraph:
    nodes = [LineageNode(n.id, n.type, n.kind, n.name, n.status) for n in facts.graph.nodes]
    edges = [LineageEdge(e.parent, e.child, e.relation) for e in facts.graph.edges]
    for service in facts.earners:
        if service != str(root):  # a model's services: drawn downstream of it
            nodes.append(LineageNode(service, "asset", "service", names.asset(service), None))
            edges.append(LineageEdge(str(root), service, "derived"))
    return LineageGraph(str(root), tuple(nodes), tuple(edges))


def _valuation(names: _Names, shown: InForce[ValuationRecorded]) -> Valuation:
    body = shown.fact.body
    players = tuple(
        Player(
            asset=str(d),
            name=names.asset(d),
            kind=names.assets[str(d)].asset_kind if str(d) in names.assets else None,
            value=value,
            stderr=body.stderr.get(d),
        )
        for d, value in sorted(body.values.items(), key=lambda kv: -Fraction(kv[1]))
    )
    return Valuation(
        model=str(body.model),
        model_name=names.asset(body.model),
        entry=shown.fact.entry,
        method=body.method,
        parameters=dict(sorted(body.parameters.items())),
        seed=body.seed,
        evaluations=body.evaluations,
        converged=body.converged,
        utility=body.utility,
        used_by_allocations=shown.used_by_allocations,
        players=players,
    )


def _flow(names: _Names, covered: tuple[Covered, ...], code: str) -> MoneyFlow:
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
    return MoneyFlow(
        assets=tuple(
            AssetFlow(s, t, None if s is None else names.asset(s), names.asset(t), a)
            for (s, t), a in sorted(edges.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
            if a
        ),
        parties=tuple(
            PartyFlow(at, names.asset(at), p, names.party(p), a)
            for (at, p), a in sorted(paid.items())
            if a
        ),
    )


def _usage(facts: ReportFacts, names: _Names) -> Usage:
    """Units per day (per month for a year) and distinct consumer pseudonyms: counts only."""
    period, counts = facts.period, facts.usage
    per = usage_per(period)
    counted = {b.start: b for b in counts.buckets}
    series = tuple(
        UsagePoint(start, counted[start].units, counted[start].consumers)
        if start in counted
        else UsagePoint(start, 0, 0)
        for start in _buckets(period, per)
    )
    units_named = {
        str((names.assets[e].metadata or {}).get("unit", "unit"))
        for e in facts.earners
        if e in names.assets
    }
    return Usage(
        unit=units_named.pop() if len(units_named) == 1 else "unit",
        per=per,
        series=series,
        total_units=counts.total_units,
        distinct_consumers=counts.distinct_consumers,
        metered=tuple(
            MeteredUsage(
                t.service, names.asset(t.service), t.meter, t.aggregation, t.events, t.total
            )
            for t in facts.metered
        ),
        private=tuple(
            PrivateRelease(
                str(body.service),
                names.asset(body.service),
                body.meter,
                str(body.period),
                body.query,
                body.mechanism,
                body.epsilon,
                body.values,
                index,
            )
            for index, body in facts.releases
        ),
    )


def _buckets(period: Period, per: Literal["day", "month"]) -> list[str]:
    """Every day ("2026-01-31") or month ("2026-01") of `period`, in order."""
    start = date(period.first_month // 12, period.first_month % 12 + 1, 1)
    end_month = period.last_month + 1
    end = date(end_month // 12, end_month % 12 + 1, 1)
    width = 7 if per == "month" else 10
    buckets: list[str] = []
    day = start
    while day < end:
        buckets.append(day.isoformat()[:width])
        day = (
            date(day.year + day.month // 12, day.month % 12 + 1, 1)
            if per == "month"
            else day + timedelta(days=1)
        )
    return buckets


def _policy(names: _Names, shown: InForce[PolicySet], currency: str | None) -> Policy:
    body = shown.fact.body
    return Policy(
        asset=str(body.asset),
        name=names.asset(body.asset),
        entry=shown.fact.entry,
        operator=str(body.operator),
        operator_name=names.party(body.operator),
        words=policy_in_words(
            body,
            asset_name=names.asset(body.asset),
            operator_name=names.party(body.operator),
            currency=currency,
        ),
        rules=body.to_body(),
        used_by_allocations=shown.used_by_allocations,
    )


def _rights(facts: ReportFacts, names: _Names) -> Rights:
    return Rights(
        operator=facts.operator,
        operator_name=names.party(facts.operator),
        delegates=tuple(
            Delegate(
                party=str(d.grantee),
                name=names.party(d.grantee),
                right=d.right,
                asset=str(d.asset),
                asset_name=names.asset(d.asset),
                granted_by=str(d.grantor),
                granted_by_name=names.party(d.grantor),
                since=d.since.isoformat(),
                until=None if d.until is None else d.until.isoformat(),
                entry=d.leaf_index,
                revoked_at=d.revoked_by,
            )
            for d in facts.delegations
        ),
        claims=tuple(
            FiledClaim(
                asset=str(claim.asset),
                asset_name=names.asset(claim.asset),
                registrant=registrant,
                registrant_name=names.party(registrant),
                claimant=str(claim.claimant),
                claimant_name=names.party(claim.claimant),
                reason=claim.reason,
                entry=claim.leaf_index,
            )
            for claim, registrant in facts.claims
        ),
        overlaps=tuple(
            CopiedRecords(
                asset=str(overlap.asset),
                asset_name=names.asset(overlap.asset),
                registrant_name=names.party(registrant),
                earlier=str(overlap.earlier),
                earlier_name=names.asset(overlap.earlier),
                earlier_registrant_name=names.party(first),
                records=overlap.records,
                of=overlap.of,
                match=overlap.match,
                entry=overlap.leaf_index,
            )
            for overlap, registrant, first in facts.overlaps
        ),
    )


def _verification(
    facts: ReportFacts, verifier_key: str, allocations: tuple[str, ...]
) -> Verification:
    checkpoint = facts.checkpoint
    return Verification(
        checkpoint=PinnedCheckpoint(
            checkpoint.tree_size, checkpoint.root_hash.hex(), checkpoint.note
        ),
        verifier_key=verifier_key,
        allocations=allocations,
        commands=(
            "quotepart verify",
            f"quotepart statement PARTY --period {facts.period} --proof > mine.json",
            f"quotepart verify-statement mine.json --key '{verifier_key}'",
        ),
    )


__all__ = ["build_report", "usage_per"]
