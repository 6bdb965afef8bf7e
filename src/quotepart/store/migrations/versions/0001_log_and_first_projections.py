"""The log tables and the party, asset and contribution projections.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

index_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    log_head = op.create_table(
        "log_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(log_head, [{"id": 1, "tree_size": 0}])
    op.create_table(
        "log_meta",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("log_public_key", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("leaf_index", index_type, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("leaf_prefix", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("author", sa.String(40), nullable=False),
        sa.Column("entry", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_log_entries_leaf_prefix", "log_entries", ["leaf_prefix"])
    op.create_table(
        "tree_nodes",
        sa.Column("node_id", index_type, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", index_type, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "parties",
        sa.Column("party_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "assets",
        sa.Column("leaf_index", index_type, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("digest_prefix", sa.BigInteger, nullable=False),
        sa.Column("asset_kind", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("registered_by", sa.String(40), nullable=False),
    )
    op.create_index("ix_assets_digest_prefix", "assets", ["digest_prefix"])
    op.create_table(
        "contributions",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("party_id", sa.String(40), nullable=False),
        sa.Column("asset", sa.String(71), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("share", sa.String(64), nullable=False),
    )
    op.create_index("ix_contributions_party_id", "contributions", ["party_id"])
    op.create_index("ix_contributions_asset", "contributions", ["asset"])


def downgrade() -> None:
    for table in ("contributions", "assets", "parties", "checkpoints", "tree_nodes", "log_entries"):
        op.drop_table(table)
    op.drop_table("log_meta")
    op.drop_table("log_head")
