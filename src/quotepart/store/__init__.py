"""Storage: the SQL schema, the stored log with its projections, and migrations."""

from quotepart.store.engine import (
    migrate,
    normalise_url,
    open_engine,
    schema_revision,
    split_password,
    sqlite_url,
    with_password,
)
from quotepart.store.log_store import ConsistencyProof, InclusionProof, LogStore

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "LogStore",
    "migrate",
    "normalise_url",
    "open_engine",
    "schema_revision",
    "split_password",
    "sqlite_url",
    "with_password",
]
