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
from quotepart.store.log_store import (
    ConsistencyProof,
    InclusionProof,
    LogSnapshot,
    LogStore,
)

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "LogSnapshot",
    "LogStore",
    "migrate",
    "normalise_url",
    "open_engine",
    "schema_revision",
    "split_password",
    "sqlite_url",
    "with_password",
]
