"""Gathering a report's facts from the log: every read the report makes, and nothing else.

Amounts are never read from projections: each allocation of the period is recomputed
from the entries it names (as a statement is) and must give the amounts the log
recorded before it is shown. The projections only say where to look.

The facts depend only on the log's entries, never on when they are read: the checkpoint
is the first one signed after the newest entry read, not the log's latest. So the same
facts give the same report, and `report.published` entries, which are not read, never
change it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection

from quotepart.allocation.facts import Fact, SharingFacts
from quotepart.allocation.recompute import recompute
from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, Period, RevenueId
from quotepart.log import NoteVerifier, SignedEntry
from quotepart.log.kinds import (
    AllocationRecorded,
    AssetRegistered,
    PrivacyReleased,
    ValuationRecorded,
)
from quotepart.provenance.lineage import describe_nodes, lineage, locate
from quotepart.report.build import build_report, usage_per
from quotepart.report.document import ReportData
from quotepart.report.facts import Covered, InForce, ReportFacts
from quotepart.store.queries.entries import entries_by_hash, read_entries
from quotepart.store.queries.in_force import latest_policy_leaves, latest_valuation_leaves
from quotepart.store.queries.provenance import OverlapRecord, asset_record, overlap_records
from quotepart.store.queries.report import (
    first_checkpoint_after,
    party_names,
    revenues_of,
    services_derived_from,
    usage_counts,
)
from quotepart.store.queries.rights import Claim, Delegation, claims_on, delegations
from quotepart.store.queries.sharing import allocation_leaf
from quotepart.store.usage_events import metered_totals, privacy_release_leaves

T = TypeVar("T")
REPORTED_KINDS = frozenset({"service", "model"})


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
        for row in party_names(self.conn, wanted):
            self.party_names[row.party_id] = row.name
            self.saw([row.leaf_index])

    def asset_bodies(self, digests: Iterable[str]) -> None:
        wanted = set(digests) - set(self.assets)
        if not wanted:
            return
        found = describe_nodes(self.conn, wanted)
        for _, entry in self.entries(node.leaf_index for node in found.values()):
            body = entry.body_as(AssetRegistered)
            self.assets[str(body.asset)] = body


def gather(conn: Connection, asset: Digest | str, period: Period | str) -> ReportFacts:
    """The facts of the report of `asset` (a service or a model, by digest or unique name)
    for `period`, read from the log and recomputed from its signed entries.

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
    earners = [str(Digest.parse(root.id))]
    if root.kind == "model":
        earners.extend(services_derived_from(conn, root_leaf))
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
    valued = _in_force(
        read, covered, lambda facts: facts.valuations, latest_valuation_leaves, models
    )
    for shown in valued:
        read.asset_bodies(str(d) for d in shown.fact.body.values)
    ruled = _in_force(
        read,
        covered,
        lambda facts: facts.policies,
        latest_policy_leaves,
        [node.id for node in graph.nodes if node.type == "asset"],
    )
    [(_, root_entry)] = read.entries([root_leaf])
    involved = sorted({*earners, *(node.id for node in graph.nodes if node.type == "asset")})
    delegated, claimed = _rights(read, involved)
    copied = _overlaps(read, involved)
    party_ids = {str(line.party) for c in covered for line in c.allocation.lines}
    party_ids |= {str(shown.fact.body.operator) for shown in ruled}
    party_ids |= {str(root_entry.author)}
    party_ids |= {str(p) for d in delegated for p in (d.grantor, d.grantee)}
    party_ids |= {p for claim, registrant in claimed for p in (str(claim.claimant), registrant)}
    party_ids |= {p for _, later, first in copied for p in (later, first) if p}
    read.names_of(party_ids)
    per = usage_per(the_period)
    usage = usage_counts(conn, earners, the_period.first_month, the_period.last_month, per=per)
    if usage.newest_leaf is not None:
        read.saw([usage.newest_leaf])
    first, last = the_period.first_month, the_period.last_month
    metered = metered_totals(conn, earners, first, last)
    read.saw(total.newest_leaf for total in metered)
    releases = tuple(
        (index, entry.body_as(PrivacyReleased))
        for index, entry in read.entries(privacy_release_leaves(conn, earners, first, last))
    )
    checkpoint = first_checkpoint_after(conn, read.newest)
    if checkpoint is None:  # only a log filled without checkpoints (benchmarks) lacks one
        raise InputError("no signed checkpoint covers the report's entries", hint="append an entry")
    return ReportFacts(
        root, the_period, tuple(earners), tuple(covered), graph, dict(read.assets),
        dict(read.party_names), tuple(valued), tuple(ruled), usage, checkpoint,
        str(root_entry.author), tuple(delegated), tuple(claimed), tuple(copied),
        tuple(metered), releases,
    )  # fmt: skip


def build_report_data(
    conn: Connection, asset: Digest | str, period: Period | str, *, verifier: NoteVerifier
) -> ReportData:
    """The report of `asset` for `period`: its facts gathered (see `gather`), then its
    document built; `verifier` is the log's key the report tells readers to check with."""
    return build_report(gather(conn, asset, period), verifier_key=str(verifier))


def _covered(read: _Reader, earners: list[str], period: Period, name: str) -> list[Covered]:
    in_period = sorted(
        (row.leaf_index, row.revenue_id)
        for row in revenues_of(read.conn, earners)
        if period.contains(Period.parse(row.period))
    )
    if not in_period:
        raise NotFoundError(
            f"{name!r} earned no recorded revenue in {period}",
            hint="record it with `quotepart revenue record`, or choose another period",
        )
    covered: list[Covered] = []
    for _leaf, revenue_text in in_period:
        revenue = RevenueId.parse(revenue_text)
        index = allocation_leaf(read.conn, revenue)
        if index is None:
            raise InputError(
                f"{revenue} ({name!r}, {period}) has not been shared yet",
                hint=f"share it first with `quotepart share {revenue}`, then publish the report",
            )
        [(_, entry)] = read.entries([index])
        body = entry.body_as(AllocationRecorded)
        inputs = entries_by_hash(read.conn, body.inputs)
        read.saw(i for i, _ in inputs)
        allocation = recompute(entry, inputs)  # raises unless it gives the recorded amounts
        facts = SharingFacts.from_entries(inputs, revenue)
        covered.append(Covered(index, entry, allocation, facts, facts.revenue.body))
    return covered


def _rights(read: _Reader, assets: list[str]) -> tuple[list[Delegation], list[tuple[Claim, str]]]:
    """The delegations of rights over `assets` (revoked ones included: what a delegate
    signed before stays valid) and the claims filed on them, each with its registrant."""
    digests = [Digest.parse(a) for a in assets]
    delegated = sorted(
        (d for digest in digests for d in delegations(read.conn, digest)),
        key=lambda d: d.leaf_index,
    )
    read.saw(d.leaf_index for d in delegated)
    read.saw(d.revoked_by for d in delegated if d.revoked_by is not None)
    claimed: list[tuple[Claim, str]] = []
    for claim in claims_on(read.conn, digests):
        record = asset_record(read.conn, claim.asset)
        registrant = "" if record is None else str(record.registered_by)
        claimed.append((claim, registrant))
        read.saw([claim.leaf_index])
    read.asset_bodies(str(claim.asset) for claim, _ in claimed)
    return delegated, claimed


def _overlaps(read: _Reader, assets: list[str]) -> list[tuple[OverlapRecord, str, str]]:
    """The overlaps of or with `assets` (the copy, or the original, in the lineage), each
    with the registrants of the copy and of the earlier asset."""
    found: list[tuple[OverlapRecord, str, str]] = []
    for overlap in overlap_records(read.conn, assets):
        later, first = (
            asset_record(read.conn, overlap.asset),
            asset_record(read.conn, overlap.earlier),
        )
        found.append(
            (
                overlap,
                "" if later is None else str(later.registered_by),
                "" if first is None else str(first.registered_by),
            )
        )
        read.saw([overlap.leaf_index])
    read.asset_bodies(str(d) for overlap, _, _ in found for d in (overlap.asset, overlap.earlier))
    return found


def _in_force(
    read: _Reader,
    covered: list[Covered],
    used_in: Callable[[SharingFacts], Mapping[Digest, Fact[Any]]],
    latest: Callable[[Connection, Sequence[str]], list[int]],
    keys: list[str],
) -> list[InForce[Any]]:
    """The latest valuation or policy of each key: among those the allocations used, else
    the latest in the log."""
    used: dict[str, list[Fact[Any]]] = {}
    for c in covered:
        for key, fact in used_in(c.facts).items():
            used.setdefault(str(key), []).append(fact)
    chosen = _latest(used)
    missing = [k for k in keys if k not in chosen]
    for index, entry in read.entries(latest(read.conn, missing)):
        body: Any = entry.body()
        key = body.model if isinstance(body, ValuationRecorded) else body.asset
        fact = Fact(body, entry.leaf_hash.hex(), index, entry.author, entry.time)
        chosen[str(key)] = InForce(fact, 0)
    return _in_order(chosen, keys)


def _latest(used: Mapping[str, list[Fact[T]]]) -> dict[str, InForce[T]]:
    """Per key: the newest fact, and how many of the allocations named it."""
    chosen: dict[str, InForce[T]] = {}
    for key, facts in used.items():
        newest = max(facts, key=lambda f: f.leaf_index)
        chosen[key] = InForce(newest, sum(1 for f in facts if f.entry == newest.entry))
    return chosen


def _in_order(chosen: dict[str, InForce[T]], keys: list[str]) -> list[InForce[T]]:
    """In the lineage's order (root first), then any others by key."""
    order = {k: i for i, k in enumerate(keys)}
    return [chosen[k] for k in sorted(chosen, key=lambda k: (order.get(k, len(order)), k))]


__all__ = ["REPORTED_KINDS", "build_report_data", "gather"]
