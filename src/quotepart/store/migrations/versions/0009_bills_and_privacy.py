"""Bills of metered usage, and differential-privacy budgets and releases.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

`usage.billed`, `privacy.budget` and `privacy.released` are projected into `bills`,
`privacy_budgets` and `privacy_releases`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bills",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("revenue_id", sa.String(40), nullable=False),
        sa.Column("service", sa.String(71), nullable=False),
        sa.Column("first_month", sa.Integer, nullable=False),
        sa.Column("last_month", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("batches", sa.BigInteger, nullable=False),
        sa.Column("consumers_root", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_bills_service", "bills", ["service", "first_month"])
    op.create_table(
        "privacy_budgets",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("service", sa.String(71), nullable=False),
        sa.Column("epsilon", sa.String(90), nullable=False),
    )
    op.create_index("ix_privacy_budgets_service", "privacy_budgets", ["service", "leaf_index"])
    op.create_table(
        "privacy_releases",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("service", sa.String(71), nullable=False),
        sa.Column("meter", sa.String(64), nullable=False),
        sa.Column("month", sa.Integer, nullable=False),
        sa.Column("query", sa.String(64), nullable=False),
        sa.Column("epsilon", sa.String(90), nullable=False),
    )
    op.create_index("ix_privacy_releases_service_month", "privacy_releases", ["service", "month"])


def downgrade() -> None:
    for table in ("privacy_releases", "privacy_budgets", "bills"):
        op.drop_table(table)
