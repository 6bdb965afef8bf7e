"""`allocation.recorded` and `payout.recorded`: the money, as derived and as paid.

An allocation names every entry it was derived from (revenue, policies, valuations,
lineage, contributions, consents) by leaf hash, so anyone holding those entries can
run the allocation again and must get the same amounts. A payout records what one
export to a payment rail paid, what it carried to the next period because it was below
the minimum, and (from v2) what it held back with the reason: a payee it could not pay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Self

from quotepart.errors import MalformedEntryError, MoneyError
from quotepart.ids import Digest, PartyId, PayoutId, Period, RevenueId
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind
from quotepart.money import currency

PAYMENT_RAILS = frozenset({"mobile_money", "sepa"})
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def _amounts(read: BodyReader, name: str, *, optional: bool = False) -> dict[PartyId, int]:
    raw = read.mapping(name, optional=optional)
    out: dict[PartyId, int] = {}
    for party, amount in raw.items():
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise MoneyError(
                f"{read.kind}: {name}[{party}] must be a positive integer of minor units, "
                f"got {amount!r}",
                hint="parties that receive nothing are left out",
            )
        out[PartyId.parse(party)] = amount
    return out


def _amount_body(amounts: dict[PartyId, int]) -> RawBody:
    return {str(p): a for p, a in sorted(amounts.items())}


@entry_kind("allocation.recorded")
class AllocationRecorded(KindBody):
    revenue: RevenueId
    currency: str
    total_minor: int
    amounts: dict[PartyId, int]
    inputs: tuple[str, ...]  # leaf hashes (hex) of every entry the amounts derive from
    notes: tuple[str, ...] = ()

    def to_body(self) -> RawBody:
        return {
            "revenue": str(self.revenue),
            "currency": self.currency,
            "total_minor": self.total_minor,
            "amounts": _amount_body(self.amounts),
            "inputs": sorted(set(self.inputs)),
            "notes": list(self.notes),
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("revenue", "currency", "total_minor", "amounts", "inputs", "notes")
        amounts = _amounts(read, "amounts")
        total = read.integer("total_minor", minimum=1)
        if sum(amounts.values()) != total:
            raise MoneyError(
                f"{cls.KIND}: the amounts sum to {sum(amounts.values())}, not the total {total}",
                hint="an allocation shares the whole revenue, to the minor unit",
            )
        notes = body.get("notes")
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise MalformedEntryError(f"{cls.KIND}: notes must be a list of strings")
        return cls(
            revenue=RevenueId.parse(read.text("revenue")),
            currency=currency(read.text("currency")).code,
            total_minor=total,
            amounts=amounts,
            inputs=read.text_list("inputs", pattern=_HASH_RE),
            notes=tuple(notes),
        )


def upcast_payout_v1(body: RawBody) -> RawBody:
    """v1 held nobody back: a payee who could not be paid stopped the whole export."""
    return body


@dataclass(frozen=True, slots=True)
class Held:
    """A balance a payout could not pay, and why (never the account itself: it is off the log)."""

    amount_minor: int
    reason: str


@entry_kind("payout.recorded", version=2, upcasters={1: upcast_payout_v1})
class PayoutRecorded(KindBody):
    payout: PayoutId
    period: Period
    currency: str
    rail: str
    paid: dict[PartyId, int]
    carried: dict[PartyId, int] = field(default_factory=dict)
    minimum_minor: int = 0
    file: Digest | None = None  # digest of the exported payment file
    held: dict[PartyId, Held] = field(default_factory=dict)  # owed, not payable: carried
    # the day the bank is asked to execute a SEPA file: with the payout id, what makes the
    # file a pure function of this entry (absent before it was recorded, and for mobile money)
    execution_date: date | None = None

    def to_body(self) -> RawBody:
        body: RawBody = {
            "payout": str(self.payout),
            "period": str(self.period),
            "currency": self.currency,
            "rail": self.rail,
            "paid": _amount_body(self.paid),
            "carried": _amount_body(self.carried),
            "minimum_minor": self.minimum_minor,
        }
        if self.file is not None:
            body["file"] = str(self.file)
        if self.execution_date is not None:
            body["execution_date"] = self.execution_date.isoformat()
        if self.held:
            body["held"] = {
                str(p): {"amount_minor": h.amount_minor, "reason": h.reason}
                for p, h in sorted(self.held.items())
            }
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "payout", "period", "currency", "rail", "paid", "carried", "minimum_minor", "file",
            "held", "execution_date",
        )  # fmt: skip
        paid = _amounts(read, "paid")
        carried = _amounts(read, "carried", optional=True)
        minimum = read.integer("minimum_minor")
        if set(paid) & set(carried):
            raise MalformedEntryError(f"{cls.KIND}: a party both paid and carried")
        if any(a < minimum for a in paid.values()) or any(a >= minimum for a in carried.values()):
            raise MoneyError(
                f"{cls.KIND}: paid amounts must reach the minimum {minimum} and carried ones fall below it",
                hint="balances below the minimum payout are carried to the next period",
            )
        held = _held(read)
        if set(held) & (set(paid) | set(carried)):
            raise MalformedEntryError(f"{cls.KIND}: a party both held and paid or carried")
        file = read.text("file", optional=True)
        executed = read.text("execution_date", optional=True, max_length=10)
        try:
            execution_date = None if executed is None else date.fromisoformat(executed)
        except ValueError:
            raise MalformedEntryError(
                f"{cls.KIND}: execution_date must be a date like 2026-02-02, got {executed!r}"
            ) from None
        return cls(
            payout=PayoutId.parse(read.text("payout")),
            period=Period.parse(read.text("period")),
            currency=currency(read.text("currency")).code,
            rail=read.choice("rail", PAYMENT_RAILS),
            paid=paid,
            carried=carried,
            minimum_minor=minimum,
            file=None if file is None else Digest.parse(file),
            held=held,
            execution_date=execution_date,
        )


def _held(read: BodyReader) -> dict[PartyId, Held]:
    out: dict[PartyId, Held] = {}
    for party, raw in read.mapping("held", optional=True).items():
        if not isinstance(raw, dict) or set(raw) != {"amount_minor", "reason"}:
            raise MalformedEntryError(
                f"{read.kind}: held[{party}] must be {{amount_minor, reason}}"
            )
        amount, reason = raw["amount_minor"], raw["reason"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise MoneyError(
                f"{read.kind}: held[{party}] must hold a positive integer of minor units, "
                f"got {amount!r}"
            )
        if not isinstance(reason, str) or not reason or len(reason) > 300:
            raise MalformedEntryError(
                f"{read.kind}: held[{party}].reason must be 1 to 300 characters"
            )
        out[PartyId.parse(party)] = Held(amount, reason)
    return out
