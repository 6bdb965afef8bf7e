"""Fair sharing: revenues, policies, valuations, consents, allocations and payouts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "revenues",
        sa.Column("revenue_id", sa.String(40), primary_key=True),
        sa.Column("asset", sa.String(71), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("first_month", sa.Integer, nullable=False),
        sa.Column("last_month", sa.Integer, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_revenues_asset", "revenues", ["asset"])
    op.create_table(
        "policies",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("asset", sa.String(71), nullable=False),
    )
    op.create_index("ix_policies_asset", "policies", ["asset"])
    op.create_table(
        "valuations",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("model", sa.String(71), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
    )
    op.create_index("ix_valuations_model", "valuations", ["model"])
    op.create_table(
        "consents",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("party_id", sa.String(40), nullable=False),
        sa.Column("asset", sa.String(71), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("effective", sa.String(32), nullable=False),
    )
    op.create_index("ix_consents_asset", "consents", ["asset"])
    op.create_table(
        "allocations",
        sa.Column("revenue_id", sa.String(40), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "allocation_amounts",
        sa.Column("allocation", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("party_id", sa.String(40), primary_key=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("first_month", sa.Integer, nullable=False),
        sa.Column("last_month", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_allocation_amounts_party", "allocation_amounts", ["party_id", "currency"])
    op.create_table(
        "payouts",
        sa.Column("payout_id", sa.String(40), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, nullable=False, unique=True),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rail", sa.String(16), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "payout_amounts",
        sa.Column("payout", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("party_id", sa.String(40), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("paid_minor", sa.BigInteger, nullable=False),
        sa.Column("carried_minor", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_payout_amounts_party", "payout_amounts", ["party_id", "currency"])


def downgrade() -> None:
    for table in (
        "payout_amounts", "payouts", "allocation_amounts", "allocations", "consents",
        "valuations", "policies", "revenues",
    ):  # fmt: skip
        op.drop_table(table)
