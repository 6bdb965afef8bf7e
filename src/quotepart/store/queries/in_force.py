"""Which policy or valuation is in force: the latest one recorded for each asset or model.

The rows of `policies` and `valuations` are never replaced, so "in force" is the row with
the highest leaf index per key. Sharing (the allocation's facts, the payout minimum) and
the report both ask this one question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from quotepart.store.schema import policies, valuations


def latest_leaves(
    conn: Connection, key: ColumnElement[Any], keys: Sequence[str] | None = None
) -> list[int]:
    """The leaf index of the latest row per `key` (the policy or valuation in force), for
    `keys` or for every key: the rows of `policies` and `valuations` are never replaced."""
    leaf_index = key.table.c.leaf_index
    query = select(key, func.max(leaf_index)).group_by(key)
    if keys is not None:
        if not keys:
            return []
        query = query.where(key.in_(list(keys)))
    return [int(leaf) for _, leaf in conn.execute(query)]


def latest_policy_leaves(conn: Connection, assets: Sequence[str] | None = None) -> list[int]:
    """The leaf index of the policy in force on each of `assets` (digests; every asset
    for None) that has one."""
    return latest_leaves(conn, policies.c.asset, assets)


def latest_valuation_leaves(conn: Connection, models: Sequence[str] | None = None) -> list[int]:
    """The leaf index of the latest valuation of each of `models` (digests) that has one."""
    return latest_leaves(conn, valuations.c.model, models)


__all__ = ["latest_leaves", "latest_policy_leaves", "latest_valuation_leaves"]
