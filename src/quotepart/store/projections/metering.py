"""Projections of metering facts: meters, usage batches, tariffs, bills, privacy.

A meter is defined once per service and name (a bill must mean the same thing for the
whole life of the meter); a batch must name a meter of its service.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from quotepart.errors import InputError
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    MeterDefined,
    PrivacyBudget,
    PrivacyReleased,
    TariffSet,
    UsageBatch,
    UsageBilled,
)
from quotepart.store.projections._writer import ProjectionWriter, projects
from quotepart.store.projections.sharing import _asset_kind
from quotepart.store.schema import (
    bills,
    meters,
    privacy_budgets,
    privacy_releases,
    tariffs,
    usage_batches,
)


def _require_service(writer: ProjectionWriter, service: str, what: str) -> None:
    kind = _asset_kind(writer, service)
    if kind != "service":
        raise InputError(
            f"{what} names {kind or 'unknown asset'} {service}, not a registered service",
            hint="register the service first (register_service)",
        )


def meter_exists(writer: ProjectionWriter, service: str, name: str) -> bool:
    """Whether `service` defines meter `name` (this batch included); found ones are
    remembered for the batch, as meters are never removed."""
    known = writer.cache.setdefault("meters", {})
    if (service, name) in known:
        return True
    writer.flush()
    found = writer.conn.execute(
        select(meters.c.leaf_index).where(meters.c.service == service, meters.c.name == name)
    ).first()
    if found is not None:
        known[(service, name)] = True
    return found is not None


@projects(MeterDefined)
def project_meter(
    writer: ProjectionWriter, body: MeterDefined, entry: SignedEntry, leaf_index: int
) -> None:
    service = str(body.service)
    _require_service(writer, service, "the meter")
    if meter_exists(writer, service, body.name):
        raise InputError(
            f"meter {body.name!r} of {service} is already defined",
            hint="a meter means one thing for its whole life: define a new name instead",
        )
    writer.add(
        meters,
        {
            "service": service,
            "name": body.name,
            "leaf_index": leaf_index,
            "event_type": body.event_type,
            "aggregation": body.aggregation,
            "value_path": body.value_path,
            "group_by": json.dumps(list(body.group_by)),
            "consumer_path": body.consumer_path,
        },
    )
    writer.flush()


@projects(UsageBatch)
def project_usage_batch(
    writer: ProjectionWriter, body: UsageBatch, entry: SignedEntry, leaf_index: int
) -> None:
    service = str(body.service)
    if not meter_exists(writer, service, body.meter):
        raise InputError(
            f"usage batch for meter {body.meter!r}, which {service} does not define",
            hint="define the meter first (quotepart meter add)",
        )
    writer.add(
        usage_batches,
        {
            "leaf_index": leaf_index,
            "service": service,
            "meter": body.meter,
            "month": body.month,
            "events": body.events,
            "aggregate": body.aggregate,
            "epoch": body.epoch,
            "root": bytes.fromhex(body.root),
        },
    )


@projects(TariffSet)
def project_tariff(
    writer: ProjectionWriter, body: TariffSet, entry: SignedEntry, leaf_index: int
) -> None:
    service = str(body.service)
    if not meter_exists(writer, service, body.meter):
        raise InputError(
            f"tariff for meter {body.meter!r}, which {service} does not define",
            hint="define the meter first (quotepart meter add)",
        )
    writer.add(
        tariffs,
        {
            "leaf_index": leaf_index,
            "service": service,
            "meter": body.meter,
            "currency": body.currency,
            "unit_price": body.unit_price,
            "effective": entry.raw_body["effective"],
        },
    )


@projects(UsageBilled)
def project_bill(
    writer: ProjectionWriter, body: UsageBilled, entry: SignedEntry, leaf_index: int
) -> None:
    _require_service(writer, str(body.service), "the bill")
    for line in body.lines:
        if not meter_exists(writer, str(body.service), line.meter):
            raise InputError(
                f"bill line for meter {line.meter!r}, which {body.service} does not define",
                hint="bill only the service's own meters",
            )
    writer.add(
        bills,
        {
            "leaf_index": leaf_index,
            "revenue_id": str(body.revenue),
            "service": str(body.service),
            "first_month": body.period.first_month,
            "last_month": body.period.last_month,
            "currency": body.currency,
            "total_minor": body.total_minor,
            "batches": body.batches,
            "consumers_root": bytes.fromhex(body.consumers_root),
        },
    )


@projects(PrivacyBudget)
def project_privacy_budget(
    writer: ProjectionWriter, body: PrivacyBudget, entry: SignedEntry, leaf_index: int
) -> None:
    _require_service(writer, str(body.service), "the privacy budget")
    writer.add(
        privacy_budgets,
        {"leaf_index": leaf_index, "service": str(body.service), "epsilon": body.epsilon},
    )


@projects(PrivacyReleased)
def project_privacy_release(
    writer: ProjectionWriter, body: PrivacyReleased, entry: SignedEntry, leaf_index: int
) -> None:
    if not meter_exists(writer, str(body.service), body.meter):
        raise InputError(
            f"private release for meter {body.meter!r}, which {body.service} does not define",
            hint="release aggregates of the service's own meters",
        )
    writer.add(
        privacy_releases,
        {
            "leaf_index": leaf_index,
            "service": str(body.service),
            "meter": body.meter,
            "month": body.month,
            "query": body.query,
            "epsilon": body.epsilon,
        },
    )
