"""`usage.recorded`: a service was used for some units by a pseudonymous consumer in a window.

The consumer is never named on the log: only a keyed hash (HMAC-SHA256 under a key the
operator keeps off the log) of its identifier, so usage can be counted per consumer
without telling anyone who the consumers are.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest, format_timestamp, parse_timestamp
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

_PSEUDONYM_RE = re.compile(r"^hmac-sha256:[0-9a-f]{64}$")


@entry_kind("usage.recorded")
class UsageRecorded(KindBody):
    service: Digest
    consumer: str  # hmac-sha256:<hex>
    units: int
    start: datetime
    end: datetime

    def to_body(self) -> RawBody:
        return {
            "service": str(self.service),
            "consumer": self.consumer,
            "units": self.units,
            "start": format_timestamp(self.start),
            "end": format_timestamp(self.end),
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("service", "consumer", "units", "start", "end")
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
        return cls(
            service=Digest.parse(read.text("service")),
            consumer=consumer,
            units=read.integer("units", minimum=1),
            start=start,
            end=end,
        )
