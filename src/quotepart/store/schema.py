"""The SQL schema (SQLAlchemy Core): the log's own tables, then the projections.

The log tables (`log_head`, `log_entries`, `tree_nodes`, `checkpoints`) are the source
of truth; the projections (`PROJECTION_TABLES`) are recreated by `rebuild` from the log;
the side tables (`SIDE_TABLES`: the record index) are derived from registered *data*,
which the log does not hold, so `rebuild` keeps them and `verify` does not compare them.
Alembic migrations under `migrations/` create exactly this schema; a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

# INTEGER PRIMARY KEY is SQLite's rowid alias: the leaf index then *is* the B-tree key.
IndexType = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

log_head = Table(
    "log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
)

log_meta = Table(
    "log_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", Text, nullable=False),
    Column("log_public_key", LargeBinary(32), nullable=False),
)
"""Which log this database holds, so a key folder is never paired with another log's rows."""

log_entries = Table(
    "log_entries",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    # The idempotency lookup goes through the hash's first 8 bytes: a 4x smaller index
    # than the full hash, and leaf hashes are random, so every append batch dirties most
    # of its pages. Matches are confirmed on the full hash; uniqueness is kept by appends,
    # which look up every hash under the log's write lock before inserting.
    Column("leaf_prefix", BigInteger, nullable=False, index=True),
    Column("kind", String(64), nullable=False),
    Column("author", String(40), nullable=False),
    Column("entry", LargeBinary, nullable=False),
)

tree_nodes = Table(
    "tree_nodes",
    metadata,
    Column("node_id", IndexType, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
"""Perfect interior subtrees (level >= 1) keyed by `NodeId.flat`; level 0 is `log_entries.leaf_hash`."""

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("tree_size", IndexType, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
)

parties = Table(
    "parties",
    metadata,
    Column("party_id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("leaf_index", BigInteger, nullable=False),
    sqlite_with_rowid=False,  # the text key is the table: one B-tree, not two
)

assets = Table(
    "assets",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("digest", String(71), nullable=False),
    # Looked up through the digest's first 8 bytes: digests are random, so a full-text key
    # scatters every append batch over the whole index and dirties most of its pages.
    Column("digest_prefix", BigInteger, nullable=False, index=True),
    Column("asset_kind", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("registered_by", String(40), nullable=False, index=True),  # statements' adjustments
)

contributions = Table(
    "contributions",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("party_id", String(40), nullable=False, index=True),
    Column("asset", String(71), nullable=False, index=True),
    Column("role", String(32), nullable=False),
    Column("share", String(64), nullable=False),
    # Leaf index of the registrant's contribution.accepted, for a share its contributor
    # proposed; NULL where the registrant recorded it (the entry is its own acceptance).
    Column("accepted_by", BigInteger, nullable=True),
)

contribution_proposals = Table(
    "contribution_proposals",
    metadata,
    # A contribution.recorded signed by the contributor it names, not by the registrant:
    # it counts (a row in `contributions`) only once the registrant accepts it.
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("leaf_hash", String(64), nullable=False, unique=True),
    Column("party_id", String(40), nullable=False),
    Column("asset", String(71), nullable=False, index=True),
    Column("role", String(32), nullable=False),
    Column("share", String(64), nullable=False),
    Column("accepted_by", BigInteger, nullable=True),
)

rights = Table(
    "rights",
    metadata,
    # Every right.granted; `revoked_by` is the leaf index of the right.revoked that ended it.
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("grantor", String(40), nullable=False),
    Column("grantee", String(40), nullable=False),
    Column("right_name", String(16), nullable=False),
    Column("asset", String(71), nullable=False),
    Column("since", String(32), nullable=False),
    Column("until", String(32), nullable=True),
    Column("revoked_by", BigInteger, nullable=True),
    Index("ix_rights_grantee", "grantee", "asset", "right_name"),
)

claims = Table(
    "claims",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("asset", String(71), nullable=False, index=True),
    Column("claimant", String(40), nullable=False),
    Column("reason", Text, nullable=False),
)

overlaps = Table(
    "overlaps",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("asset", String(71), nullable=False, index=True),
    Column("earlier", String(71), nullable=False, index=True),
    Column("records", BigInteger, nullable=False),
    Column("of_records", BigInteger, nullable=False),
    Column("match", String(8), nullable=False),
    Column("tolerance", String(40), nullable=False),
)

record_sets = Table(
    "record_sets",
    metadata,
    Column("asset", String(71), primary_key=True),
    Column("leaf_index", BigInteger, nullable=False, index=True),  # of its registration
    Column("set_root", String(71), nullable=False, index=True),  # order-independent identity
    Column("records", BigInteger, nullable=False),
    Column("fields", Integer, nullable=False),  # numeric fields the near keys cover (0: none)
    Column("tolerance", String(40), nullable=False),
)
"""The record index (a side table, not a projection): one row per indexed record set.
Written at registration, in the same transaction as its `asset.registered`, from the
records themselves (see `quotepart.provenance.overlap`)."""

record_keys = Table(
    "record_keys",
    metadata,
    Column("asset", String(71), primary_key=True),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("exact", LargeBinary, nullable=False),  # sorted leaf hashes, 32 bytes each
    Column("near", LargeBinary, nullable=False),  # per grid, sorted int64 near keys
)
"""The keys of each indexed record set, as blobs of at most `RECORD_KEYS_PART` records
each: one row per million records instead of a row per key (9 million rows per million
records would cost more to insert than the registration itself)."""

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("operator", String(40), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("started", String(32), nullable=False),
    Column("ended", String(32), nullable=False),
    Column("leaf_index", BigInteger, nullable=False),
    Index("ix_runs_leaf_index", "leaf_index", unique=True),  # lineage nodes are leaf indexes
    sqlite_with_rowid=False,
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    # child -> parent, read "child came from parent": a run `used` an asset, an asset was
    # `generated` by a run, an asset was `derived` from another (a cohort from its dataset).
    # A node is named by the leaf index of the entry that registered it (an asset or a
    # run), so walks compare small integers and find names through primary keys.
    # The primary key serves upstream walks, the parent index downstream ones.
    Column("child", BigInteger, primary_key=True, autoincrement=False),
    Column("parent", BigInteger, primary_key=True, autoincrement=False),
    Column("relation", String(16), nullable=False),
    Index("ix_lineage_edges_parent", "parent", "child"),
    sqlite_with_rowid=False,
)

revenues = Table(
    "revenues",
    metadata,
    Column("revenue_id", String(40), primary_key=True),
    Column("asset", String(71), nullable=False, index=True),
    Column("period", String(8), nullable=False),
    Column("first_month", Integer, nullable=False),
    Column("last_month", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("leaf_index", BigInteger, nullable=False, unique=True),
    sqlite_with_rowid=False,
)

policies = Table(
    "policies",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("asset", String(71), nullable=False, index=True),  # the latest row applies
)

valuations = Table(
    "valuations",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("model", String(71), nullable=False, index=True),  # the latest row applies
    Column("method", String(64), nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("party_id", String(40), nullable=False),
    Column("asset", String(71), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("effective", String(32), nullable=False),
)

allocations = Table(
    "allocations",
    metadata,
    Column("revenue_id", String(40), primary_key=True),  # one allocation per revenue
    Column("leaf_index", BigInteger, nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

allocation_amounts = Table(
    "allocation_amounts",
    metadata,
    Column("allocation", BigInteger, primary_key=True, autoincrement=False),  # its leaf index
    Column("party_id", String(40), primary_key=True),
    Column("payer", String(40), nullable=False),  # who signed the allocation: who owes it
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("first_month", Integer, nullable=False),  # the revenue's period, for statements
    Column("last_month", Integer, nullable=False),
    Index("ix_allocation_amounts_party", "party_id", "currency"),
    sqlite_with_rowid=False,
)

payouts = Table(
    "payouts",
    metadata,
    Column("payout_id", String(40), primary_key=True),
    Column("leaf_index", BigInteger, nullable=False, unique=True),
    Column("period", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("rail", String(16), nullable=False),
    sqlite_with_rowid=False,
)

payout_amounts = Table(
    "payout_amounts",
    metadata,
    Column("payout", BigInteger, primary_key=True, autoincrement=False),  # its leaf index
    Column("party_id", String(40), primary_key=True),
    Column("payer", String(40), nullable=False),  # who signed the payout
    Column("currency", String(3), nullable=False),
    Column("paid_minor", BigInteger, nullable=False),
    Column("carried_minor", BigInteger, nullable=False),
    Index("ix_payout_amounts_party", "party_id", "currency"),
    sqlite_with_rowid=False,
)

usage = Table(
    "usage",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("service", String(71), nullable=False),
    Column("consumer", String(80), nullable=False),
    Column("units", BigInteger, nullable=False),
    Column("start", String(32), nullable=False),
    Column("month", Integer, nullable=False),  # year * 12 + month - 1 of the start, for billing
    Index("ix_usage_service_month", "service", "month"),
)

payout_changes = Table(
    "payout_changes",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("party_id", String(40), nullable=False),
    Column("commitment", String(71), nullable=False),  # the new salted commitment
    Index("ix_payout_changes_party", "party_id", "leaf_index"),
)
"""Every `party.payout_changed`: the party's payout commitment in force is its latest row,
or the one it registered with when it has none."""

meters = Table(
    "meters",
    metadata,
    Column("service", String(71), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("leaf_index", BigInteger, nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("aggregation", String(16), nullable=False),
    Column("value_path", String(600)),
    Column("group_by", Text, nullable=False),  # JSON list of paths
    Column("consumer_path", String(600), nullable=False),
    Index("ix_meters_event_type", "service", "event_type"),
)
"""Every `meter.defined`: how a service's CloudEvents are counted."""

usage_batches = Table(
    "usage_batches",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("service", String(71), nullable=False),
    Column("meter", String(64), nullable=False),
    Column("month", Integer, nullable=False),  # year * 12 + month - 1 it counts in
    Column("events", BigInteger, nullable=False),
    Column("aggregate", String(90), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Index("ix_usage_batches_service_month", "service", "month", "meter"),
)
"""Every `usage.batch`; its events are the `usage_events` rows of its leaf index."""

tariffs = Table(
    "tariffs",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("service", String(71), nullable=False),
    Column("meter", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("unit_price", String(90), nullable=False),
    Column("effective", String(32), nullable=False),
    Index("ix_tariffs_meter", "service", "meter", "currency", "effective"),
)

bills = Table(
    "bills",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("revenue_id", String(40), nullable=False),
    Column("service", String(71), nullable=False),
    Column("first_month", Integer, nullable=False),
    Column("last_month", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("batches", BigInteger, nullable=False),
    Column("consumers_root", LargeBinary, nullable=False),
    Index("ix_bills_service", "service", "first_month"),
)
"""Every `usage.billed`: a priced period of a service's usage."""

privacy_budgets = Table(
    "privacy_budgets",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("service", String(71), nullable=False),
    Column("epsilon", String(90), nullable=False),
    Index("ix_privacy_budgets_service", "service", "leaf_index"),
)
"""Every `privacy.budget`; the latest of a service is in force."""

privacy_releases = Table(
    "privacy_releases",
    metadata,
    Column("leaf_index", IndexType, primary_key=True, autoincrement=False),
    Column("service", String(71), nullable=False),
    Column("meter", String(64), nullable=False),
    Column("month", Integer, nullable=False),
    Column("query", String(64), nullable=False),
    Column("epsilon", String(90), nullable=False),
    Index("ix_privacy_releases_service_month", "service", "month"),
)
"""Every `privacy.released`: what each month of a service's usage has spent of its ε."""

EVENT_POSITION_BITS = 20
"""`usage_events.id` is the batch's leaf index << 20 | the event's position in it: one
B-tree key orders events by batch and position, with no second index for it."""

usage_events = Table(
    "usage_events",
    metadata,
    Column("id", IndexType, primary_key=True, autoincrement=False),
    Column("dedupe", LargeBinary, nullable=False),  # SHA-256(source NUL id)[:16]
    Column("consumer", LargeBinary, nullable=False),  # the 32-byte HMAC pseudonym
    Column("at", BigInteger, nullable=False),  # the event time, Unix seconds
    Column("value", String(90)),  # decimal string; NULL for count meters
    Column("leaf", LargeBinary, nullable=False),  # RFC 9162 leaf hash of `event`
    Column("event", LargeBinary, nullable=False),  # the stored (pseudonymised) event bytes
    Index("ux_usage_events_dedupe", "dedupe", unique=True),
    Index("ix_usage_events_consumer", "consumer"),
)
"""The events of every `usage.batch`, beside the log (which holds only their root)."""

usage_totals = Table(
    "usage_totals",
    metadata,
    Column("service", String(71), primary_key=True),
    Column("meter", String(64), primary_key=True),
    Column("month", Integer, primary_key=True, autoincrement=False),
    Column("consumer", LargeBinary, primary_key=True),
    Column("events", BigInteger, nullable=False),
    Column("total", String(90), nullable=False),  # sum or max of the values; events if count
    sqlite_with_rowid=False,
)
"""Per consumer, meter and month: kept up to date by each batch, read by bills and
receipts (a bill over 10 million events reads one row per consumer, not every event)."""

LOG_TABLES = (log_head, log_meta, log_entries, tree_nodes, checkpoints)
SIDE_TABLES = (record_sets, record_keys, usage_events, usage_totals)
"""Derived from data outside the log: `rebuild` keeps them, `verify` does not compare them."""
PROJECTION_TABLES = (
    parties,
    assets,
    contributions,
    runs,
    lineage_edges,
    revenues,
    policies,
    valuations,
    consents,
    allocations,
    allocation_amounts,
    payouts,
    payout_amounts,
    usage,
    payout_changes,
    contribution_proposals,
    rights,
    claims,
    overlaps,
    meters,
    usage_batches,
    tariffs,
    bills,
    privacy_budgets,
    privacy_releases,
)
