"""The metering service: usage of a service by pseudonymised consumers.

Consumers are pseudonymised here, with the workspace's keyed-hash secret, before
anything is signed or stored: the log never holds a clear consumer id.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId, Period
from quotepart.log.kinds import EntryBody, MeterDefined, UsageRecorded
from quotepart.metering.billing import Bill, evidence_digest, record_bill, tariff_body
from quotepart.metering.cloudevents import Rejected, read_events, to_events
from quotepart.metering.ingest import DEFAULT_BATCH_SIZE, Ingested, Ingester, Meter, load_meters
from quotepart.metering.nats import BatchDone, Consumed, ConsumeOptions, consume
from quotepart.metering.privacy import Release, release, set_budget
from quotepart.metering.receipts import (
    billed_services,
    build_receipt,
    consumer_has_usage,
    prepare_receipts,
)
from quotepart.money import currency as find_currency
from quotepart.provenance.resolve import AssetOrName, resolve_asset
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.store.ledger import Ledger
from quotepart.store.queries.names import PartyRef, resolve_party
from quotepart.store.queries.provenance import asset_record
from quotepart.store.queries.rights import billed_months
from quotepart.store.queries.usage import units_used
from quotepart.store.usage_events import TariffRow, tariff_rows


def _open_month(at: datetime, billed: set[int]) -> tuple[Period | None, str | None]:
    """Where usage starting `at` counts: its own month, or the first open one after it."""
    month = at.year * 12 + at.month - 1
    if month not in billed:
        return None, None
    opened = month
    while opened in billed:
        opened += 1
    counted_in = Period.of_month(opened)
    return counted_in, f"late: {at:%Y-%m} was already billed, so this usage counts in {counted_in}"


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


class Metering:
    """Who used which service, how much: usage entries signed by the service's side."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def _usage_key(self) -> bytes:
        return self.ledger.keys.usage_key()

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
        """Usage of `service`, one entry per event. An event in a month already billed (a
        revenue of the service covers it) counts in the next open month instead, and its
        entry's note says so: a billed month is closed (docs/rights.md)."""
        digest = asset_digest(service)
        key = self._usage_key()
        with self.ledger.read() as conn:
            billed = billed_months(conn, digest)
        bodies: list[tuple[EntryBody, PartyId]] = []
        for event in events:
            if not isinstance(event.units, int) or isinstance(event.units, bool) or event.units < 1:
                raise InputError(
                    f"usage of {event.units!r} units", hint="units are a positive whole number"
                )
            counted_in, note = _open_month(event.at, billed)
            body = UsageRecorded(
                digest,
                pseudonymise(key, event.consumer),
                event.units,
                event.at,
                event.at + event.duration,
                counted_in,
                note,
            )
            bodies.append((body, by))
        return self.ledger.append_many(bodies)

    # ------------------------------------------------------------ meters

    def _service(self, service: AssetOrName) -> tuple[Digest, PartyId]:
        """The service's digest and its operator (registrant).

        Raises:
            NotFoundError: not registered. InputError: registered, but not a service.
        """
        with self.ledger.read() as conn:
            digest = resolve_asset(conn, service)
            record = asset_record(conn, digest)
        if record is None:  # pragma: no cover - resolve_asset found it
            raise NotFoundError(f"{service} is not registered", hint="register the service first")
        if record.asset_kind != "service":
            raise InputError(
                f"{record.name or digest} is a {record.asset_kind}, not a service",
                hint="meters count the usage of services (register_service)",
            )
        return digest, record.registered_by

    def _author(self, by: PartyRef | None, operator: PartyId | None) -> PartyId:
        if by is None:
            assert operator is not None
            return operator
        with self.ledger.read() as conn:
            return resolve_party(conn, by)

    def define_meter(
        self,
        service: AssetOrName,
        name: str,
        *,
        event_type: str,
        aggregation: str,
        value_path: str | None = None,
        group_by: Sequence[str] = (),
        consumer_path: str = "$.subject",
        by: PartyRef | None = None,
    ) -> int:
        """Declare how `service`'s CloudEvents of `event_type` are counted (signed by its
        operator, or `by` when it holds the metering right); returns the entry's index.

        Raises:
            MalformedEntryError: a name, path or aggregation that is not valid (nothing written).
            InputError: the service already has a meter of that name.
        """
        digest, operator = self._service(service)
        body = MeterDefined(
            digest, name, event_type, aggregation, value_path, tuple(group_by), consumer_path
        )
        body = MeterDefined.from_body(body.to_body())  # the entry's own checks, before signing
        return self.ledger.append(body, author=self._author(by, operator))

    def meters(self, service: AssetOrName) -> list[Meter]:
        digest, _ = self._service(service)
        with self.ledger.read() as conn:
            return load_meters(conn, digest)

    def ingest(
        self,
        service: AssetOrName | None,
        events: bytes | BinaryIO | Iterable[Any],
        *,
        by: PartyRef | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_reject: Callable[[Rejected], None] | None = None,
        progress: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> Ingested:
        """Record CloudEvents of `service` as signed usage batches (see
        `quotepart.metering.ingest`; with `service` None, of every service whose meters
        count the events' types): `events` is JSON-lines or batch-array bytes, a
        binary stream of either, or an iterable of events (dicts, JSON bytes or str,
        cloudevents SDK objects). Bad events are reported in the result (and to
        `on_reject`), never recorded, and never stop the good ones. `workers` > 1 parses
        in that many processes while this one writes (for large inputs: starting them
        costs about a second)."""
        digest, operator = (None, None) if service is None else self._service(service)
        author = None if by is None and operator is None else self._author(by, operator)
        ingester = Ingester(
            self.ledger, digest, author, batch_size=batch_size,
            on_reject=on_reject,
        )  # fmt: skip
        if isinstance(events, bytes) or hasattr(events, "read"):
            pairs = read_events(events)  # type: ignore[arg-type]
        else:
            pairs = to_events(events)
        return ingester.ingest(pairs, after_batch=progress, workers=workers)

    def consume(
        self,
        options: ConsumeOptions,
        *,
        service: AssetOrName | None = None,
        by: PartyRef | None = None,
        on_reject: Callable[[Rejected], None] | None = None,
        on_batch: Callable[[BatchDone], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Consumed:
        """Record the CloudEvents of a NATS JetStream stream as signed usage batches,
        acknowledging each message once its batch is committed (see
        `quotepart.metering.nats`); `service` and `by` as for `ingest`.

        Usage: `ws.consume_usage(ConsumeOptions("nats://127.0.0.1:4222", "USAGE", "usage.>"))`.

        Raises:
            StorageError: the NATS server cannot be reached (nothing consumed or written).
        """
        options.check()
        digest, operator = (None, None) if service is None else self._service(service)
        author = None if by is None and operator is None else self._author(by, operator)
        ingester = Ingester(
            self.ledger, digest, author, batch_size=options.batch_size, on_reject=on_reject
        )
        return consume(ingester, options, on_batch=on_batch, stop=stop)

    def rotate_key(self) -> int:
        """Start a new pseudonym key epoch; returns its number. Events recorded from now
        on are pseudonymised under the new key; older keys stay for receipts."""
        return self.ledger.keys.rotate_usage_key()

    # ------------------------------------------------------------ billing

    def set_tariff(
        self,
        service: AssetOrName,
        meter: str,
        unit_price: str | Decimal | int,
        currency: str,
        *,
        effective: datetime | None = None,
        by: PartyRef | None = None,
    ) -> int:
        """The unit price (major units per unit of the meter's aggregate) of `meter` in
        `currency` from `effective` (now when None) on, signed by the operator (or `by`,
        holding the billing right); returns the entry's index. A tariff prices the
        periods that start after it takes effect, and may not take effect before it is
        signed (rule `billing`): prices are never changed after the fact.

        Raises:
            NotFoundError: no such meter. MalformedEntryError / MoneyError: a bad price or
            currency. RightsError: `by` may not bill this service, or the tariff is backdated.
        """
        if isinstance(unit_price, float | bool):
            raise InputError(
                f"unit price {unit_price!r} is not exact",
                hint="give it as a decimal string such as '0.00002': floats cannot hold money",
            )
        digest, operator = self._service(service)
        moment = self.ledger.clock() if effective is None else effective
        with self.ledger.read() as conn:
            body = tariff_body(conn, digest, meter, str(unit_price), currency, moment)
        return self.ledger.append(body, author=self._author(by, operator))

    def tariffs(self, service: AssetOrName) -> list[TariffRow]:
        """Every tariff of `service`, by meter, currency and effective date."""
        digest, _ = self._service(service)
        with self.ledger.read() as conn:
            return tariff_rows(conn, str(digest))

    def bill_usage(
        self,
        service: AssetOrName,
        period: str | Period,
        *,
        currency: str,
        evidence: bytes | str | Path | None = None,
        by: PartyRef | None = None,
    ) -> Bill:
        """Bill `service`'s metered usage (its usage batches) in `period` at the tariffs in
        force at the period's start (`quotepart.metering.billing`): one `usage.billed` and
        its `revenue.recorded`, appended together, which close the period for the service.
        `evidence` (bytes, a file path, or a `sha256:` digest) is the invoice or payment
        evidence; the bill and the revenue carry its digest.

        Raises:
            InputError: the period is already billed, has no metered usage, or comes to 0.
            NotFoundError: a meter with usage has no tariff in force in `currency`.
        """
        digest, operator = self._service(service)
        the_period = Period.parse(str(period))
        code = find_currency(currency).code
        return record_bill(
            self.ledger, digest, the_period, code, evidence_digest(evidence),
            self._author(by, operator),
        )  # fmt: skip

    def receipt(
        self, consumer: str, period: str | Period, *, service: AssetOrName | None = None
    ) -> dict[str, Any]:
        """The receipt file (`quotepart.metering.receipts`, docs/receipts.md) of `consumer`
        (its own identifier: pseudonymised here under every key epoch, and never written
        into the file or a message) for the bill of `service` in `period`; with `service`
        None, of the one billed service in `period` the consumer used.

        Raises:
            NotFoundError: no bill, or no usage of this consumer in it.
            InputError: several billed services have usage of the consumer (name one).
        """
        if not isinstance(consumer, str) or not consumer.strip():
            raise InputError("no consumer identifier given", hint="pass the consumer's own id")
        the_period = Period.parse(str(period))
        keys = self.ledger.keys
        pseudonyms = [
            hmac.digest(keys.usage_key(epoch), consumer.encode(), "sha256")
            for epoch in keys.usage_key_epochs()
        ]
        if service is not None:
            digest, _ = self._service(service)
        else:
            with self.ledger.read() as conn:
                services = billed_services(conn, the_period)
                used = [s for s in services if consumer_has_usage(conn, s, the_period, pseudonyms)]
            if len(used) != 1:
                raise (NotFoundError if not used else InputError)(
                    f"the consumer you named has usage in {len(used)} service(s) billed in "
                    f"{the_period}",
                    hint="check the identifier and the period"
                    if not used
                    else "name the service: --service NAME",
                )
            digest = used[0]
        return build_receipt(self.ledger, digest, the_period, pseudonyms)

    def prepare_receipts(self, service: AssetOrName, period: str | Period) -> int:
        """Keep the trees the receipts of a bill read (`receipts.prepare_receipts`): run once
        after billing, every receipt is then built without reading a whole batch."""
        digest, _ = self._service(service)
        return prepare_receipts(self.ledger, digest, Period.parse(str(period)))

    def usage_units(self, service: AssetOrName, period: str | Period) -> int:
        """Units of `service` (a digest, prefix or name) used in windows starting within `period`.

        Raises:
            NotFoundError: `service` is not registered (rather than 0 units for a typo).
        """
        the_period = Period.parse(str(period))
        with self.ledger.read() as conn:
            return units_used(conn, resolve_asset(conn, service), the_period)

    # ------------------------------------------------------------ privacy

    def set_privacy_budget(
        self, service: AssetOrName, epsilon: object, *, by: PartyRef | None = None
    ) -> int:
        """Set the ε that all private releases about one month of `service`'s usage may
        spend together (signed by its operator, or `by` holding the metering right);
        returns the entry's index. A later budget replaces it (docs/privacy.md).

        Raises:
            InputError: ε is not a positive number. RightsError: `by` may not set it.
        """
        digest, operator = self._service(service)
        return set_budget(self.ledger, digest, epsilon, author=self._author(by, operator))

    def release_usage_statistics(
        self,
        service: AssetOrName,
        meter: str,
        period: str | Period,
        *,
        query: str,
        epsilon: object,
        by: PartyRef | None = None,
        bound: object | None = None,
        days: object | None = None,
        edges: Sequence[object] | None = None,
    ) -> Release:
        """A differentially private aggregate of one month of `meter`'s usage (`query`:
        daily-count, daily-sum or consumer-histogram), noised by OpenDP for `epsilon`
        and appended as a `privacy.released` entry (`quotepart.metering.privacy`).

        Raises:
            InputError, NotFoundError: bad ε, bound, query, period or meter.
            RightsError: rule `privacy-budget` (no budget, or beyond it) or no metering
                right; nothing is written.
        """
        digest, operator = self._service(service)
        author = self._author(by, operator)
        return release(
            self.ledger, digest, meter, period, query=query, epsilon=epsilon,
            author=author, bound=bound, days=days, edges=edges,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServiceMeter:
    """`ws.meter(service)`: the metering calls of one service, named once."""

    metering: Metering
    service: AssetOrName

    def define(self, name: str, **options: Any) -> int:
        """`Metering.define_meter` for this service."""
        return self.metering.define_meter(self.service, name, **options)

    def ingest(self, events: bytes | BinaryIO | Iterable[Any], **options: Any) -> Ingested:
        """`Metering.ingest` for this service."""
        return self.metering.ingest(self.service, events, **options)

    def consume(self, options: ConsumeOptions, **more: Any) -> Consumed:
        """`Metering.consume` for this service."""
        return self.metering.consume(options, service=self.service, **more)

    def meters(self) -> list[Meter]:
        return self.metering.meters(self.service)


__all__ = ["Metering", "ServiceMeter", "UsageEvent", "pseudonymise"]
