"""Record-level identity: overlaps between record sets.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

`overlap.detected` entries (a record set holding records an earlier one holds) are
projected into `overlaps`, which allocations read to credit copied records to their
first registrant. The record index (`record_sets`, `record_keys`) is a side table: it is
written from the records at registration, not from the log, and `rebuild` keeps it.
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
    # A statement lists the adjustments of every asset its party registered (issue 16).
    op.create_index("ix_assets_registered_by", "assets", ["registered_by"])
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
    op.create_table(
        "record_sets",
        sa.Column("asset", sa.String(71), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("set_root", sa.String(71), nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("fields", sa.Integer, nullable=False),
        sa.Column("tolerance", sa.String(40), nullable=False),
    )
    op.create_index("ix_record_sets_leaf_index", "record_sets", ["leaf_index"])
    op.create_index("ix_record_sets_set_root", "record_sets", ["set_root"])
    op.create_table(
        "record_keys",
        sa.Column("asset", sa.String(71), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("exact", sa.LargeBinary, nullable=False),
        sa.Column("near", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_assets_registered_by", table_name="assets")
    op.drop_table("record_keys")
    op.drop_table("record_sets")
    op.drop_table("overlaps")
