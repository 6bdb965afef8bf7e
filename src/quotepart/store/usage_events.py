"""The events of usage batches, beside the log, and their per-consumer totals.

The log holds one `usage.batch` entry per batch, with the RFC 9162 root over its events'
leaves; the events themselves are rows here, written in the transaction that appends
their batch (`LogStore.append(..., alongside=...)`), so a batch's events exist if and
only if its entry committed. `rebuild` keeps these tables (the log cannot recreate
them); `verify` recomputes every batch's root, count and aggregate from them.

An event row's `id` is its batch's leaf index << 20 | its position in the batch, so
one B-tree key orders events by batch and position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, func, select

from quotepart.store.engine import bulk_insert, select_where_in
from quotepart.store.schema import (
    EVENT_POSITION_BITS,
    meters,
    privacy_releases,
    usage_batches,
    usage_events,
    usage_totals,
)

EVENT_COLUMNS = ("id", "dedupe", "consumer", "at", "value", "leaf", "event")
MAX_BATCH_EVENTS = 1 << EVENT_POSITION_BITS


def event_id(batch_leaf: int, position: int) -> int:
    return (batch_leaf << EVENT_POSITION_BITS) | position


def meter_rows(conn: Connection, service: str | None) -> list[Row[Any]]:
    """The `meters` rows of `service` (of all when None), in the order they were defined."""
    query = select(meters).order_by(meters.c.leaf_index)
    if service is not None:
        query = query.where(meters.c.service == service)
    return list(conn.execute(query).all())


def latest_epoch(conn: Connection) -> int:
    """The newest key epoch any batch was recorded under (0 before the first batch)."""
    return int(conn.execute(select(func.max(usage_batches.c.epoch))).scalar() or 0)


def seen_dedupe_keys(conn: Connection, keys: Sequence[bytes]) -> set[bytes]:
    """The keys among `keys` whose events are already recorded."""
    rows = select_where_in(conn, usage_events, ["dedupe"], "dedupe", keys, chunk=900)
    return {bytes(row[0]) for row in rows}


def write_events(conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Insert event rows (in `EVENT_COLUMNS` order): PostgreSQL's COPY, SQLite's executemany.

    Raises:
        sqlalchemy.exc.IntegrityError: an event was recorded meanwhile by another writer
            (its dedupe key is taken); the whole transaction rolls back.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            statement = f"COPY usage_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        return
    bulk_insert(conn, usage_events, EVENT_COLUMNS, rows)


@dataclass(slots=True)
class ConsumerTotal:
    """One consumer's events and total (sum or max of values; events for count) so far."""

    events: int
    total: Decimal


def add_totals(
    conn: Connection,
    service: str,
    meter: str,
    month: int,
    aggregation: str,
    batch: Mapping[bytes, ConsumerTotal],
) -> None:
    """Fold one batch's per-consumer totals into `usage_totals` (read, add, write back:
    exact decimals on both backends; appends are serialised on the log head, so no other
    writer changes these rows meanwhile)."""
    if not batch or aggregation == "unique_count":
        return  # unique counts are not additive: bills count them from the events
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    consumers = list(batch)
    known: dict[bytes, tuple[int, Decimal]] = {}
    for start in range(0, len(consumers), 900):
        chunk = consumers[start : start + 900]
        found = conn.exec_driver_sql(
            f"SELECT consumer, events, total FROM usage_totals WHERE service = {marker} AND "
            f"meter = {marker} AND month = {marker} AND consumer IN "
            f"({', '.join(marker for _ in chunk)})",
            (service, meter, month, *chunk),
        )
        for consumer, events, total in found:
            known[bytes(consumer)] = (int(events), Decimal(total))
    fresh: list[tuple[object, ...]] = []
    updated: list[dict[str, object]] = []
    for consumer, this in batch.items():
        before = known.get(consumer)
        if before is None:
            fresh.append((service, meter, month, consumer, this.events, decimal_text(this.total)))
            continue
        events, total = before
        combined = max(total, this.total) if aggregation == "max" else total + this.total
        updated.append({"c": consumer, "e": events + this.events, "t": decimal_text(combined)})
    bulk_insert(
        conn,
        usage_totals,
        ("service", "meter", "month", "consumer", "events", "total"),
        fresh,
    )
    if updated:
        conn.exec_driver_sql(
            f"UPDATE usage_totals SET events = {marker}, total = {marker} WHERE service = "
            f"{marker} AND meter = {marker} AND month = {marker} AND consumer = {marker}",
            [(row["e"], row["t"], service, meter, month, row["c"]) for row in updated],
        )


def decimal_text(value: Decimal) -> str:
    """One plain spelling per number ('1234.5', '0', '100'): no exponent, no trailing zeros."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class BatchRow:
    leaf_index: int
    service: str
    meter: str
    month: int
    events: int
    aggregate: str
    epoch: int
    root: bytes


def batches(conn: Connection, service: str | None = None) -> list[BatchRow]:
    """Every usage batch (of `service`), in log order."""
    query = select(usage_batches).order_by(usage_batches.c.leaf_index)
    if service is not None:
        query = query.where(usage_batches.c.service == service)
    return [
        BatchRow(
            int(row.leaf_index),
            row.service,
            row.meter,
            int(row.month),
            int(row.events),
            row.aggregate,
            int(row.epoch),
            bytes(row.root),
        )
        for row in conn.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class EventRow:
    position: int
    consumer: bytes
    value: str | None
    leaf: bytes
    event: bytes


def batch_events(conn: Connection, batch_leaf: int) -> Iterator[EventRow]:
    """One batch's event rows, in position order."""
    low = batch_leaf << EVENT_POSITION_BITS
    columns = usage_events.c
    for row in conn.execute(
        select(columns.id, columns.consumer, columns.value, columns.leaf, columns.event)
        .where(columns.id >= low, columns.id < low + MAX_BATCH_EVENTS)
        .order_by(columns.id)
    ):
        yield EventRow(
            int(row.id) - low, bytes(row.consumer), row.value, bytes(row.leaf), bytes(row.event)
        )


def event_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(usage_events)).scalar_one())


def all_totals(conn: Connection) -> dict[tuple[str, str, int, bytes], tuple[int, str]]:
    """Every `usage_totals` row: (service, meter, month, consumer) -> (events, total)."""
    return {
        (row.service, row.meter, int(row.month), bytes(row.consumer)): (int(row.events), row.total)
        for row in conn.execute(select(usage_totals))
    }


def batch_leaves(conn: Connection, batch_leaf: int) -> list[bytes]:
    """The leaf hashes of one batch's events, in position order."""
    low = batch_leaf << EVENT_POSITION_BITS
    return [
        bytes(leaf)
        for (leaf,) in conn.execute(
            select(usage_events.c.leaf)
            .where(usage_events.c.id >= low, usage_events.c.id < low + MAX_BATCH_EVENTS)
            .order_by(usage_events.c.id)
        )
    ]


def events_of(conn: Connection, consumers: Iterable[bytes]) -> list[tuple[int, int, bytes, bytes]]:
    """(batch leaf, position, leaf hash, event bytes) of every event of these pseudonyms."""
    found = []
    for consumer in consumers:
        for row in conn.execute(
            select(usage_events.c.id, usage_events.c.leaf, usage_events.c.event).where(
                usage_events.c.consumer == consumer
            )
        ):
            found.append(
                (
                    int(row.id) >> EVENT_POSITION_BITS,
                    int(row.id) & (MAX_BATCH_EVENTS - 1),
                    bytes(row.leaf),
                    bytes(row.event),
                )
            )
    return sorted(found)


def month_events(
    conn: Connection, service: str, meter: str, month: int
) -> Iterator[tuple[bytes, int, str | None]]:
    """(consumer pseudonym, event time in Unix seconds, value) of every event of `meter`'s
    batches counting in `month` (`year * 12 + month - 1`), batch by batch: what private
    releases aggregate, per consumer, before any noise is added."""
    leaves = conn.execute(
        select(usage_batches.c.leaf_index)
        .where(
            usage_batches.c.service == service,
            usage_batches.c.meter == meter,
            usage_batches.c.month == month,
        )
        .order_by(usage_batches.c.leaf_index)
    ).scalars()
    columns = usage_events.c
    for leaf in list(leaves):
        low = int(leaf) << EVENT_POSITION_BITS
        for row in conn.execute(
            select(columns.consumer, columns.at, columns.value).where(
                columns.id >= low, columns.id < low + MAX_BATCH_EVENTS
            )
        ):
            yield bytes(row.consumer), int(row.at), row.value


@dataclass(frozen=True, slots=True)
class MeteredTotal:
    """One meter's exact usage over some months: what bills count, for no one consumer."""

    service: str
    meter: str
    aggregation: str
    batches: int
    events: int
    total: str | None  # decimal string: the sum (count, sum) or max; None for unique_count
    newest_leaf: int  # of the newest batch counted


def metered_totals(
    conn: Connection, services: Sequence[str], first_month: int, last_month: int
) -> list[MeteredTotal]:
    """Each meter of `services` with batches counting in the months, with its exact totals
    (from the signed `usage.batch` aggregates), in the order the meters were defined."""
    found: list[MeteredTotal] = []
    for row in meter_rows(conn, None):
        if row.service not in services:
            continue
        rows = conn.execute(
            select(
                usage_batches.c.events, usage_batches.c.aggregate, usage_batches.c.leaf_index
            ).where(
                usage_batches.c.service == row.service,
                usage_batches.c.meter == row.name,
                usage_batches.c.month >= first_month,
                usage_batches.c.month <= last_month,
            )
        ).all()
        if not rows:
            continue
        aggregates = [Decimal(aggregate) for _, aggregate, _ in rows]
        total: str | None = None
        if row.aggregation in ("count", "sum"):
            total = decimal_text(sum(aggregates, Decimal(0)))
        elif row.aggregation == "max":
            total = decimal_text(max(aggregates))
        found.append(
            MeteredTotal(
                row.service,
                row.name,
                row.aggregation,
                len(rows),
                sum(int(events) for events, _, _ in rows),
                total,
                max(int(leaf) for _, _, leaf in rows),
            )
        )
    return found


def privacy_release_leaves(
    conn: Connection, services: Sequence[str], first_month: int, last_month: int
) -> list[int]:
    """Leaf indexes of the `privacy.released` entries about `services`' usage in the
    months, in log order (their values are in the entries themselves)."""
    if not services:
        return []
    return [
        int(leaf)
        for leaf in conn.execute(
            select(privacy_releases.c.leaf_index)
            .where(
                privacy_releases.c.service.in_(list(services)),
                privacy_releases.c.month >= first_month,
                privacy_releases.c.month <= last_month,
            )
            .order_by(privacy_releases.c.leaf_index)
        ).scalars()
    ]


__all__ = [
    "EVENT_COLUMNS",
    "MAX_BATCH_EVENTS",
    "BatchRow",
    "ConsumerTotal",
    "EventRow",
    "MeteredTotal",
    "add_totals",
    "all_totals",
    "batch_events",
    "batch_leaves",
    "batches",
    "decimal_text",
    "event_count",
    "event_id",
    "events_of",
    "latest_epoch",
    "meter_rows",
    "metered_totals",
    "month_events",
    "privacy_release_leaves",
    "seen_dedupe_keys",
    "write_events",
]
