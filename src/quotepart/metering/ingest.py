"""Ingesting CloudEvents into usage batches: validate, pseudonymise, deduplicate, batch.

The path of every event, at 100,000 events a second on one core:

1. parse and validate it (`quotepart.metering.cloudevents`), pick the meters of its
   `type`, read its time (now, and written into it, when it has none), its consumer and
   its value;
2. replace the consumer's identifier by `hmac-sha256:<hex>` under the current key
   epoch, and write the event's bytes (orjson, keys sorted): these bytes are what the
   batch's Merkle tree commits to and what a consumer's receipt shows;
3. drop it if its (`source`, `id`) was recorded before for that meter, for ever;
4. group by meter and month; a month already billed sends its events to the next open
   month, and the batch's note says so;
5. append one signed `usage.batch` per group and at most `batch_size` events, with its
   events and per-consumer totals written in the same transaction.

One bad event is reported with its position and never stops the good ones around it;
the raw consumer identifier is never stored, logged or put in a message.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact
from itertools import islice
from typing import Any

import orjson
import sqlalchemy.exc
from sqlalchemy import Connection

from quotepart.errors import InputError, NotFoundError, RightsError
from quotepart.ids import Digest, PartyId, Period, utc_now
from quotepart.log.kinds import UsageBatch
from quotepart.log.merkle import root_of_leaf_hashes
from quotepart.metering.cloudevents import EventError, Rejected, check_event, parse_time
from quotepart.store.ledger import Ledger
from quotepart.store.queries.provenance import asset_record
from quotepart.store.queries.rights import billed_months
from quotepart.store.usage_events import (
    MAX_BATCH_EVENTS,
    ConsumerTotal,
    add_totals,
    decimal_text,
    event_id,
    latest_epoch,
    meter_rows,
    seen_dedupe_keys,
    write_events,
)

DEFAULT_BATCH_SIZE = 10_000
MAX_VALUE_DIGITS = 20
"""A value has at most 20 digits before and 20 after the point: sums of billions of
them stay exact and fit an entry's decimal (40 + 40 digits)."""
_EXACT = Context(prec=200, traps=[Inexact])
PSEUDONYM_PREFIX = "hmac-sha256:"


@dataclass(frozen=True, slots=True)
class Meter:
    """A defined meter, with its JSON paths split into member names."""

    service: Digest
    name: str
    event_type: str
    aggregation: str
    value_path: str | None
    group_by: tuple[str, ...]
    consumer_path: str
    leaf_index: int
    value_keys: tuple[str, ...] = ()  # the paths split into member names, once
    consumer_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.value_path and not self.value_keys:
            object.__setattr__(self, "value_keys", tuple(self.value_path.split(".")[1:]))
        if not self.consumer_keys:
            object.__setattr__(self, "consumer_keys", tuple(self.consumer_path.split(".")[1:]))


def load_meters(conn: Connection, service: Digest | None) -> list[Meter]:
    """The meters of `service` (of every service when None), in definition order."""
    rows = meter_rows(conn, None if service is None else str(service))
    return [
        Meter(
            Digest.parse(row.service),
            row.name,
            row.event_type,
            row.aggregation,
            row.value_path,
            tuple(json.loads(row.group_by)),
            row.consumer_path,
            int(row.leaf_index),
        )
        for row in rows
    ]


@dataclass
class Ingested:
    """What one ingestion did: events recorded, duplicates dropped, events refused."""

    recorded: int = 0
    duplicates: int = 0
    late: int = 0  # recorded in a later month than their own, which was billed
    rejected: int = 0
    problems: list[Rejected] = field(default_factory=list)  # the first `keep_problems`
    batches: list[int] = field(default_factory=list)  # leaf indexes of the batch entries
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.recorded:,} recorded in {len(self.batches):,} batch(es)"]
        if self.duplicates:
            parts.append(f"{self.duplicates:,} duplicate(s) skipped")
        if self.late:
            parts.append(f"{self.late:,} late (counted in the next open month)")
        if self.rejected:
            parts.append(f"{self.rejected:,} rejected")
        return ", ".join(parts)


@dataclass(slots=True)
class _Row:
    meter: Meter
    month: int  # of the event's own time
    dedupe: bytes
    consumer: bytes
    at: int  # Unix seconds
    value: str | None
    number: Decimal | int
    leaf: bytes
    event: bytes


LEAK_CHECK = 5
"""An identifier of at least this many characters that still appears in an event once
its consumer field is pseudonymised refuses the event: it would be stored in the clear.
Shorter ones ("42", "bob") are not looked for: they match too much by chance."""

_CACHE_LIMIT = 100_000
"""Entries of the pseudonym and time caches: consumers and seconds repeat across events,
and a dict lookup costs a twentieth of an HMAC; the caches are emptied when full."""


class _EventReader:
    """Turns raw events into rows; one instance per ingestion (meters and key fixed)."""

    def __init__(self, meters: Sequence[Meter], key: bytes, clock: Callable[[], datetime]) -> None:
        self.by_type: dict[str, list[tuple[Meter, bytes]]] = {}
        for meter in meters:
            prefix = str(meter.service).encode() + b"\x00" + meter.name.encode() + b"\x00"
            self.by_type.setdefault(meter.event_type, []).append((meter, prefix))
        self.key = key
        self.clock = clock
        self.pseudonyms: dict[str, tuple[bytes, str, bytes]] = {}
        self.times: dict[str, tuple[int, int]] = {}

    def rows(self, raw: bytes) -> list[_Row]:
        """The rows of one event (one per meter of its type).

        Raises:
            EventError: what is wrong with it.
        """
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"not valid JSON ({str(exc).split(':')[0]})") from None
        check_event(event, len(raw))
        meters = self.by_type.get(event["type"])
        if meters is None:
            raise EventError(
                f"no meter counts events of type {event['type'][:80]!r}: define one with "
                "`quotepart meter add ... --event-type` or check the type"
            )
        time_text = event.get("time")
        if time_text is None:  # CloudEvents makes time optional; metering needs one: now
            moment = self.clock()
            time_text = event["time"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        known = self.times.get(time_text)
        if known is None:
            moment = parse_time(time_text)
            known = (moment.year * 12 + moment.month - 1, int(moment.timestamp()))
            if len(self.times) >= _CACHE_LIMIT:
                self.times.clear()
            self.times[time_text] = known
        month, at = known
        identity = event["source"].encode() + b"\x00" + event["id"].encode()
        rows = []
        consumers: dict[str, bytes] = {}
        needles: list[bytes] = []  # each raw identifier as JSON writes it, to check for leaks
        pseudonyms = self.pseudonyms
        sha256 = hashlib.sha256
        for meter, prefix in meters:
            path = meter.consumer_path
            found_mac = consumers.get(path)
            if found_mac is None:
                keys = meter.consumer_keys
                raw_consumer = event.get(keys[0]) if len(keys) == 1 else None
                seen = pseudonyms.get(raw_consumer) if type(raw_consumer) is str else None
                if seen is not None:  # the common case: a consumer seen before, at the top
                    event[keys[0]] = seen[1]
                else:
                    seen = self._pseudonymise(event, keys, path)
                found_mac = consumers[path] = seen[0]
                needles.append(seen[2])
            mac: bytes = found_mac
            value: str | None = None
            number: Decimal | int = 1
            if meter.aggregation != "count":
                value, number = _value(event, meter)
            dedupe = sha256(prefix + identity).digest()[:16]
            rows.append(_Row(meter, month, dedupe, mac, at, value, number, b"", b""))
        data = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
        for needle in needles:
            if needle and needle in data:
                raise EventError(
                    "the consumer's identifier also appears elsewhere in the event (in its "
                    "source, id, data or an extension): quotepart would store it in the clear, "
                    "so the event is refused; remove it there, or point the meter's "
                    "consumer_path at the field that holds it"
                )
        leaf = hashlib.sha256(b"\x00" + data).digest()
        for row in rows:
            row.leaf, row.event = leaf, data
        return rows

    def _pseudonymise(
        self, event: dict[str, Any], keys: tuple[str, ...], path: str
    ) -> tuple[bytes, str, bytes]:
        """Replace the identifier at `path` by its pseudonym; (HMAC, pseudonym, the raw
        identifier as JSON writes it, or b"" when too short to look for: see LEAK_CHECK)."""
        parent: Any = event
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        raw = parent.get(keys[-1]) if isinstance(parent, dict) else None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str) or not raw:
            raise EventError(f"no consumer: {path} is missing or not a non-empty string")
        known = self.pseudonyms.get(raw)
        if known is None:
            if raw.startswith(PSEUDONYM_PREFIX):
                raise EventError(
                    f"{path} is already a pseudonym: send the consumer's own identifier, "
                    "quotepart pseudonymises it"
                )
            mac = hmac.digest(self.key, raw.encode(), "sha256")
            needle = orjson.dumps(raw)[1:-1] if len(raw) >= LEAK_CHECK else b""
            known = (mac, PSEUDONYM_PREFIX + mac.hex(), needle)
            if len(self.pseudonyms) >= _CACHE_LIMIT:
                self.pseudonyms.clear()
            self.pseudonyms[raw] = known
        assert isinstance(parent, dict)
        parent[keys[-1]] = known[1]
        return known


def _value(event: dict[str, Any], meter: Meter) -> tuple[str | None, Decimal | int]:
    if meter.aggregation == "count":
        return None, 1
    found: Any = event
    for key in meter.value_keys:
        if not isinstance(found, dict) or key not in found:
            raise EventError(f"value path {meter.value_path} matches nothing in the event")
        found = found[key]
    if meter.aggregation == "unique_count":
        if isinstance(found, dict | list) or found is None:
            raise EventError(
                f"{meter.value_path} must be a string or number to count distinct values"
            )
        text = found if isinstance(found, str) else orjson.dumps(found).decode()
        return text[:90], 1
    if type(found) is int:
        if found < 0 or found >= 10**MAX_VALUE_DIGITS:
            raise EventError(_out_of_range(meter))
        return str(found), found
    if isinstance(found, bool) or not isinstance(found, float | str):
        raise EventError(f"{meter.value_path} is not a number (a {meter.aggregation} meter)")
    try:
        number = Decimal(repr(found) if isinstance(found, float) else found)
    except ArithmeticError:
        raise EventError(
            f"{meter.value_path} is not a number (a {meter.aggregation} meter)"
        ) from None
    if not number.is_finite() or number < 0:
        raise EventError(_out_of_range(meter))
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if number >= 10**MAX_VALUE_DIGITS or -exponent > MAX_VALUE_DIGITS:
        raise EventError(_out_of_range(meter))
    return decimal_text(number), number


def _out_of_range(meter: Meter) -> str:
    return (
        f"{meter.value_path} must be a number from 0 with at most {MAX_VALUE_DIGITS} digits "
        "before and after the point"
    )


@dataclass
class _Batch:
    meter: Meter
    month: int
    rows: list[_Row]
    late: Counter[int]  # events from each closed month moved here


_Parsed = tuple[list[_Row], list[tuple[int, str, bytes]]]
"""A chunk's rows, and its rejected events as (position, reason, raw bytes)."""


def _parse_chunk(reader: _EventReader, chunk: Sequence[tuple[int, bytes]]) -> _Parsed:
    rows: list[_Row] = []
    problems: list[tuple[int, str, bytes]] = []
    for position, raw in chunk:
        try:
            rows.extend(reader.rows(raw))
        except EventError as exc:
            problems.append((position, str(exc), raw))
    return rows, problems


_WORKER_READER: _EventReader | None = None


def _start_worker(meters: Sequence[Meter], key: bytes) -> None:
    global _WORKER_READER
    _WORKER_READER = _EventReader(meters, key, utc_now)
    gc.freeze()  # parsing makes no cycles: nothing for the collector to find
    gc.disable()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic collector off while one chunk is parsed and recorded.

    A chunk makes tens of thousands of short-lived objects (rows, tuples, dicts) and no
    reference cycles, so they are freed by reference counting alone; the collector would
    only rescan them, about a sixth of the chunk's time (measured). It runs again after.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse_in_worker(chunk: Sequence[tuple[int, bytes]]) -> _Parsed:
    assert _WORKER_READER is not None, "the pool's initializer sets the reader"
    return _parse_chunk(_WORKER_READER, chunk)


def registrant_of(conn: Connection, service: Digest) -> PartyId:
    record = asset_record(conn, service)
    assert record is not None  # a meter names a registered service
    return record.registered_by


class Ingester:
    """Records CloudEvents as usage batches of the meters their types name.

    `service` limits it to one service's meters (all services' otherwise); each batch is
    signed by `by`, or by its service's operator (registrant) when `by` is None.
    """

    def __init__(
        self,
        ledger: Ledger,
        service: Digest | None,
        by: PartyId | None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_reject: Callable[[Rejected], None] | None = None,
        keep_problems: int = 1000,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise InputError(
                f"batch size {batch_size:,} is out of range",
                hint=f"use 1 to {MAX_BATCH_EVENTS:,} events per batch (10,000 is the default)",
            )
        self.ledger = ledger
        self.service = service
        self.by = by
        self.batch_size = batch_size
        self.on_reject = on_reject
        self.keep_problems = keep_problems
        with ledger.read() as conn:
            self.meters = load_meters(conn, service)
            self.operators = {
                meter.service: registrant_of(conn, meter.service) for meter in self.meters
            }
            newest_epoch = latest_epoch(conn)
        if not self.meters:
            raise NotFoundError(
                (
                    f"{service} defines no meter"
                    if service is not None
                    else "no service of this workspace defines a meter"
                )
                + ", so no event can be counted",
                hint="define one first: quotepart meter add SERVICE NAME --event-type T "
                "--aggregation count|sum|max|unique_count",
            )
        epochs = ledger.keys.usage_key_epochs()
        self.epoch = epochs[-1] if epochs else 1
        if newest_epoch > self.epoch:
            raise NotFoundError(
                f"the usage pseudonym key of epoch {newest_epoch} is missing: batches were "
                f"recorded under it, and this machine holds keys up to epoch {self.epoch}",
                hint=f"copy keys/usage-{newest_epoch}.key from the machine that rotated it; "
                "pseudonyms under an older key would not match the consumers' receipts",
            )
        self.reader = _EventReader(self.meters, ledger.keys.usage_key(self.epoch), ledger.clock)

    def ingest(
        self,
        events: Iterable[tuple[int, bytes]],
        *,
        after_batch: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> Ingested:
        """Record `events` ((position, raw bytes) pairs), `batch_size` at a time.

        `after_batch(n)` is called once each chunk of n input events is committed (a
        progress bar, or a NATS consumer acknowledging them). With `workers` > 1, chunks
        are parsed, validated, pseudonymised and hashed in that many worker processes
        while this one writes (events without a `time` are then stamped with the wall
        clock); what is recorded is the same, in the same order.
        """
        result = Ingested()
        iterator = iter(events)
        chunks = iter(lambda: list(islice(iterator, self.batch_size)), [])
        if workers <= 1:
            for chunk in chunks:
                with _collector_paused():
                    self._record(_parse_chunk(self.reader, chunk), result)
                if after_batch is not None:
                    after_batch(len(chunk))
            return result
        context = multiprocessing.get_context("spawn")  # no inherited threads or connections
        key = self.reader.key
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(self.meters, key)
        ) as pool:
            pending: deque[tuple[int, Future[_Parsed]]] = deque()
            for chunk in chunks:
                pending.append((len(chunk), pool.submit(_parse_in_worker, chunk)))
                if len(pending) > workers:  # bounded: at most workers + 1 chunks in flight
                    self._settle(pending.popleft(), result, after_batch)
            while pending:
                self._settle(pending.popleft(), result, after_batch)
        return result

    def _settle(
        self,
        job: tuple[int, Future[_Parsed]],
        result: Ingested,
        after_batch: Callable[[int], None] | None,
    ) -> None:
        count, future = job
        with _collector_paused():
            self._record(future.result(), result)
        if after_batch is not None:
            after_batch(count)

    def _reject(self, result: Ingested, position: int, reason: str, raw: bytes) -> None:
        result.rejected += 1
        rejected = Rejected(position, reason, raw)
        if len(result.problems) < self.keep_problems:
            result.problems.append(Rejected(position, reason))
        if self.on_reject is not None:
            self.on_reject(rejected)

    def _record(self, parsed: _Parsed, result: Ingested) -> None:
        parsed_rows, problems = parsed
        for position, reason, raw in problems:
            self._reject(result, position, reason, raw)
        rows: dict[bytes, _Row] = {}
        for row in parsed_rows:
            if row.dedupe in rows:
                result.duplicates += 1
            else:
                rows[row.dedupe] = row
        for _attempt in range(5):
            with self.ledger.read() as conn:
                seen = seen_dedupe_keys(conn, list(rows))
                billed = {
                    service: billed_months(conn, service)
                    for service in {row.meter.service for row in rows.values()}
                }
            if seen:
                result.duplicates += len(seen)
                for key in seen:
                    del rows[key]
            try:
                for batch in self._batches(rows.values(), billed):
                    index = self._append(batch)
                    result.batches.append(index)
                    result.recorded += len(batch.rows)
                    late = sum(batch.late.values())
                    result.late += late
                    for row in batch.rows:
                        del rows[row.dedupe]
                return
            except sqlalchemy.exc.IntegrityError:
                continue  # another writer recorded some of these meanwhile: check again
            except RightsError as exc:
                if exc.rule != "closed-period":
                    raise
                continue  # a bill closed a month meanwhile: move its events on
        raise InputError(
            "could not record a batch after 5 tries: other writers keep recording the same "
            "events or closing months",
            hint="retry; nothing of the failed batch was written",
        )

    def _batches(self, rows: Iterable[_Row], billed: dict[Digest, set[int]]) -> Iterator[_Batch]:
        groups: dict[tuple[Digest, str, int], _Batch] = {}
        for row in rows:
            month = row.month
            counted = month
            meter = row.meter
            closed = billed[meter.service]
            while counted in closed:
                counted += 1
            group = groups.get((meter.service, meter.name, counted))
            if group is None:
                group = groups[(meter.service, meter.name, counted)] = _Batch(
                    meter, counted, [], Counter()
                )
            group.rows.append(row)
            if counted != month:
                group.late[month] += 1
        for group in groups.values():
            for start in range(0, len(group.rows), self.batch_size):
                part = group.rows[start : start + self.batch_size]
                late: Counter[int] = Counter(row.month for row in part if row.month != group.month)
                yield _Batch(group.meter, group.month, part, late)

    def _append(self, batch: _Batch) -> int:
        meter, rows = batch.meter, batch.rows
        aggregation = meter.aggregation
        # per consumer: [events, whole-number part, decimal part]; ints add natively (the
        # common case: token counts), decimals exactly (`_EXACT` traps any rounding)
        folded: dict[bytes, list[Any]] = {}
        if aggregation == "max":
            for row in rows:
                found = folded.get(row.consumer)
                if found is None:
                    folded[row.consumer] = [1, row.number, None]
                else:
                    found[0] += 1
                    if row.number > found[1]:
                        found[1] = row.number
            totals = {
                consumer: ConsumerTotal(events, best)
                for consumer, (events, best, _) in folded.items()
            }
            aggregate = Decimal(max((total.total for total in totals.values()), default=0))
        else:
            for row in rows:
                number = row.number
                found = folded.get(row.consumer)
                if found is None:
                    found = folded[row.consumer] = [0, 0, None]
                found[0] += 1
                if type(number) is int:
                    found[1] += number
                else:
                    found[2] = number if found[2] is None else _EXACT.add(found[2], number)
            totals = {
                consumer: ConsumerTotal(
                    events, whole if fraction is None else _EXACT.add(Decimal(whole), fraction)
                )
                for consumer, (events, whole, fraction) in folded.items()
            }
            if aggregation == "unique_count":
                aggregate = Decimal(len({row.value for row in rows}))
            else:
                whole_sum = sum(t.total for t in totals.values() if type(t.total) is int)
                aggregate = Decimal(whole_sum)
                for total in totals.values():
                    if type(total.total) is not int:
                        aggregate = _EXACT.add(aggregate, total.total)
        moments = [row.at for row in rows]
        note = None
        if batch.late:
            moved = ", ".join(
                f"{count} of {Period.of_month(month)}"
                for month, count in sorted(batch.late.items())
            )
            note = (
                f"late: {sum(batch.late.values())} event(s) ({moved}) happened in a month "
                f"already billed, so they count in {Period.of_month(batch.month)}"
            )
        body = UsageBatch(
            meter.service,
            meter.name,
            Period.of_month(batch.month),
            len(rows),
            decimal_text(aggregate),
            self.epoch,
            root_of_leaf_hashes([row.leaf for row in rows]).hex(),
            datetime.fromtimestamp(min(moments), UTC),
            datetime.fromtimestamp(max(moments), UTC),
            note,
        )

        def write(conn: Connection, indexes: Sequence[int]) -> None:
            [leaf] = indexes
            write_events(
                conn,
                [
                    (
                        event_id(leaf, position),
                        row.dedupe,
                        row.consumer,
                        row.at,
                        row.value,
                        row.leaf,
                        row.event,
                    )
                    for position, row in enumerate(rows)
                ],
            )
            add_totals(conn, str(meter.service), meter.name, batch.month, aggregation, totals)

        author = self.by or self.operators[meter.service]
        [index] = self.ledger.append_many([(body, author)], alongside=write)
        return index


__all__ = ["DEFAULT_BATCH_SIZE", "Ingested", "Ingester", "Meter", "load_meters"]
