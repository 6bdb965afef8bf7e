"""Projections of the money entries: revenues, policies, valuations, consents,
allocations and payouts.

They enforce what a fact must mean before it is accepted: revenue and policies name a
model or service that exists, and a revenue is allocated once and to the minor unit.
Who may sign each of them, and that a payout pays no more than its payer allocated and
has not yet paid (so exporting a period twice cannot pay anyone twice), are rules of
`quotepart.store.rights`.
"""

from __future__ import annotations

from sqlalchemy import select, update

from quotepart.errors import InputError, MoneyError, NotFoundError
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    AllocationRecorded,
    ConsentRecorded,
    PayoutRecorded,
    PolicySet,
    RevenueRecorded,
    RightGranted,
    RightRevoked,
    UsageRecorded,
    ValuationRecorded,
)
from quotepart.store.projections._writer import ProjectionWriter, projects
from quotepart.store.rights import forget_grants
from quotepart.store.schema import (
    allocation_amounts,
    allocations,
    assets,
    consents,
    parties,
    payout_amounts,
    payouts,
    policies,
    revenues,
    rights,
    usage,
    valuations,
)

EARNING_KINDS = frozenset({"model", "service"})


def _asset_kind(writer: ProjectionWriter, digest: str) -> str | None:
    """The kind of a registered asset; kinds never change, so found ones are remembered
    for the batch (a batch of usage entries names the same service thousands of times)."""
    kind = writer.asset_kinds.get(digest)
    if kind is None:
        leaf = writer.leaf_of(assets, digest)  # the prefix index, or this batch's rows
        if leaf is None:
            return None
        writer.flush()
        kind = writer.conn.execute(
            select(assets.c.asset_kind).where(assets.c.leaf_index == leaf)
        ).scalar_one()
        writer.asset_kinds[digest] = kind
    return kind


def _earning_asset(writer: ProjectionWriter, digest: str, what: str) -> None:
    kind = _asset_kind(writer, digest)
    if kind is None:
        raise NotFoundError(f"{what} names unknown asset {digest}", hint="register it first")
    if kind not in EARNING_KINDS:
        raise InputError(
            f"{what} names a {kind}, {digest}; only a model or a service earns and shares revenue",
            hint="record revenue and policies against the model or service that earned it",
        )


def _party(writer: ProjectionWriter, party: str, what: str) -> None:
    if not writer.exists(parties, party):
        raise NotFoundError(f"{what} names unknown {party}", hint="register the party first")


@projects(RevenueRecorded)
def project_revenue(
    writer: ProjectionWriter, body: RevenueRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    _earning_asset(writer, str(body.asset), f"{body.revenue}")
    known = writer.conn.execute(
        select(revenues.c.leaf_index).where(revenues.c.revenue_id == str(body.revenue))
    ).first()
    if known is not None:
        raise InputError(f"{body.revenue} is already recorded", hint="a revenue is recorded once")
    writer.add(
        revenues,
        {
            "revenue_id": str(body.revenue),
            "asset": str(body.asset),
            "period": str(body.period),
            "first_month": body.period.first_month,
            "last_month": body.period.last_month,
            "amount_minor": body.amount_minor,
            "currency": body.currency,
            "leaf_index": leaf_index,
        },
    )


@projects(PolicySet)
def project_policy(
    writer: ProjectionWriter, body: PolicySet, entry: SignedEntry, leaf_index: int
) -> None:
    _earning_asset(writer, str(body.asset), "a sharing policy")
    _party(writer, str(body.operator), "a sharing policy")
    for asset in body.declared:
        if _asset_kind(writer, str(asset)) is None:
            raise NotFoundError(
                f"the policy declares a weight for unknown asset {asset}",
                hint="declare weights for the model's registered inputs",
            )
    writer.add(policies, {"leaf_index": leaf_index, "asset": str(body.asset)})


@projects(ValuationRecorded)
def project_valuation(
    writer: ProjectionWriter, body: ValuationRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    if _asset_kind(writer, str(body.model)) is None:
        raise NotFoundError(
            f"the valuation names unknown model {body.model}", hint="register it first"
        )
    for player in body.values:
        if _asset_kind(writer, str(player)) is None:
            raise NotFoundError(
                f"the valuation of {body.model} values unknown asset {player}",
                hint="players are registered assets: register each input first",
            )
    writer.add(
        valuations, {"leaf_index": leaf_index, "model": str(body.model), "method": body.method}
    )


@projects(ConsentRecorded)
def project_consent(
    writer: ProjectionWriter, body: ConsentRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    _party(writer, str(body.party), "a consent")
    if _asset_kind(writer, str(body.asset)) is None:
        raise NotFoundError(f"a consent names unknown asset {body.asset}", hint="register it first")
    writer.add(
        consents,
        {
            "leaf_index": leaf_index,
            "party_id": str(body.party),
            "asset": str(body.asset),
            "action": body.action,
            "effective": entry.raw_body["effective"],
        },
    )


@projects(AllocationRecorded)
def project_allocation(
    writer: ProjectionWriter, body: AllocationRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    writer.flush()
    revenue = writer.conn.execute(
        select(revenues).where(revenues.c.revenue_id == str(body.revenue))
    ).first()
    if revenue is None:
        raise NotFoundError(
            f"an allocation names unknown {body.revenue}", hint="record the revenue first"
        )
    if (revenue.amount_minor, revenue.currency) != (body.total_minor, body.currency):
        raise MoneyError(
            f"the allocation of {body.revenue} shares {body.total_minor} {body.currency}, "
            f"but the revenue is {revenue.amount_minor} {revenue.currency}",
            hint="an allocation shares exactly its revenue",
        )
    done = writer.conn.execute(
        select(allocations.c.leaf_index).where(allocations.c.revenue_id == str(body.revenue))
    ).first()
    if done is not None:
        raise InputError(
            f"{body.revenue} is already allocated (entry {done[0]})",
            hint="a revenue is shared once; its statement shows the allocation",
        )
    writer.prefetch((parties, str(p)) for p in body.amounts)
    for party in body.amounts:
        _party(writer, str(party), "an allocation")
    writer.add(
        allocations,
        {
            "revenue_id": str(body.revenue),
            "leaf_index": leaf_index,
            "currency": body.currency,
            "total_minor": body.total_minor,
        },
    )
    for party, amount in body.amounts.items():
        writer.add(
            allocation_amounts,
            {
                "allocation": leaf_index,
                "party_id": str(party),
                "payer": str(entry.author),
                "amount_minor": amount,
                "currency": body.currency,
                "first_month": revenue.first_month,
                "last_month": revenue.last_month,
            },
        )


@projects(PayoutRecorded)
def project_payout(
    writer: ProjectionWriter, body: PayoutRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    writer.flush()
    if writer.conn.execute(
        select(payouts.c.leaf_index).where(payouts.c.payout_id == str(body.payout))
    ).first():
        raise InputError(f"{body.payout} is already recorded", hint="a payout is recorded once")
    # the rule (`payout`) checked that its payer owes every amount; a held balance (a
    # payee the export could not pay) is carried too, with its reason
    carried = {**body.carried, **{p: h.amount_minor for p, h in body.held.items()}}
    payer = str(entry.author)
    writer.add(
        payouts,
        {
            "payout_id": str(body.payout),
            "leaf_index": leaf_index,
            "period": str(body.period),
            "currency": body.currency,
            "rail": body.rail,
        },
    )
    for party, amount in body.paid.items():
        writer.add(
            payout_amounts,
            {"payout": leaf_index, "party_id": str(party), "payer": payer,
             "currency": body.currency, "paid_minor": amount, "carried_minor": 0},
        )  # fmt: skip
    for party, amount in carried.items():
        writer.add(
            payout_amounts,
            {"payout": leaf_index, "party_id": str(party), "payer": payer,
             "currency": body.currency, "paid_minor": 0, "carried_minor": amount},
        )  # fmt: skip


@projects(UsageRecorded)
def project_usage(
    writer: ProjectionWriter, body: UsageRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    kind = _asset_kind(writer, str(body.service))
    if kind != "service":
        raise InputError(
            f"usage names {kind or 'unknown asset'} {body.service}, not a registered service",
            hint="register the service first (register_service)",
        )
    writer.add(
        usage,
        {
            "leaf_index": leaf_index,
            "service": str(body.service),
            "consumer": body.consumer,
            "units": body.units,
            "start": entry.raw_body["start"],
            "month": body.month,
        },
    )


@projects(RightGranted)
def project_grant(
    writer: ProjectionWriter, body: RightGranted, entry: SignedEntry, leaf_index: int
) -> None:
    writer.add(
        rights,
        {
            "leaf_index": leaf_index,
            "grantor": str(entry.author),
            "grantee": str(body.grantee),
            "right_name": body.right,
            "asset": str(body.asset),
            "since": entry.raw_body["since"],
            "until": entry.raw_body.get("until"),
            "revoked_by": None,
        },
    )
    forget_grants(writer)


@projects(RightRevoked)
def project_revocation(
    writer: ProjectionWriter, body: RightRevoked, entry: SignedEntry, leaf_index: int
) -> None:
    writer.flush()
    writer.conn.execute(
        update(rights)
        .where(
            rights.c.grantee == str(body.grantee),
            rights.c.asset == str(body.asset),
            rights.c.right_name == body.right,
            rights.c.revoked_by.is_(None),
        )
        .values(revoked_by=leaf_index)
    )
    forget_grants(writer)
