"""The facts a report is built from, as gathering (`quotepart.report.gather`) found them.

Typed values only: the builder (`quotepart.report.build`) turns them into the document
without reading anything more, so the same facts always give the same document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from quotepart.allocation.engine import Allocation
from quotepart.allocation.facts import Fact, SharingFacts
from quotepart.ids import Period
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    AssetRegistered,
    PolicySet,
    PrivacyReleased,
    RevenueRecorded,
    ValuationRecorded,
)
from quotepart.provenance.lineage import Lineage, LineageNode
from quotepart.store.queries.provenance import OverlapRecord
from quotepart.store.queries.report import CheckpointRow, UsageCounts
from quotepart.store.queries.rights import Claim, Delegation
from quotepart.store.usage_events import MeteredTotal

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Covered:
    """One allocation of the period, recomputed from the entries it names."""

    leaf_index: int
    entry: SignedEntry
    allocation: Allocation
    facts: SharingFacts
    revenue: RevenueRecorded


@dataclass(frozen=True, slots=True)
class InForce(Generic[T]):
    """The policy or valuation shown for a key, and how many of the period's allocations
    used it (0: the latest in the log, which no allocation of the period used)."""

    fact: Fact[T]
    used_by_allocations: int


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """Everything a report shows, read from the log and checked: no wording, no layout."""

    root: LineageNode  # the service or model reported on
    period: Period
    earners: tuple[str, ...]  # the root, then (for a model) its services, by digest
    covered: tuple[Covered, ...]  # in log order of their revenues
    graph: Lineage  # upstream of the root
    assets: Mapping[str, AssetRegistered]  # by digest: every asset the report names
    party_names: Mapping[str, str]  # by party id
    valuations: tuple[InForce[ValuationRecorded], ...]  # in the lineage's order
    policies: tuple[InForce[PolicySet], ...]  # in the lineage's order
    usage: UsageCounts
    checkpoint: CheckpointRow  # the first signed after every entry read
    operator: str  # party id of the root's registrant, who holds every right over it
    delegations: tuple[Delegation, ...]  # of rights over the reported assets, in log order
    claims: tuple[tuple[Claim, str], ...]  # on the lineage's assets, with their registrants
    # overlaps of or with the lineage's assets: (overlap, the copy's registrant, the
    # earlier asset's registrant), in log order
    overlaps: tuple[tuple[OverlapRecord, str, str], ...] = ()
    metered: tuple[MeteredTotal, ...] = ()  # the earners' meters, exact totals of the period
    # the period's private releases about the earners' usage: (leaf index, body), log order
    releases: tuple[tuple[int, PrivacyReleased], ...] = ()


__all__ = ["Covered", "InForce", "ReportFacts"]
