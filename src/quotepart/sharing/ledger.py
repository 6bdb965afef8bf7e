"""Reading what sharing needs out of a workspace's database.

`facts_of` walks the lineage projections upstream from a revenue's asset and loads
exactly the entries the allocation derives from: every asset on the way, the runs
that made them, their contributions and consents, and the latest policy and
valuation of each model. Amounts are never read from projections: they come from
the signed entries themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, func, select

from quotepart.errors import NotFoundError, VerificationError
from quotepart.ids import Digest, PartyId, RevenueId
from quotepart.log import SignedEntry, parse_entry
from quotepart.log.kinds import PolicySet
from quotepart.sharing.facts import SharingFacts
from quotepart.store.log_store import leaf_indexes_of
from quotepart.store.projections import digest_prefix
from quotepart.store.queries.in_force import latest_leaves
from quotepart.store.schema import (
    allocation_amounts,
    allocations,
    assets,
    consents,
    contributions,
    lineage_edges,
    log_entries,
    payout_amounts,
    policies,
    revenues,
    runs,
    valuations,
)


def read_entries(conn: Connection, leaf_indexes: Iterable[int]) -> list[tuple[int, SignedEntry]]:
    wanted = sorted(set(leaf_indexes))
    found: list[tuple[int, SignedEntry]] = []
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(log_entries.c.leaf_index, log_entries.c.entry).where(
                log_entries.c.leaf_index.in_(wanted[start : start + 500])
            )
        )
        found.extend((int(index), parse_entry(bytes(data))) for index, data in rows)
    return sorted(found, key=lambda pair: pair[0])


def entries_by_hash(conn: Connection, hashes: Sequence[str]) -> list[tuple[int, SignedEntry]]:
    """Entries named by leaf hash (hex), found through the log's hash-prefix index."""
    wanted = {bytes.fromhex(h) for h in hashes}
    indexes = leaf_indexes_of(conn, sorted(wanted))
    if len(indexes) != len(wanted):
        raise VerificationError(
            f"{len(wanted) - len(indexes)} of the entries an allocation names are not in the log",
            hint="the log was altered or truncated; run `quotepart verify`",
        )
    return read_entries(conn, indexes.values())


def revenue_leaf(conn: Connection, revenue: RevenueId) -> tuple[int, Digest]:
    row = conn.execute(
        select(revenues.c.leaf_index, revenues.c.asset).where(revenues.c.revenue_id == str(revenue))
    ).first()
    if row is None:
        raise NotFoundError(
            f"no revenue {revenue} in this log", hint="list revenues with `quotepart revenue list`"
        )
    return int(row[0]), Digest.parse(row[1])


def facts_of(conn: Connection, revenue: RevenueId) -> SharingFacts:
    """Every fact the allocation of `revenue` derives from, read from the log."""
    revenue_index, start = revenue_leaf(conn, revenue)
    leaves: set[int] = {revenue_index}
    asset_leaf: dict[str, int] = {}
    frontier = [str(start)]
    seen_assets: set[str] = set()
    while frontier:
        batch = [d for d in dict.fromkeys(frontier) if d not in seen_assets]
        seen_assets.update(batch)
        frontier = []
        if not batch:
            break
        for digest, leaf in conn.execute(
            select(assets.c.digest, assets.c.leaf_index).where(
                assets.c.digest_prefix.in_([digest_prefix(d) for d in batch])
            )
        ):
            if digest in seen_assets:
                asset_leaf[digest] = int(leaf)
        batch_leaves = [asset_leaf[d] for d in batch if d in asset_leaf]
        leaves.update(batch_leaves)
        # assets it derives from, and runs that generated it
        parent_leaves: set[int] = set()
        run_leaves: set[int] = set()
        for _child, parent, relation in conn.execute(
            select(lineage_edges).where(lineage_edges.c.child.in_(batch_leaves))
        ):
            (run_leaves if relation == "generated" else parent_leaves).add(int(parent))
        if run_leaves:
            succeeded = {
                int(i)
                for (i,) in conn.execute(
                    select(runs.c.leaf_index).where(
                        runs.c.leaf_index.in_(sorted(run_leaves)), runs.c.status == "succeeded"
                    )
                )
            }
            leaves.update(succeeded)
            for (parent,) in conn.execute(
                select(lineage_edges.c.parent).where(
                    lineage_edges.c.child.in_(sorted(succeeded)),
                    lineage_edges.c.relation == "used",
                )
            ):
                parent_leaves.add(int(parent))
        if parent_leaves:
            frontier.extend(
                d
                for (d,) in conn.execute(
                    select(assets.c.digest).where(assets.c.leaf_index.in_(sorted(parent_leaves)))
                )
            )
        leaves.update(
            int(i)
            for (i,) in conn.execute(
                select(contributions.c.leaf_index).where(contributions.c.asset.in_(batch))
            )
        )
        leaves.update(
            int(i)
            for (i,) in conn.execute(
                select(consents.c.leaf_index).where(consents.c.asset.in_(batch))
            )
        )
        leaves.update(latest_leaves(conn, policies.c.asset, batch))
        leaves.update(latest_leaves(conn, valuations.c.model, batch))
    return SharingFacts.from_entries(read_entries(conn, leaves), revenue)


def allocation_leaf(conn: Connection, revenue: RevenueId) -> int | None:
    return conn.execute(
        select(allocations.c.leaf_index).where(allocations.c.revenue_id == str(revenue))
    ).scalar_one_or_none()


def party_allocations(
    conn: Connection, party: PartyId, first_month: int, last_month: int
) -> list[int]:
    """Leaf indexes of the allocations paying `party` for revenue booked within the months."""
    return [
        int(i)
        for (i,) in conn.execute(
            select(allocation_amounts.c.allocation)
            .where(
                allocation_amounts.c.party_id == str(party),
                allocation_amounts.c.first_month >= first_month,
                allocation_amounts.c.last_month <= last_month,
            )
            .order_by(allocation_amounts.c.allocation)
        )
    ]


def owed_balances(conn: Connection, currency: str, up_to_month: int) -> dict[str, int]:
    """Per party: allocated for revenue booked up to `up_to_month`, less everything paid."""
    owed: dict[str, int] = {}
    for party, total in conn.execute(
        select(allocation_amounts.c.party_id, func.sum(allocation_amounts.c.amount_minor))
        .where(
            allocation_amounts.c.currency == currency,
            allocation_amounts.c.last_month <= up_to_month,
        )
        .group_by(allocation_amounts.c.party_id)
    ):
        owed[str(party)] = int(total)
    for party, paid in conn.execute(
        select(payout_amounts.c.party_id, func.sum(payout_amounts.c.paid_minor))
        .where(payout_amounts.c.currency == currency)
        .group_by(payout_amounts.c.party_id)
    ):
        owed[str(party)] = owed.get(str(party), 0) - int(paid)
    return {party: amount for party, amount in owed.items() if amount > 0}


def largest_minimum(conn: Connection) -> int:
    """The largest minimum payout among the policies in force (the latest of each asset)."""
    minimum = 0
    for _, entry in read_entries(conn, latest_leaves(conn, policies.c.asset)):
        body = entry.body()
        assert isinstance(body, PolicySet)
        minimum = max(minimum, body.minimum_payout)
    return minimum
