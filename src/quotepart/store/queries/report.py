"""What the fair value share report asks of the projection tables.

Each answer is a typed value, and each carries the leaf indexes it read where the report
needs them: the report pins the first checkpoint signed after the newest entry it reads,
so that the same facts always give the same report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from sqlalchemy import Connection, func, literal_column, select

from quotepart.store.engine import select_where_in
from quotepart.store.schema import (
    assets,
    checkpoints,
    lineage_edges,
    parties,
    revenues,
    usage,
)


class RevenueRow(NamedTuple):
    revenue_id: str
    period: str  # as booked: 2026, 2026-Q1 or 2026-03
    leaf_index: int


class PartyName(NamedTuple):
    party_id: str
    name: str
    leaf_index: int  # of its party.registered entry


class UsageBucket(NamedTuple):
    start: str  # "2026-01-31" for a day, "2026-01" for a month
    units: int
    consumers: int  # distinct consumer pseudonyms


@dataclass(frozen=True, slots=True)
class UsageCounts:
    """Metered use of some services within some months: counts only, never a consumer."""

    buckets: tuple[UsageBucket, ...]  # only buckets with usage, in no particular order
    total_units: int
    distinct_consumers: int
    newest_leaf: int | None  # the newest usage entry counted; None when there was none


class CheckpointRow(NamedTuple):
    tree_size: int
    root_hash: bytes
    note: str  # the signed note, as the log stores it


def revenues_of(conn: Connection, earners: Sequence[str]) -> list[RevenueRow]:
    """Every revenue booked on any of `earners` (asset digests), whatever its period."""
    return [
        RevenueRow(str(revenue), str(period), int(leaf))
        for revenue, period, leaf in select_where_in(
            conn, revenues, ["revenue_id", "period", "leaf_index"], "asset", earners
        )
    ]


def services_derived_from(conn: Connection, model_leaf: int) -> list[str]:
    """The digests, sorted, of the services registered as derived from the model whose
    asset.registered entry is at `model_leaf` (they book the model's revenue)."""
    children = [
        int(child)
        for (child,) in conn.execute(
            select(lineage_edges.c.child).where(
                lineage_edges.c.parent == model_leaf, lineage_edges.c.relation == "derived"
            )
        )
    ]
    return sorted(
        str(digest)
        for digest, kind, _leaf in select_where_in(
            conn, assets, ["digest", "asset_kind", "leaf_index"], "leaf_index", children
        )
        if kind == "service"
    )


def party_names(conn: Connection, party_ids: Sequence[str]) -> list[PartyName]:
    """The registered names of the parties among `party_ids` that are in the log."""
    return [
        PartyName(str(party), str(name), int(leaf))
        for party, name, leaf in select_where_in(
            conn, parties, ["party_id", "name", "leaf_index"], "party_id", party_ids
        )
    ]


def usage_counts(
    conn: Connection,
    services: Sequence[str],
    first_month: int,
    last_month: int,
    *,
    per: Literal["day", "month"],
) -> UsageCounts:
    """Units and distinct consumers of `services` from `first_month` to `last_month`
    (`year * 12 + month - 1`, both included), per day or per month of the usage's start."""
    width = 7 if per == "month" else 10  # "2026-01" or "2026-01-31" out of the RFC 3339 start
    # Literal bounds: PostgreSQL must see the grouped expression and the selected one as
    # the same, which two bound parameters would hide from it.
    bucket = func.substr(usage.c.start, literal_column("1"), literal_column(str(width)))
    where = (
        usage.c.service.in_(list(services)),
        usage.c.month >= first_month,
        usage.c.month <= last_month,
    )
    buckets = tuple(
        UsageBucket(str(start), int(units), int(consumers))
        for start, units, consumers in conn.execute(
            select(bucket, func.sum(usage.c.units), func.count(func.distinct(usage.c.consumer)))
            .where(*where)
            .group_by(bucket)
        )
    )
    units, consumers, newest = conn.execute(
        select(
            func.coalesce(func.sum(usage.c.units), 0),
            func.count(func.distinct(usage.c.consumer)),
            func.max(usage.c.leaf_index),
        ).where(*where)
    ).one()
    return UsageCounts(buckets, int(units), int(consumers), None if newest is None else int(newest))


def first_checkpoint_after(conn: Connection, leaf_index: int) -> CheckpointRow | None:
    """The first signed checkpoint whose tree holds the entry at `leaf_index`, or None."""
    row = conn.execute(
        select(checkpoints.c.tree_size, checkpoints.c.root_hash, checkpoints.c.note)
        .where(checkpoints.c.tree_size > leaf_index)
        .order_by(checkpoints.c.tree_size)
        .limit(1)
    ).first()
    if row is None:
        return None
    return CheckpointRow(int(row.tree_size), bytes(row.root_hash), str(row.note))


__all__ = [
    "CheckpointRow",
    "PartyName",
    "RevenueRow",
    "UsageBucket",
    "UsageCounts",
    "first_checkpoint_after",
    "party_names",
    "revenues_of",
    "services_derived_from",
    "usage_counts",
]
