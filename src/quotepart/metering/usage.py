"""Usage entries and billing; mixed into `quotepart.Workspace`."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, func, select

from quotepart.errors import InputError
from quotepart.ids import Clock, Digest, PartyId, Period
from quotepart.log.kinds import EntryBody, UsageRecorded
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.store import LogStore
from quotepart.store.schema import usage

USAGE_KEY_FILE = "usage.key"


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


def units_used(conn: Connection, service: Digest, period: Period) -> int:
    """Units of `service` used in windows starting within `period`."""
    total = conn.execute(
        select(func.sum(usage.c.units)).where(
            usage.c.service == str(service),
            usage.c.month >= period.first_month,
            usage.c.month <= period.last_month,
        )
    ).scalar()
    return int(total or 0)


class UsageRecorder:
    """Usage methods of a workspace (see `quotepart.workspace.Workspace`)."""

    store: LogStore
    clock: Clock
    path: Path

    def append_many(self, items: Sequence[tuple[EntryBody, PartyId]]) -> list[int]:  # supplied
        raise NotImplementedError

    def _usage_key(self) -> bytes:
        """The pseudonymisation key, made on first use and kept in the workspace's keys (0600)."""
        path = self.path / "keys" / USAGE_KEY_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        return path.read_bytes()

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
        digest = asset_digest(service)
        key = self._usage_key()
        bodies: list[tuple[EntryBody, PartyId]] = []
        for event in events:
            if not isinstance(event.units, int) or isinstance(event.units, bool) or event.units < 1:
                raise InputError(
                    f"usage of {event.units!r} units", hint="units are a positive whole number"
                )
            body = UsageRecorded(
                digest,
                pseudonymise(key, event.consumer),
                event.units,
                event.at,
                event.at + event.duration,
            )
            bodies.append((body, by))
        return self.append_many(bodies)

    def usage_units(self, service: AssetRef, period: str | Period) -> int:
        with self.store.engine.connect() as conn:
            return units_used(conn, asset_digest(service), Period.parse(str(period)))


__all__ = ["USAGE_KEY_FILE", "UsageEvent", "UsageRecorder", "pseudonymise", "units_used"]
