"""Usage of services by pseudonymous consumers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column(
            "leaf_index",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("service", sa.String(71), nullable=False),
        sa.Column("consumer", sa.String(80), nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.Column("start", sa.String(32), nullable=False),
        sa.Column("month", sa.Integer, nullable=False),
    )
    op.create_index("ix_usage_service_month", "usage", ["service", "month"])


def downgrade() -> None:
    op.drop_table("usage")
