"""The facts one allocation is derived from, read from signed entries alone.

The same code builds them from a workspace's database and from a statement file on a
machine with no workspace, so an allocation can be recomputed anywhere. Where the facts
hold several policies of an asset, or several valuations of a model, the one appended
last (highest leaf index) applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from quotepart.errors import InputError, VerificationError
from quotepart.ids import Digest, PartyId, RevenueId
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    AssetRegistered,
    ConsentRecorded,
    ContributionAccepted,
    ContributionRecorded,
    OverlapDetected,
    PolicySet,
    RevenueRecorded,
    RunRecorded,
    ValuationRecorded,
)

T = TypeVar("T")

INPUT_KINDS = frozenset(
    {
        RevenueRecorded.KIND,
        AssetRegistered.KIND,
        RunRecorded.KIND,
        ContributionRecorded.KIND,
        ContributionAccepted.KIND,
        PolicySet.KIND,
        ValuationRecorded.KIND,
        ConsentRecorded.KIND,
        OverlapDetected.KIND,
    }
)
"""The entry kinds an allocation may be derived from."""


@dataclass(frozen=True, slots=True)
class Fact(Generic[T]):
    """A decoded entry body with where it lies in the log."""

    body: T
    entry: str  # leaf hash, hex: how statements and allocations name it
    leaf_index: int
    author: PartyId
    timestamp: datetime


@dataclass(slots=True)
class SharingFacts:
    revenue: Fact[RevenueRecorded]
    assets: dict[Digest, Fact[AssetRegistered]] = field(default_factory=dict)
    generated_by: dict[Digest, list[Fact[RunRecorded]]] = field(default_factory=dict)
    contributions: dict[Digest, list[Fact[ContributionRecorded]]] = field(default_factory=dict)
    policies: dict[Digest, Fact[PolicySet]] = field(default_factory=dict)
    valuations: dict[Digest, Fact[ValuationRecorded]] = field(default_factory=dict)
    consents: dict[tuple[PartyId, Digest], list[Fact[ConsentRecorded]]] = field(
        default_factory=dict
    )
    overlaps: dict[Digest, list[Fact[OverlapDetected]]] = field(default_factory=dict)
    entries: list[str] = field(default_factory=list)  # every leaf hash read, sorted

    @classmethod
    def from_entries(
        cls, entries: Iterable[tuple[int, SignedEntry]], revenue: RevenueId
    ) -> SharingFacts:
        """Read the facts of `revenue`'s allocation out of (leaf index, entry) pairs.

        Raises:
            InputError: an entry of a kind an allocation does not read.
            VerificationError: the revenue is missing, or appears twice.
        """
        facts: list[Fact[Any]] = []
        seen: set[str] = set()
        for leaf_index, entry in sorted(entries, key=lambda pair: pair[0]):
            name = entry.leaf_hash.hex()
            if name not in seen:
                seen.add(name)
                facts.append(Fact(entry.body(), name, leaf_index, entry.author, entry.time))
        return cls.of(facts, revenue)

    @classmethod
    def of(cls, facts: Iterable[Fact[Any]], revenue: RevenueId) -> SharingFacts:
        """Sort decoded facts by kind. Lists keep the order given; where several policies of
        an asset (or valuations of a model) are given, the one with the highest leaf index
        applies, whatever the order.

        Raises:
            InputError: a fact of a kind an allocation does not read.
            VerificationError: the revenue is missing, or appears twice.
        """
        revenue_fact: Fact[RevenueRecorded] | None = None
        out = cls.__new__(cls)
        out.assets, out.generated_by, out.contributions = {}, {}, {}
        out.policies, out.valuations, out.consents, out.overlaps = {}, {}, {}, {}
        names: list[str] = []
        accepted: dict[str, PartyId] = {}  # proposal leaf hash -> who accepted it
        for fact in facts:
            body = fact.body
            names.append(fact.entry)
            if isinstance(body, RevenueRecorded):
                if body.revenue == revenue:
                    if revenue_fact is not None:
                        raise VerificationError(f"{revenue} is recorded twice in the facts")
                    revenue_fact = fact
            elif isinstance(body, AssetRegistered):
                out.assets[body.asset] = fact
            elif isinstance(body, RunRecorded):
                if body.status == "succeeded":
                    for output in body.outputs:
                        out.generated_by.setdefault(output, []).append(fact)
            elif isinstance(body, ContributionRecorded):
                out.contributions.setdefault(body.asset, []).append(fact)
            elif isinstance(body, ContributionAccepted):
                accepted[body.contribution] = fact.author
            elif isinstance(body, PolicySet):
                _keep_latest(out.policies, body.asset, fact)
            elif isinstance(body, ValuationRecorded):
                _keep_latest(out.valuations, body.model, fact)
            elif isinstance(body, ConsentRecorded):
                out.consents.setdefault((body.party, body.asset), []).append(fact)
            elif isinstance(body, OverlapDetected):
                out.overlaps.setdefault(body.asset, []).append(fact)
            else:
                raise InputError(
                    f"an allocation is not derived from {type(body).__name__} facts",
                    hint=f"its inputs are {', '.join(sorted(INPUT_KINDS))}",
                )
        if revenue_fact is None:
            raise VerificationError(
                f"the facts do not hold {revenue}", hint="include the revenue.recorded entry"
            )
        _check_accepted(out, accepted)
        for actions in out.consents.values():
            actions.sort(key=lambda f: f.leaf_index)  # consent is read in the log's order
        for found in out.overlaps.values():
            found.sort(key=lambda f: f.leaf_index)
        out.revenue = revenue_fact
        out.entries = sorted(set(names))
        return out


def _check_accepted(facts: SharingFacts, accepted: dict[str, PartyId]) -> None:
    """A share counts when the asset's registrant recorded it, or accepted it after its
    contributor proposed it (docs/rights.md, rule `contribution`); anything else in the
    facts means they were not read from an honest log."""
    for digest, found in facts.contributions.items():
        asset = facts.assets.get(digest)
        if asset is None:
            continue  # the allocation walk says an asset is missing
        for fact in found:
            if fact.author != asset.author and accepted.get(fact.entry) != asset.author:
                raise VerificationError(
                    f"the contribution {fact.entry[:16]}… to {digest} was signed by "
                    f"{fact.author}, not its registrant {asset.author}, and the facts hold "
                    "no acceptance of it by the registrant",
                    hint="a share proposed by its contributor counts only once the "
                    "registrant accepts it",
                )


def _keep_latest(found: dict[Digest, Fact[Any]], key: Digest, fact: Fact[Any]) -> None:
    current = found.get(key)
    if current is None or fact.leaf_index > current.leaf_index:
        found[key] = fact
