"""`verify`'s check of usage batches: every root, count, aggregate and total recomputed
from the stored events.

The log holds a batch's Merkle root, count and aggregate; the events are beside it. A
changed, dropped, added or reordered event changes a leaf or the root; an event row
whose columns disagree with its bytes (another consumer, another value) is caught by
reading the bytes again; a per-consumer total that is not the sum of its events is
caught by recomputing them all. Events that belong to no batch are refused too: nothing
may sit in the table that no signed entry accounts for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact

import orjson
from sqlalchemy import Connection

from quotepart.errors import VerificationError
from quotepart.ids import Digest
from quotepart.log.merkle import root_of_leaf_hashes
from quotepart.metering.cloudevents import EventError
from quotepart.metering.ingest import PSEUDONYM_PREFIX, Meter, _value, load_meters
from quotepart.store.usage_events import (
    all_totals,
    batch_events,
    batches,
    decimal_text,
    event_count,
)

_EXACT = Context(prec=200, traps=[Inexact])  # sums are recomputed exactly, never rounded


@dataclass(frozen=True, slots=True)
class UsageAudit:
    batches: int = 0
    events: int = 0


def _consumer_text(event: dict[str, object], meter: Meter) -> object:
    found: object = event
    for key in meter.consumer_keys:
        found = found.get(key) if isinstance(found, dict) else None
    return found


def check_usage(conn: Connection, *, progress: Callable[[int], None] | None = None) -> UsageAudit:
    """Recompute every usage batch from its events; raise at the first disagreement.

    Raises:
        VerificationError: naming the batch (its leaf index) and what differs.
    """
    meters: dict[tuple[str, str], Meter] = {}
    totals: dict[tuple[str, str, int, bytes], list[Decimal]] = {}
    checked = events = 0
    for batch in batches(conn):
        where = f"usage batch at leaf {batch.leaf_index} ({batch.service}, {batch.meter})"
        meter = meters.get((batch.service, batch.meter))
        if meter is None:
            for found in load_meters(conn, Digest.parse(batch.service)):
                meters[(batch.service, found.name)] = found
            meter = meters[(batch.service, batch.meter)]
        leaves: list[bytes] = []
        values: list[Decimal | int] = []
        distinct: set[str | None] = set()
        for row in batch_events(conn, batch.leaf_index):
            if row.position != len(leaves):
                raise VerificationError(
                    f"{where}: event {len(leaves)} is missing (the next one is {row.position})",
                    hint="an event row was deleted: restore the database from a backup",
                )
            if hashlib.sha256(b"\x00" + row.event).digest() != row.leaf:
                raise VerificationError(
                    f"{where}: event {row.position}'s bytes do not hash to its leaf",
                    hint="an event was changed after it was recorded: restore from a backup",
                )
            try:
                event = orjson.loads(row.event)
                value_text, number = _value(event, meter)
            except (orjson.JSONDecodeError, EventError) as exc:
                raise VerificationError(
                    f"{where}: event {row.position} no longer reads as a {meter.name} event "
                    f"({exc})",
                    hint="restore the database from a backup",
                ) from exc
            if _consumer_text(event, meter) != PSEUDONYM_PREFIX + row.consumer.hex():
                raise VerificationError(
                    f"{where}: event {row.position} is filed under another consumer than "
                    "the one its bytes name",
                    hint="restore the database from a backup",
                )
            if value_text != row.value:
                raise VerificationError(
                    f"{where}: event {row.position}'s stored value differs from its bytes",
                    hint="restore the database from a backup",
                )
            leaves.append(row.leaf)
            values.append(number)
            distinct.add(value_text)
            key = (batch.service, batch.meter, batch.month, row.consumer)
            total = totals.get(key)
            if total is None:
                totals[key] = [Decimal(1), Decimal(number)]
            else:
                total[0] += 1
                total[1] = (
                    max(total[1], Decimal(number))
                    if meter.aggregation == "max"
                    else _EXACT.add(total[1], number)
                )
        if len(leaves) != batch.events:
            raise VerificationError(
                f"{where}: {len(leaves):,} events stored, the entry says {batch.events:,}",
                hint="event rows were deleted: restore the database from a backup",
            )
        if root_of_leaf_hashes(leaves) != batch.root:
            raise VerificationError(
                f"{where}: the events' Merkle root differs from the signed one",
                hint="an event was changed, dropped or reordered: restore from a backup",
            )
        aggregate = _aggregate(meter.aggregation, values, len(distinct))
        if aggregate != batch.aggregate:
            raise VerificationError(
                f"{where}: the events add up to {aggregate}, the entry says {batch.aggregate}",
                hint="restore the database from a backup",
            )
        checked += 1
        events += len(leaves)
        if progress is not None:
            progress(len(leaves))
    stored = event_count(conn)
    if stored != events:
        raise VerificationError(
            f"{stored - events:,} usage event row(s) belong to no signed batch",
            hint="rows were added beside the log: restore the database from a backup",
        )
    _compare_totals(conn, meters, totals)
    return UsageAudit(checked, events)


def _aggregate(aggregation: str, values: list[Decimal | int], distinct: int) -> str:
    if aggregation == "count":
        return str(len(values))
    if aggregation == "unique_count":
        return str(distinct)
    if aggregation == "max":
        return decimal_text(max(Decimal(value) for value in values))
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return decimal_text(total)


def _compare_totals(
    conn: Connection,
    meters: dict[tuple[str, str], Meter],
    expected: dict[tuple[str, str, int, bytes], list[Decimal]],
) -> None:
    stored = all_totals(conn)
    for key, (events, total) in expected.items():
        if meters[(key[0], key[1])].aggregation == "unique_count":
            continue  # not kept: bills count distinct values from the events
        found = stored.pop(key, None)
        if found != (int(events), decimal_text(total)):
            raise VerificationError(
                f"the {key[1]} total of a consumer of {key[0]} in month {key[2]} is {found}, "
                f"its events give {(int(events), decimal_text(total))}",
                hint="restore the database from a backup",
            )
    if stored:
        raise VerificationError(
            f"{len(stored)} usage total(s) have no events behind them",
            hint="restore the database from a backup",
        )


__all__ = ["UsageAudit", "check_usage"]
