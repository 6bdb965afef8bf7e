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
from quotepart.log.kinds import RevenueRecorded, UsageBilled
from quotepart.log.merkle import root_of_leaf_hashes
from quotepart.metering.billing import batches_digest, consumer_leaf, fold
from quotepart.metering.cloudevents import EventError
from quotepart.metering.ingest import PSEUDONYM_PREFIX, Meter, _value, load_meters
from quotepart.store.queries.entries import read_entries
from quotepart.store.usage_events import (
    all_totals,
    batch_events,
    batches,
    bill_rows,
    decimal_text,
    entry_leaf_hashes,
    event_count,
    period_batches,
    revenue_leaf,
)

_EXACT = Context(prec=200, traps=[Inexact])  # sums are recomputed exactly, never rounded


@dataclass(frozen=True, slots=True)
class UsageAudit:
    batches: int = 0
    events: int = 0
    bills: int = 0


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
    uniques: dict[tuple[str, str, int, bytes], set[str | None]] = {}
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
            if meter.aggregation == "unique_count":
                uniques.setdefault(key, set()).add(value_text)
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
    bills = _check_bills(conn, meters, totals, uniques)
    return UsageAudit(checked, events, bills)


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


def _check_bills(
    conn: Connection,
    meters: dict[tuple[str, str], Meter],
    totals: dict[tuple[str, str, int, bytes], list[Decimal]],
    uniques: dict[tuple[str, str, int, bytes], set[str | None]],
) -> int:
    """Recompute every `usage.billed` from the (already checked) batches and events: the
    batches it counts and their digest, each line's quantity, tariff and amount, the
    consumers' root, and its revenue (same id, service, period, amount and currency,
    carrying the evidence digest). The rights rule checked what the projections allow
    at append; this is the part that needs the events and the log's leaf hashes."""
    rows = bill_rows(conn)
    for row in rows:
        [(_, entry)] = read_entries(conn, [row.leaf_index])
        bill = entry.body_as(UsageBilled)
        where = f"the bill at leaf {row.leaf_index} ({bill.service}, {bill.period})"
        service, first, last = str(bill.service), bill.period.first_month, bill.period.last_month
        batches = period_batches(conn, service, first, last, before=row.leaf_index)
        hashes = entry_leaf_hashes(conn, [b.leaf_index for b in batches])
        digest = batches_digest(hashes[b.leaf_index] for b in batches)
        if (len(batches), digest) != (bill.batches, bill.batches_digest):
            raise VerificationError(
                f"{where} counts {bill.batches} batch(es) ({bill.batches_digest}); the log "
                f"holds {len(batches)} in its period before it ({digest})",
                hint="the bill does not match the usage it claims to price",
            )
        later = period_batches(conn, service, first, last)
        if len(later) != len(batches):
            raise VerificationError(
                f"{where}: {len(later) - len(batches)} batch(es) were recorded in the billed "
                "period after the bill",
                hint="a billed period is closed: late usage counts in the next open period",
            )
        months = range(first, last + 1)
        by_consumer: dict[bytes, dict[str, str]] = {}
        for (svc, name), meter in meters.items():
            if svc != service:
                continue
            keys = [k for k in (totals if meter.aggregation != "unique_count" else uniques)]
            mine = [k for k in keys if k[0] == service and k[1] == name and k[2] in months]
            per: dict[bytes, list[Decimal]] = {}
            distinct: dict[bytes, set[str | None]] = {}
            for key in mine:
                if meter.aggregation == "unique_count":
                    distinct.setdefault(key[3], set()).update(uniques[key])
                else:
                    per.setdefault(key[3], []).append(
                        Decimal(totals[key][0]) if meter.aggregation == "count" else totals[key][1]
                    )
            for consumer, figures in per.items():
                by_consumer.setdefault(consumer, {})[name] = decimal_text(
                    fold(meter.aggregation, figures)
                )
            for consumer, found in distinct.items():
                by_consumer.setdefault(consumer, {})[name] = str(len(found))
        for line in bill.lines:
            meter = meters[(service, line.meter)]
            if meter.aggregation == "unique_count":
                every: set[str | None] = set()
                for key, found in uniques.items():
                    if key[0] == service and key[1] == line.meter and key[2] in months:
                        every |= found
                quantity = str(len(every))
            else:
                figures = [Decimal(b.aggregate) for b in batches if b.meter == line.meter]
                quantity = decimal_text(fold(meter.aggregation, figures))
            if quantity != line.quantity:
                raise VerificationError(
                    f"{where} bills {line.quantity} {line.meter}, its events give {quantity}",
                    hint="the bill does not match the usage it claims to price",
                )
        pseudonyms = sorted(by_consumer)
        leaves = [
            hashlib.sha256(b"\x00" + consumer_leaf(p, by_consumer[p])).digest() for p in pseudonyms
        ]
        if (len(leaves), root_of_leaf_hashes(leaves).hex()) != (
            bill.consumers,
            bill.consumers_root,
        ):
            raise VerificationError(
                f"{where}: its consumers' root is not the one the events give",
                hint="a consumer's billed quantity differs from its events: receipts would fail",
            )
        revenue_index = revenue_leaf(conn, str(bill.revenue))
        revenue = None
        if revenue_index is not None:
            [(_, revenue_entry)] = read_entries(conn, [revenue_index])
            revenue = revenue_entry.body_as(RevenueRecorded)
        if (
            revenue is None
            or (revenue.asset, str(revenue.period), revenue.amount_minor, revenue.currency)
            != (bill.service, str(bill.period), bill.total_minor, bill.currency)
            or (bill.evidence is not None and bill.evidence not in revenue.source)
        ):
            raise VerificationError(
                f"{where}: its revenue {bill.revenue} is missing or says another service, "
                "period, amount, currency or evidence",
                hint="a bill and its revenue are recorded together, alike",
            )
    return len(rows)


__all__ = ["UsageAudit", "check_usage"]
