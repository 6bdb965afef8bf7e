"""Sharing facts built directly (no signing), so properties can run on big random lineages."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from quotepart.allocation.facts import Fact, SharingFacts
from quotepart.ids import Digest, PartyId, Period, RevenueId, RunId
from quotepart.log.kinds import (
    AssetRegistered,
    ConsentRecorded,
    ContributionRecorded,
    OverlapDetected,
    PolicySet,
    RevenueRecorded,
    RunRecorded,
    ValuationRecorded,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Graph:
    """A lineage under construction; `facts()` freezes it into SharingFacts."""

    def __init__(self) -> None:
        self.counter = 0
        self.items: list[Fact[Any]] = []
        self.operator = self.party()
        self.registrant: dict[Digest, PartyId] = {}

    def _fact(self, body: Any, author: PartyId | None = None) -> Fact[Any]:
        self.counter += 1
        name = hashlib.sha256(str(self.counter).encode()).hexdigest()
        fact = Fact(
            body, name, self.counter, author or self.operator, T0 + timedelta(seconds=self.counter)
        )
        self.items.append(fact)
        return fact

    def party(self) -> PartyId:
        self.counter += 1
        return PartyId(f"01J{self.counter:023d}".replace("I", "1")[:26])

    def asset(
        self,
        kind: str,
        *,
        size: int | None = None,
        derived_from: tuple[Digest, ...] = (),
        author: PartyId | None = None,
    ) -> Digest:
        self.counter += 1
        digest = Digest.of_bytes(f"asset {self.counter}".encode())
        self._fact(
            AssetRegistered(
                digest, kind, f"{kind} {self.counter}", size=size, derived_from=derived_from
            ),
            author=author,
        )
        self.registrant[digest] = author or self.operator
        return digest

    def run(
        self,
        inputs: list[Digest],
        outputs: list[Digest],
        *,
        started: datetime = T0 + timedelta(days=30),
    ) -> None:
        self.counter += 1
        body = RunRecorded(
            RunId(f"01K{self.counter:023d}"[:26]), "train", self.operator, "succeeded", started,
            started + timedelta(hours=1), tuple(inputs), tuple(outputs),
        )  # fmt: skip
        self._fact(body)

    def contribute(
        self, asset: Digest, party: PartyId, share: Fraction | str | int, role: str = "data"
    ) -> None:
        # recorded by the asset's registrant, as the rules ask
        self._fact(
            ContributionRecorded(party, asset, role, Fraction(share)), author=self.registrant[asset]
        )

    def policy(self, asset: Digest, *, pool: str = "1/5", roles: dict[str, str] | None = None,
               weighting: dict[str, str] | None = None, **options: Any) -> None:  # fmt: skip
        ratios = {r: Fraction(v) for r, v in (roles or {"data": "1"}).items()}
        weights = weighting or dict.fromkeys(ratios, "valuation")
        self._fact(PolicySet(asset, self.operator, Fraction(pool), ratios, weights, **options))

    def valuation(
        self,
        model: Digest,
        values: dict[Digest, str],
        stderr: dict[Digest, str] | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        self._fact(
            ValuationRecorded(model, values, "exact", 4, True, stderr or {}, parameters or {})
        )

    def overlap(self, asset: Digest, earlier: Digest, records: int, of: int) -> None:
        """`asset` holds `records` of its `of` records that `earlier` holds too."""
        self._fact(
            OverlapDetected(asset, earlier, records, of, "exact"), author=self.registrant[asset]
        )

    def consent(self, party: PartyId, asset: Digest, action: str, effective: datetime) -> None:
        self._fact(ConsentRecorded(party, asset, action, effective), author=party)

    def revenue(
        self, asset: Digest, amount: int, currency: str = "EUR", period: str = "2026-Q1"
    ) -> RevenueId:
        self.counter += 1
        revenue = RevenueId(f"01R{self.counter:023d}"[:26])
        self._fact(RevenueRecorded(revenue, asset, Period.parse(period), amount, currency, "test"))
        self.last_revenue = revenue
        return revenue

    def facts(self, *, shuffle: int | None = None) -> SharingFacts:
        """The facts, handed over in a shuffled order when `shuffle` is a seed."""
        items = list(self.items)
        if shuffle is not None:
            random.Random(shuffle).shuffle(items)
        return SharingFacts.of(items, self.last_revenue)
