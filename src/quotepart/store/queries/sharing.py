"""Questions about money: revenues, allocations and payouts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from quotepart.errors import NotFoundError
from quotepart.ids import Digest, PartyId, Period, RevenueId
from quotepart.store.projections import digest_prefix
from quotepart.store.queries.in_force import latest_policy_leaves, latest_valuation_leaves
from quotepart.store.schema import (
    allocation_amounts,
    allocations,
    assets,
    consents,
    contributions,
    lineage_edges,
    overlaps,
    payout_amounts,
    payouts,
    revenues,
    runs,
)


def revenue_billed(conn: Connection, asset: Digest, period: Period) -> str | None:
    """The id of a revenue already recorded for `asset` in exactly `period`, or None."""
    row = conn.execute(
        select(revenues.c.revenue_id).where(
            revenues.c.asset == str(asset), revenues.c.period == str(period)
        )
    ).first()
    return None if row is None else str(row[0])


def revenue_leaves(conn: Connection) -> list[int]:
    """Leaf indexes of every recorded revenue, in log order."""
    rows = conn.execute(select(revenues.c.leaf_index).order_by(revenues.c.leaf_index))
    return [int(leaf) for (leaf,) in rows]


def payout_leaf(conn: Connection, period: Period, currency: str, rail: str) -> int | None:
    """The leaf index of the latest payout exported for (period, currency, rail), or None."""
    row = conn.execute(
        select(payouts.c.leaf_index)
        .where(
            payouts.c.period == str(period),
            payouts.c.currency == currency,
            payouts.c.rail == rail,
        )
        .order_by(payouts.c.leaf_index.desc())
        .limit(1)
    ).first()
    return None if row is None else int(row[0])


def unshared_revenues(
    conn: Connection, currency: str, up_to_month: int, *, payer: PartyId | None = None
) -> list[str]:
    """Ids of revenues in `currency` booked up to `up_to_month` that have no allocation
    yet (of assets `payer` registered, when given: the revenue it shares and pays)."""
    query = select(revenues.c.revenue_id)
    if payer is not None:
        query = query.join(assets, assets.c.digest == revenues.c.asset).where(
            assets.c.registered_by == str(payer)
        )
    rows = conn.execute(
        query.where(
            revenues.c.currency == currency,
            revenues.c.last_month <= up_to_month,
            revenues.c.revenue_id.not_in(select(allocations.c.revenue_id)),
        ).order_by(revenues.c.leaf_index)
    )
    return [str(revenue) for (revenue,) in rows]


def revenue_leaf(conn: Connection, revenue: RevenueId) -> tuple[int, Digest]:
    row = conn.execute(
        select(revenues.c.leaf_index, revenues.c.asset).where(revenues.c.revenue_id == str(revenue))
    ).first()
    if row is None:
        raise NotFoundError(
            f"no revenue {revenue} in this log", hint="list revenues with `quotepart revenue list`"
        )
    return int(row[0]), Digest.parse(row[1])


def fact_leaves(conn: Connection, revenue: RevenueId) -> set[int]:
    """Leaf indexes of every fact the allocation of `revenue` derives from.

    A walk upstream from the revenue's asset through the lineage projections: every
    asset on the way, the succeeded runs that made them (with what they learned from and
    what they evaluated with: a policy may pay evaluation data), their contributions and
    consents, the policy and valuation in force on each, and the overlaps found between
    each and an earlier asset (whose walk then follows: a policy may credit it with the
    copied records' weight). Amounts are never read
    from projections: the caller decodes them from these signed entries.
    """
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
                    lineage_edges.c.relation.in_(("used", "used:evaluation")),
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
        for contribution, accepted_by in conn.execute(
            select(contributions.c.leaf_index, contributions.c.accepted_by).where(
                contributions.c.asset.in_(batch)
            )
        ):  # a proposed share comes with the registrant's acceptance that made it count
            leaves.add(int(contribution))
            if accepted_by is not None:
                leaves.add(int(accepted_by))
        leaves.update(
            int(i)
            for (i,) in conn.execute(
                select(consents.c.leaf_index).where(consents.c.asset.in_(batch))
            )
        )
        leaves.update(latest_policy_leaves(conn, batch))
        leaves.update(latest_valuation_leaves(conn, batch))
        for leaf, earlier in conn.execute(
            select(overlaps.c.leaf_index, overlaps.c.earlier).where(overlaps.c.asset.in_(batch))
        ):
            leaves.add(int(leaf))
            frontier.append(str(earlier))
    return leaves


def allocation_leaf(conn: Connection, revenue: RevenueId) -> int | None:
    return conn.execute(
        select(allocations.c.leaf_index).where(allocations.c.revenue_id == str(revenue))
    ).scalar_one_or_none()


def allocations_within(conn: Connection, first_month: int, last_month: int) -> list[int]:
    """Leaf indexes of every allocation of revenue booked within the months, in log order."""
    return [
        int(i)
        for (i,) in conn.execute(
            select(allocations.c.leaf_index)
            .join(revenues, revenues.c.revenue_id == allocations.c.revenue_id)
            .where(revenues.c.first_month >= first_month, revenues.c.last_month <= last_month)
            .order_by(allocations.c.leaf_index)
        )
    ]


def registered_leaves(conn: Connection, party: PartyId) -> list[int]:
    """Leaf indexes of the `asset.registered` entries `party` signed."""
    return [
        int(i)
        for (i,) in conn.execute(
            select(assets.c.leaf_index).where(assets.c.registered_by == str(party))
        )
    ]


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


def owed_balances(
    conn: Connection,
    currency: str,
    up_to_month: int | None = None,
    *,
    payer: PartyId,
    parties: Sequence[str] | None = None,
) -> dict[str, int]:
    """Per party: what `payer` allocated (for revenue booked up to `up_to_month`, when
    given), less everything `payer` paid it; only `parties`, when given. Parties owed
    nothing are left out."""
    allocated = [
        allocation_amounts.c.currency == currency,
        allocation_amounts.c.payer == str(payer),
    ]
    if up_to_month is not None:
        allocated.append(allocation_amounts.c.last_month <= up_to_month)
    paid = [payout_amounts.c.currency == currency, payout_amounts.c.payer == str(payer)]
    chunks = (
        [None]
        if parties is None
        else [list(parties[start : start + 500]) for start in range(0, len(parties), 500)]
    )
    owed: dict[str, int] = {}
    for chunk in chunks:
        only_allocated = [] if chunk is None else [allocation_amounts.c.party_id.in_(chunk)]
        only_paid = [] if chunk is None else [payout_amounts.c.party_id.in_(chunk)]
        for party, total in conn.execute(
            select(allocation_amounts.c.party_id, func.sum(allocation_amounts.c.amount_minor))
            .where(*allocated, *only_allocated)
            .group_by(allocation_amounts.c.party_id)
        ):
            owed[str(party)] = int(total)
        for party, total in conn.execute(
            select(payout_amounts.c.party_id, func.sum(payout_amounts.c.paid_minor))
            .where(*paid, *only_paid)
            .group_by(payout_amounts.c.party_id)
        ):
            owed[str(party)] = owed.get(str(party), 0) - int(total)
    return {party: amount for party, amount in owed.items() if amount > 0}


__all__ = [
    "allocation_leaf",
    "allocations_within",
    "fact_leaves",
    "owed_balances",
    "party_allocations",
    "payout_leaf",
    "registered_leaves",
    "revenue_billed",
    "revenue_leaf",
    "revenue_leaves",
    "unshared_revenues",
]
