"""Payout references changed by their party (`party.payout_changed`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payout_changes",
        sa.Column(
            "leaf_index",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("party_id", sa.String(40), nullable=False),
        sa.Column("commitment", sa.String(71), nullable=False),
    )
    op.create_index("ix_payout_changes_party", "payout_changes", ["party_id", "leaf_index"])


def downgrade() -> None:
    op.drop_table("payout_changes")
