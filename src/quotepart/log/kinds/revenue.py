"""`revenue.recorded`: money a service or model earned in one period, in integer minor units.

Negative revenue is refused, not netted: a refund cannot be clawed back from
contributors who may already have been paid, so it is booked by recording the next
period's revenue net of it (see docs/sharing.md).
"""

from __future__ import annotations

from typing import Self

from quotepart.errors import MoneyError
from quotepart.ids import Digest, Period, RevenueId
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind
from quotepart.money import currency


@entry_kind("revenue.recorded")
class RevenueRecorded(KindBody):
    revenue: RevenueId
    asset: Digest  # the service or model that earned it
    period: Period
    amount_minor: int
    currency: str  # ISO 4217
    source: str  # where the money came from: an invoice, a payment processor's payout id

    def to_body(self) -> RawBody:
        return {
            "revenue": str(self.revenue),
            "asset": str(self.asset),
            "period": str(self.period),
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "source": self.source,
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("revenue", "asset", "period", "amount_minor", "currency", "source")
        amount = body.get("amount_minor")
        if isinstance(amount, int) and not isinstance(amount, bool) and amount <= 0:
            raise MoneyError(
                f"revenue must be positive, got {amount} minor units",
                hint="a refund is booked by recording the next period's revenue net of it; "
                "money already shared is never clawed back",
            )
        return cls(
            revenue=RevenueId.parse(read.text("revenue")),
            asset=Digest.parse(read.text("asset")),
            period=Period.parse(read.text("period")),
            amount_minor=read.integer("amount_minor", minimum=1),
            currency=currency(read.text("currency")).code,
            source=read.text("source"),
        )
