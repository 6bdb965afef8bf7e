"""Questions about money: revenues, allocations and payouts."""

from __future__ import annotations

from sqlalchemy import Connection, select

from quotepart.ids import Digest, Period
from quotepart.store.schema import payouts, revenues


def revenue_billed(conn: Connection, asset: Digest, period: Period) -> str | None:
    """The id of a revenue already recorded for `asset` in exactly `period`, or None."""
    row = conn.execute(
        select(revenues.c.revenue_id).where(
            revenues.c.asset == str(asset), revenues.c.period == str(period)
        )
    ).first()
    return None if row is None else str(row[0])


def revenue_leaves(conn: Connection) -> list[int]:
    """Leaf indexes of every recorded revenue, in log order."""
    rows = conn.execute(select(revenues.c.leaf_index).order_by(revenues.c.leaf_index))
    return [int(leaf) for (leaf,) in rows]


def payout_leaf(conn: Connection, period: Period, currency: str, rail: str) -> int | None:
    """The leaf index of the payout already exported for (period, currency, rail), or None."""
    row = conn.execute(
        select(payouts.c.leaf_index).where(
            payouts.c.period == str(period),
            payouts.c.currency == currency,
            payouts.c.rail == rail,
        )
    ).first()
    return None if row is None else int(row[0])


__all__ = ["payout_leaf", "revenue_billed", "revenue_leaves"]
