"""Metering: meters, usage batches with their events, tariffs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

`meter.defined`, `usage.batch` and `tariff.set` are projected into `meters`,
`usage_batches` and `tariffs`. A batch's events are a side table (`usage_events`): the
log holds only their Merkle root, `rebuild` keeps them and `verify` recomputes every
root from them. `usage_totals` folds them per consumer, meter and month for bills and
receipts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "meters",
        sa.Column("service", sa.String(71), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("aggregation", sa.String(16), nullable=False),
        sa.Column("value_path", sa.String(600)),
        sa.Column("group_by", sa.Text, nullable=False),
        sa.Column("consumer_path", sa.String(600), nullable=False),
    )
    op.create_index("ix_meters_event_type", "meters", ["service", "event_type"])
    op.create_table(
        "usage_batches",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("service", sa.String(71), nullable=False),
        sa.Column("meter", sa.String(64), nullable=False),
        sa.Column("month", sa.Integer, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("aggregate", sa.String(90), nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_usage_batches_service_month", "usage_batches", ["service", "month", "meter"]
    )
    op.create_table(
        "tariffs",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("service", sa.String(71), nullable=False),
        sa.Column("meter", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("unit_price", sa.String(90), nullable=False),
        sa.Column("effective", sa.String(32), nullable=False),
    )
    op.create_index("ix_tariffs_meter", "tariffs", ["service", "meter", "currency", "effective"])
    op.create_table(
        "usage_events",
        sa.Column("id", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("dedupe", sa.LargeBinary, nullable=False),
        sa.Column("consumer", sa.LargeBinary, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("value", sa.String(90)),
        sa.Column("leaf", sa.LargeBinary, nullable=False),
        sa.Column("event", sa.LargeBinary, nullable=False),
    )
    op.create_index("ux_usage_events_dedupe", "usage_events", ["dedupe"], unique=True)
    op.create_index("ix_usage_events_consumer", "usage_events", ["consumer"])
    op.create_table(
        "usage_totals",
        sa.Column("service", sa.String(71), primary_key=True),
        sa.Column("meter", sa.String(64), primary_key=True),
        sa.Column("month", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("consumer", sa.LargeBinary, primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("total", sa.String(90), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    for table in ("usage_totals", "usage_events", "tariffs", "usage_batches", "meters"):
        op.drop_table(table)
