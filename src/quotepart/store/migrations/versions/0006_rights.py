"""Rights: delegations, claims, proposed contributions, and who owes each allocation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Allocations and payouts gain their payer (the party that signed them), read from the
log itself, so an existing workspace keeps its balances. Contributions recorded before
this version were all counted on append; `verify` now judges each against the rules
(docs/rights.md) and names any that break one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("contributions", sa.Column("accepted_by", sa.BigInteger, nullable=True))
    op.create_table(
        "contribution_proposals",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("party_id", sa.String(40), nullable=False),
        sa.Column("asset", sa.String(71), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("share", sa.String(64), nullable=False),
        sa.Column("accepted_by", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_contribution_proposals_asset", "contribution_proposals", ["asset"])
    op.create_table(
        "rights",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("grantor", sa.String(40), nullable=False),
        sa.Column("grantee", sa.String(40), nullable=False),
        sa.Column("right_name", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(71), nullable=False),
        sa.Column("since", sa.String(32), nullable=False),
        sa.Column("until", sa.String(32), nullable=True),
        sa.Column("revoked_by", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_rights_grantee", "rights", ["grantee", "asset", "right_name"])
    op.create_table(
        "claims",
        sa.Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
        sa.Column("asset", sa.String(71), nullable=False),
        sa.Column("claimant", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_claims_asset", "claims", ["asset"])

    op.drop_index("ix_allocation_amounts_party", table_name="allocation_amounts")
    op.rename_table("allocation_amounts", "allocation_amounts_0005")
    op.create_table(
        "allocation_amounts",
        sa.Column("allocation", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("party_id", sa.String(40), primary_key=True),
        sa.Column("payer", sa.String(40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("first_month", sa.Integer, nullable=False),
        sa.Column("last_month", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO allocation_amounts (allocation, party_id, payer, amount_minor, currency, "
        "first_month, last_month) SELECT a.allocation, a.party_id, e.author, a.amount_minor, "
        "a.currency, a.first_month, a.last_month FROM allocation_amounts_0005 a "
        "JOIN log_entries e ON e.leaf_index = a.allocation"
    )
    op.drop_table("allocation_amounts_0005")
    op.create_index("ix_allocation_amounts_party", "allocation_amounts", ["party_id", "currency"])

    op.drop_index("ix_payout_amounts_party", table_name="payout_amounts")
    op.rename_table("payout_amounts", "payout_amounts_0005")
    op.create_table(
        "payout_amounts",
        sa.Column("payout", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("party_id", sa.String(40), primary_key=True),
        sa.Column("payer", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("paid_minor", sa.BigInteger, nullable=False),
        sa.Column("carried_minor", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO payout_amounts (payout, party_id, payer, currency, paid_minor, "
        "carried_minor) SELECT p.payout, p.party_id, e.author, p.currency, p.paid_minor, "
        "p.carried_minor FROM payout_amounts_0005 p JOIN log_entries e ON e.leaf_index = p.payout"
    )
    op.drop_table("payout_amounts_0005")
    op.create_index("ix_payout_amounts_party", "payout_amounts", ["party_id", "currency"])


def downgrade() -> None:
    for table in ("claims", "rights", "contribution_proposals"):
        op.drop_table(table)
    op.drop_column("contributions", "accepted_by")
    op.drop_column("allocation_amounts", "payer")
    op.drop_column("payout_amounts", "payer")
