"""The metering service: usage of a service by pseudonymised consumers.

Consumers are pseudonymised here, with the workspace's keyed-hash secret, before
anything is signed or stored: the log never holds a clear consumer id.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from quotepart.errors import InputError
from quotepart.ids import PartyId, Period
from quotepart.log.kinds import EntryBody, UsageRecorded
from quotepart.provenance.resolve import AssetOrName, resolve_asset
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.store.ledger import Ledger
from quotepart.store.queries.rights import billed_months
from quotepart.store.queries.usage import units_used


def _open_month(at: datetime, billed: set[int]) -> tuple[Period | None, str | None]:
    """Where usage starting `at` counts: its own month, or the first open one after it."""
    month = at.year * 12 + at.month - 1
    if month not in billed:
        return None, None
    opened = month
    while opened in billed:
        opened += 1
    counted_in = Period.of_month(opened)
    return counted_in, f"late: {at:%Y-%m} was already billed, so this usage counts in {counted_in}"


def pseudonymise(key: bytes, consumer: str) -> str:
    """`hmac-sha256:<hex>` of a consumer id: stable per key, unlinkable without it."""
    if not isinstance(consumer, str) or not consumer.strip():
        raise InputError(f"not a consumer id: {consumer!r}", hint="pass the consumer's own id")
    return "hmac-sha256:" + hmac.new(key, consumer.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class UsageEvent:
    consumer: str  # the clear id; only its pseudonym is stored
    units: int
    at: datetime
    duration: timedelta = timedelta(0)


class Metering:
    """Who used which service, how much: usage entries signed by the service's side."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def _usage_key(self) -> bytes:
        return self.ledger.keys.usage_key()

    def pseudonym(self, consumer: str) -> str:
        return pseudonymise(self._usage_key(), consumer)

    def record_usage(
        self, service: AssetRef, consumer: str, units: int, at: datetime, *, by: PartyId
    ) -> int:
        """One use of `service` by `consumer` (pseudonymised here, before anything is stored)."""
        return self.record_usage_many(service, [UsageEvent(consumer, units, at)], by=by)[0]

    def record_usage_many(
        self, service: AssetRef, events: Sequence[UsageEvent], *, by: PartyId
    ) -> list[int]:
        """Usage of `service`, one entry per event. An event in a month already billed (a
        revenue of the service covers it) counts in the next open month instead, and its
        entry's note says so: a billed month is closed (docs/rights.md)."""
        digest = asset_digest(service)
        key = self._usage_key()
        with self.ledger.read() as conn:
            billed = billed_months(conn, digest)
        bodies: list[tuple[EntryBody, PartyId]] = []
        for event in events:
            if not isinstance(event.units, int) or isinstance(event.units, bool) or event.units < 1:
                raise InputError(
                    f"usage of {event.units!r} units", hint="units are a positive whole number"
                )
            counted_in, note = _open_month(event.at, billed)
            body = UsageRecorded(
                digest,
                pseudonymise(key, event.consumer),
                event.units,
                event.at,
                event.at + event.duration,
                counted_in,
                note,
            )
            bodies.append((body, by))
        return self.ledger.append_many(bodies)

    def usage_units(self, service: AssetOrName, period: str | Period) -> int:
        """Units of `service` (a digest, prefix or name) used in windows starting within `period`.

        Raises:
            NotFoundError: `service` is not registered (rather than 0 units for a typo).
        """
        the_period = Period.parse(str(period))
        with self.ledger.read() as conn:
            return units_used(conn, resolve_asset(conn, service), the_period)


__all__ = ["Metering", "UsageEvent", "pseudonymise"]
