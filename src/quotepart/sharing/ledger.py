"""What sharing reads out of a workspace's log: the facts of an allocation, the minimum payout.

The queries are the store's (`quotepart.store.queries.sharing`); this module turns the
entries they find into sharing's own types. Amounts are never read from projections:
they come from the signed entries themselves.
"""

from __future__ import annotations

from sqlalchemy import Connection

from quotepart.allocation.facts import SharingFacts
from quotepart.ids import RevenueId
from quotepart.log.kinds import PolicySet
from quotepart.store.queries.entries import read_bodies, read_entries
from quotepart.store.queries.in_force import latest_policy_leaves
from quotepart.store.queries.sharing import fact_leaves


def facts_of(conn: Connection, revenue: RevenueId) -> SharingFacts:
    """Every fact the allocation of `revenue` derives from, read from the log."""
    return SharingFacts.from_entries(read_entries(conn, fact_leaves(conn, revenue)), revenue)


def largest_minimum(conn: Connection) -> int:
    """The largest minimum payout among the policies in force (the latest of each asset)."""
    policies = read_bodies(conn, latest_policy_leaves(conn), PolicySet)
    return max((policy.minimum_payout for policy in policies), default=0)


__all__ = ["facts_of", "largest_minimum"]
