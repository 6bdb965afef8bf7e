"""Runs and the lineage graph (asset/run edges) as projections.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("operator", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started", sa.String(32), nullable=False),
        sa.Column("ended", sa.String(32), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_runs_operator", "runs", ["operator"])
    op.create_index("ix_runs_leaf_index", "runs", ["leaf_index"], unique=True)
    op.create_table(
        "lineage_edges",
        sa.Column("child", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("parent", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("relation", sa.String(16), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_lineage_edges_parent", "lineage_edges", ["parent", "child"])


def downgrade() -> None:
    op.drop_table("lineage_edges")
    op.drop_table("runs")
