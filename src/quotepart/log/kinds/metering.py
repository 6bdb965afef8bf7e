"""Metering facts: meters, usage batches with Merkle roots over their events, tariffs.

* `meter.defined`: how a service's usage is counted from CloudEvents — which event type,
  which aggregation (count, sum, max, unique_count) of which value, grouped by what, and
  where the consumer's identifier is (pseudonymised before anything is stored).
* `usage.batch`: a batch of events of one meter in one month, recorded as one signed
  entry. It holds the count, the aggregate, the pseudonym key's epoch and the RFC 9162
  root over the batch's event leaves; the events themselves live beside the log
  (`quotepart.store.usage_events`), and `verify` recomputes each root from them, so a
  consumer holding an inclusion proof of its event in the root can check its bill.
* `tariff.set`: the unit price of a meter, in a currency, from a date on; a bill names
  the tariff it priced with.
* `usage.billed`: a period's usage priced by the tariffs, closing the period; its
  per-consumer lines are committed by a Merkle root for consumers' receipts.
* `privacy.budget` / `privacy.released`: the ε a service may spend per month of usage,
  and each differentially private aggregate released within it.

A batch counts in the month its events happened, unless that month is already billed:
then in the next open month, and its `note` says so. Nothing lands in a closed month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest, Period, RevenueId, format_timestamp, parse_timestamp
from quotepart.log.kinds._base import DECIMAL_RE, BodyReader, KindBody, RawBody, entry_kind
from quotepart.money import currency

AGGREGATIONS = frozenset({"count", "sum", "max", "unique_count"})
"""How a meter folds its events' values: as OpenMeter's meters do."""

METER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
JSON_PATH_RE = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_-]{0,63}){1,8}$")
"""The JSON path subset meters use: `$.data.tokens` — object members only, at most 8
deep. It is all OpenMeter's and Lago's meters need, and it is evaluated without a
general JSONPath engine on the ingest path (100,000 events a second)."""

_ROOT_RE = re.compile(r"^[0-9a-f]{64}$")


def _check_name(kind: str, name: str) -> str:
    if not METER_NAME_RE.match(name):
        raise MalformedEntryError(
            f"{kind}: meter name {name!r} is not a lower-case slug",
            hint="name meters like 'tokens' or 'api-calls': a-z, 0-9, '_', '.', '-'",
        )
    return name


def check_path(kind: str, field: str, path: str) -> str:
    if not JSON_PATH_RE.match(path):
        raise MalformedEntryError(
            f"{kind}: {field} {path!r} is not a JSON path like $.data.tokens",
            hint="meters read object members only: $.subject, $.data.model, $.data.usage.input",
        )
    return path


@entry_kind("meter.defined")
class MeterDefined(KindBody):
    service: Digest
    name: str
    event_type: str  # the CloudEvents `type` this meter counts
    aggregation: str  # count | sum | max | unique_count
    value_path: str | None = None  # required unless count
    group_by: tuple[str, ...] = ()  # paths; each event's group is their values
    consumer_path: str = "$.subject"

    def to_body(self) -> RawBody:
        body: RawBody = {
            "service": str(self.service),
            "name": self.name,
            "event_type": self.event_type,
            "aggregation": self.aggregation,
            "consumer_path": self.consumer_path,
        }
        if self.value_path is not None:
            body["value_path"] = self.value_path
        if self.group_by:
            body["group_by"] = list(self.group_by)
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "service", "name", "event_type", "aggregation", "value_path", "group_by",
            "consumer_path",
        )  # fmt: skip
        aggregation = read.choice("aggregation", AGGREGATIONS)
        value_path = read.text("value_path", optional=True, max_length=600)
        if value_path is not None:
            check_path(cls.KIND, "value_path", value_path)
        if (value_path is None) != (aggregation == "count"):
            raise MalformedEntryError(
                f"{cls.KIND}: a {aggregation} meter "
                + ("needs a value_path" if value_path is None else "takes no value_path"),
                hint="count counts events; sum, max and unique_count read a value",
            )
        group_by = body.get("group_by", [])
        if (
            not isinstance(group_by, list)
            or len(group_by) > 4
            or len(set(group_by)) != len(group_by)
        ):
            raise MalformedEntryError(
                f"{cls.KIND}: group_by must be a list of at most 4 distinct paths",
                hint="group by the fields a bill or report splits on, e.g. $.data.model",
            )
        for path in group_by:
            check_path(cls.KIND, "group_by", path if isinstance(path, str) else "")
        return cls(
            service=Digest.parse(read.text("service")),
            name=_check_name(cls.KIND, read.text("name", max_length=64)),
            event_type=read.name("event_type", max_length=200),
            aggregation=aggregation,
            value_path=value_path,
            group_by=tuple(group_by),
            consumer_path=check_path(
                cls.KIND, "consumer_path", read.text("consumer_path", max_length=600)
            ),
        )


@entry_kind("usage.batch")
class UsageBatch(KindBody):
    service: Digest
    meter: str
    period: Period  # one month: the one the events happened in, or the next open one
    events: int
    aggregate: str  # decimal string: the meter's aggregation over this batch
    epoch: int  # the pseudonym key's epoch
    root: str  # hex RFC 9162 root over the events' leaves, in batch order
    first: datetime  # earliest event time
    last: datetime  # latest event time
    note: str | None = None  # why it counts in a later month than its events

    def to_body(self) -> RawBody:
        body: RawBody = {
            "service": str(self.service),
            "meter": self.meter,
            "period": str(self.period),
            "events": self.events,
            "aggregate": self.aggregate,
            "epoch": self.epoch,
            "root": self.root,
            "first": format_timestamp(self.first),
            "last": format_timestamp(self.last),
        }
        if self.note is not None:
            body["note"] = self.note
        return body

    @property
    def month(self) -> int:
        return self.period.first_month

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "service", "meter", "period", "events", "aggregate", "epoch", "root", "first",
            "last", "note",
        )  # fmt: skip
        period = Period.parse(read.text("period", max_length=20))
        if period.first_month != period.last_month:
            raise MalformedEntryError(
                f"{cls.KIND}: period {period} is not one month",
                hint="a batch counts in one month, written YYYY-MM",
            )
        aggregate = read.text("aggregate", max_length=90)
        if not DECIMAL_RE.match(aggregate):
            raise MalformedEntryError(
                f"{cls.KIND}: aggregate must be a decimal string, got {aggregate!r}",
                hint="entries hold no floats: write numbers as decimal strings",
            )
        root = read.text("root", max_length=64)
        if not _ROOT_RE.match(root):
            raise MalformedEntryError(
                f"{cls.KIND}: root must be 64 lower-case hex digits", hint="a SHA-256 tree root"
            )
        first, last = parse_timestamp(read.text("first")), parse_timestamp(read.text("last"))
        if last < first:
            raise MalformedEntryError(f"{cls.KIND}: the last event is before the first")
        if first.year * 12 + first.month - 1 > period.first_month:
            raise MalformedEntryError(
                f"{cls.KIND}: events from {format_timestamp(first)[:7]} cannot count in the "
                f"earlier month {period}",
                hint="late usage moves forward to the next open month, never back",
            )
        return cls(
            service=Digest.parse(read.text("service")),
            meter=_check_name(cls.KIND, read.text("meter", max_length=64)),
            period=period,
            events=read.integer("events", minimum=1),
            aggregate=aggregate,
            epoch=read.integer("epoch", minimum=1),
            root=root,
            first=first,
            last=last,
            note=read.text("note", optional=True),
        )


@entry_kind("tariff.set")
class TariffSet(KindBody):
    service: Digest
    meter: str
    currency: str
    unit_price: str  # decimal string of major units per unit of the meter's aggregate
    effective: datetime  # in force from this moment until a later tariff of the meter

    def to_body(self) -> RawBody:
        return {
            "service": str(self.service),
            "meter": self.meter,
            "currency": self.currency,
            "unit_price": self.unit_price,
            "effective": format_timestamp(self.effective),
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("service", "meter", "currency", "unit_price", "effective")
        unit_price = read.text("unit_price", max_length=90)
        if read.decimal_value("unit_price", unit_price) < 0:
            raise MalformedEntryError(
                f"{cls.KIND}: unit_price {unit_price} is negative", hint="prices are ≥ 0"
            )
        currency = read.text("currency", max_length=3)
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise MalformedEntryError(
                f"{cls.KIND}: currency {currency!r} is not an ISO 4217 code", hint="e.g. EUR"
            )
        return cls(
            service=Digest.parse(read.text("service")),
            meter=_check_name(cls.KIND, read.text("meter", max_length=64)),
            currency=currency,
            unit_price=unit_price,
            effective=parse_timestamp(read.text("effective")),
        )


_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_DIGEST_TEXT_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _positive_decimal(kind: str, field: str, value: str) -> str:
    if not DECIMAL_RE.match(value) or Fraction(value) <= 0:
        raise MalformedEntryError(
            f"{kind}: {field} must be a positive decimal string, got {value!r}",
            hint="entries hold no floats: write numbers as decimal strings such as '0.5'",
        )
    return value


@dataclass(frozen=True, slots=True)
class BillLine:
    """One meter's part of a bill: its quantity priced at the tariff in force."""

    meter: str
    quantity: str  # decimal string: the meter's aggregate over the bill's batches
    tariff: int  # leaf index of the `tariff.set` it priced with
    unit_price: str  # that tariff's price, repeated so the line reads alone
    amount_minor: int

    def to_body(self) -> RawBody:
        return {
            "meter": self.meter,
            "quantity": self.quantity,
            "tariff": self.tariff,
            "unit_price": self.unit_price,
            "amount_minor": self.amount_minor,
        }


@entry_kind("usage.billed")
class UsageBilled(KindBody):
    """A period's usage of a service, priced: it closes the period for the service.

    Names the batches it counted (how many, and a SHA-256 over their entries' leaf
    hashes in log order), the tariff of each line, and an RFC 9162 root over the
    per-consumer lines, so a consumer's receipt can prove what it was billed. The
    revenue it records carries the same id; `evidence` is the digest of the invoice or
    payment evidence the operator attaches.
    """

    revenue: RevenueId
    service: Digest
    period: Period
    currency: str
    lines: tuple[BillLine, ...]
    total_minor: int
    batches: int
    batches_digest: str  # sha256:<hex>
    consumers: int
    consumers_root: str  # hex
    evidence: str | None = None  # sha256:<hex>

    def to_body(self) -> RawBody:
        body: RawBody = {
            "revenue": str(self.revenue),
            "service": str(self.service),
            "period": str(self.period),
            "currency": self.currency,
            "lines": [line.to_body() for line in self.lines],
            "total_minor": self.total_minor,
            "batches": self.batches,
            "batches_digest": self.batches_digest,
            "consumers": self.consumers,
            "consumers_root": self.consumers_root,
        }
        if self.evidence is not None:
            body["evidence"] = self.evidence
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "revenue", "service", "period", "currency", "lines", "total_minor", "batches",
            "batches_digest", "consumers", "consumers_root", "evidence",
        )  # fmt: skip
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines or len(raw_lines) > 100:
            raise MalformedEntryError(
                f"{cls.KIND}: lines must be a list of 1 to 100 meter lines",
                hint="one line per meter billed",
            )
        lines = []
        for raw in raw_lines:
            line = BodyReader(f"{cls.KIND} line", raw if isinstance(raw, dict) else {})
            line.only("meter", "quantity", "tariff", "unit_price", "amount_minor")
            quantity = line.text("quantity", max_length=90)
            line.decimal_value("quantity", quantity)
            unit_price = line.text("unit_price", max_length=90)
            line.decimal_value("unit_price", unit_price)
            lines.append(
                BillLine(
                    _check_name(cls.KIND, line.text("meter", max_length=64)),
                    quantity,
                    line.integer("tariff"),
                    unit_price,
                    line.integer("amount_minor"),
                )
            )
        if len({line.meter for line in lines}) != len(lines):
            raise MalformedEntryError(f"{cls.KIND}: a meter is billed twice", hint="one line each")
        total = read.integer("total_minor", minimum=1)
        if total != sum(line.amount_minor for line in lines):
            raise MalformedEntryError(
                f"{cls.KIND}: total_minor {total} is not the sum of its lines",
                hint="the total is the lines' amounts added up",
            )
        digest = read.text("batches_digest", max_length=71)
        evidence = read.text("evidence", optional=True, max_length=71)
        for field, value in (("batches_digest", digest), ("evidence", evidence)):
            if value is not None and not _DIGEST_TEXT_RE.match(value):
                raise MalformedEntryError(
                    f"{cls.KIND}: {field} must be sha256:<64 hex>", hint="a SHA-256 digest"
                )
        root = read.text("consumers_root", max_length=64)
        if not _ROOT_RE.match(root):
            raise MalformedEntryError(
                f"{cls.KIND}: consumers_root must be 64 lower-case hex digits",
                hint="an RFC 9162 tree root",
            )
        return cls(
            revenue=RevenueId.parse(read.text("revenue")),
            service=Digest.parse(read.text("service")),
            period=Period.parse(read.text("period", max_length=20)),
            currency=currency(read.text("currency", max_length=3)).code,
            lines=tuple(lines),
            total_minor=total,
            batches=read.integer("batches", minimum=1),
            batches_digest=digest,
            consumers=read.integer("consumers", minimum=1),
            consumers_root=root,
            evidence=evidence,
        )


@entry_kind("privacy.budget")
class PrivacyBudget(KindBody):
    """The differential-privacy budget of a service: the ε that all releases about one
    month of its usage may spend together. A later budget replaces it from then on."""

    service: Digest
    epsilon: str  # decimal string > 0, per month of usage

    def to_body(self) -> RawBody:
        return {"service": str(self.service), "epsilon": self.epsilon}

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("service", "epsilon")
        return cls(
            Digest.parse(read.text("service")),
            _positive_decimal(cls.KIND, "epsilon", read.text("epsilon", max_length=90)),
        )


@entry_kind("privacy.released")
class PrivacyReleased(KindBody):
    """A differentially private aggregate of one month of a meter's usage, released
    through OpenDP: what was asked (`query`), the mechanism, the ε it spent and the
    released values themselves (label, value), so the report shows them from the log."""

    service: Digest
    meter: str
    period: Period  # one month
    query: str  # e.g. daily-count, daily-sum, consumer-histogram
    mechanism: str  # e.g. opendp:laplace
    epsilon: str  # decimal string > 0
    values: tuple[tuple[str, str], ...]

    def to_body(self) -> RawBody:
        return {
            "service": str(self.service),
            "meter": self.meter,
            "period": str(self.period),
            "query": self.query,
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "values": [list(pair) for pair in self.values],
        }

    @property
    def month(self) -> int:
        return self.period.first_month

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("service", "meter", "period", "query", "mechanism", "epsilon", "values")
        period = Period.parse(read.text("period", max_length=20))
        if period.first_month != period.last_month:
            raise MalformedEntryError(
                f"{cls.KIND}: period {period} is not one month", hint="release per month"
            )
        query = read.text("query", max_length=64)
        if not _SLUG_RE.match(query):
            raise MalformedEntryError(
                f"{cls.KIND}: query {query!r} is not a slug", hint="e.g. daily-count"
            )
        raw_values = body.get("values")
        if (
            not isinstance(raw_values, list)
            or len(raw_values) > 1000
            or not all(
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(item, str) and 0 < len(item) <= 90 for item in pair)
                and DECIMAL_RE.match(pair[1])
                for pair in raw_values
            )
        ):
            raise MalformedEntryError(
                f"{cls.KIND}: values must be at most 1,000 [label, decimal string] pairs",
                hint="e.g. [['2026-03-01', '1520.5'], ...]",
            )
        return cls(
            service=Digest.parse(read.text("service")),
            meter=_check_name(cls.KIND, read.text("meter", max_length=64)),
            period=period,
            query=query,
            mechanism=read.name("mechanism", max_length=64),
            epsilon=_positive_decimal(cls.KIND, "epsilon", read.text("epsilon", max_length=90)),
            values=tuple((pair[0], pair[1]) for pair in raw_values),
        )


__all__ = [
    "AGGREGATIONS",
    "JSON_PATH_RE",
    "METER_NAME_RE",
    "BillLine",
    "MeterDefined",
    "PrivacyBudget",
    "PrivacyReleased",
    "TariffSet",
    "UsageBatch",
    "UsageBilled",
    "check_path",
]
