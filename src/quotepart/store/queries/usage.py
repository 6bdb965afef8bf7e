"""Questions about usage: how much of a service was used in a period."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from quotepart.ids import Digest, Period
from quotepart.store.schema import usage


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


__all__ = ["units_used"]
