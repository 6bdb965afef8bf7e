"""`usage.recorded`: a service was used for some units by a pseudonymous consumer in a window.

The consumer is never named on the log: only a keyed hash (HMAC-SHA256 under a key the
operator keeps off the log) of its identifier, so usage can be counted per consumer
without telling anyone who the consumers are.

Usage counts in the month its window starts, unless that month is already billed (a
revenue of the service covers it): then it counts in the next open month, named in
`counted_in` (from v2), and `note` says why. Nothing is ever booked into a closed month.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest, Period, format_timestamp, parse_timestamp
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

_PSEUDONYM_RE = re.compile(r"^hmac-sha256:[0-9a-f]{64}$")


def upcast_usage_v1(body: RawBody) -> RawBody:
    """v1 usage always counted in the month its window starts."""
    return body


@entry_kind("usage.recorded", version=2, upcasters={1: upcast_usage_v1})
class UsageRecorded(KindBody):
    service: Digest
    consumer: str  # hmac-sha256:<hex>
    units: int
    start: datetime
    end: datetime
    counted_in: Period | None = None  # a later month, when the start's month was billed
    note: str | None = None  # why it counts there

    @property
    def month(self) -> int:
        """The month it counts in, as `year * 12 + month - 1`."""
        if self.counted_in is not None:
            return self.counted_in.first_month
        return self.start.year * 12 + self.start.month - 1

    def to_body(self) -> RawBody:
        body: RawBody = {
            "service": str(self.service),
            "consumer": self.consumer,
            "units": self.units,
            "start": format_timestamp(self.start),
            "end": format_timestamp(self.end),
        }
        if self.counted_in is not None:
            body["counted_in"] = str(self.counted_in)
        if self.note is not None:
            body["note"] = self.note
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("service", "consumer", "units", "start", "end", "counted_in", "note")
        consumer = read.text("consumer")
        if not _PSEUDONYM_RE.match(consumer):
            raise MalformedEntryError(
                f"{cls.KIND}: consumer must be a pseudonym hmac-sha256:<64 hex>, got {consumer!r}",
                hint="consumers are pseudonymised before anything is stored",
            )
        start = parse_timestamp(read.text("start"))
        end = parse_timestamp(read.text("end"))
        if end < start:
            raise MalformedEntryError(f"{cls.KIND}: the window ends before it starts")
        counted_text = read.text("counted_in", optional=True)
        counted_in = None if counted_text is None else Period.parse(counted_text)
        if counted_in is not None and (
            counted_in.first_month != counted_in.last_month
            or counted_in.first_month <= start.year * 12 + start.month - 1
        ):
            raise MalformedEntryError(
                f"{cls.KIND}: counted_in {counted_text} must be one month after the month "
                f"the usage starts in ({format_timestamp(start)[:7]})",
                hint="late usage moves forward to the next open month, never back",
            )
        return cls(
            service=Digest.parse(read.text("service")),
            consumer=consumer,
            units=read.integer("units", minimum=1),
            start=start,
            end=end,
            counted_in=counted_in,
            note=read.text("note", optional=True),
        )
