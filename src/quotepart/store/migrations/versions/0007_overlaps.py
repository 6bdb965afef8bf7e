"""Record-level identity: overlaps between record sets.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

`overlap.detected` entries (a record set holding records an earlier one holds) are
projected into `overlaps`, which allocations read to credit copied records to their
first registrant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "overlaps",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("asset", sa.String(71), nullable=False),
        sa.Column("earlier", sa.String(71), nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("of_records", sa.BigInteger, nullable=False),
        sa.Column("match", sa.String(8), nullable=False),
        sa.Column("tolerance", sa.String(40), nullable=False),
    )
    op.create_index("ix_overlaps_asset", "overlaps", ["asset"])
    op.create_index("ix_overlaps_earlier", "overlaps", ["earlier"])


def downgrade() -> None:
    op.drop_table("overlaps")
