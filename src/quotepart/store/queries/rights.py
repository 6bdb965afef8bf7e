"""Questions about rights: delegations, claims, proposed contributions, billed months."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import Connection, select

from quotepart.ids import Digest, PartyId, parse_timestamp
from quotepart.store.schema import claims, contribution_proposals, revenues, rights


@dataclass(frozen=True, slots=True)
class Delegation:
    """One `right.granted`, and the revocation that ended it, if any."""

    grantor: PartyId
    grantee: PartyId
    right: str
    asset: Digest
    since: datetime
    until: datetime | None
    leaf_index: int
    revoked_by: int | None

    @property
    def active(self) -> bool:
        return self.revoked_by is None


@dataclass(frozen=True, slots=True)
class Claim:
    """A `claim.filed`: `claimant` disputes who registered `asset`."""

    asset: Digest
    claimant: PartyId
    reason: str
    leaf_index: int


@dataclass(frozen=True, slots=True)
class Proposal:
    """A contribution its contributor signed, waiting for (or given) the registrant's acceptance."""

    party: PartyId
    asset: Digest
    role: str
    share: Fraction
    leaf_index: int
    leaf_hash: str
    accepted_by: int | None


def delegations(
    conn: Connection, asset: Digest | None = None, *, grantee: PartyId | None = None
) -> list[Delegation]:
    """Every delegation (of `asset`, to `grantee`, when given), oldest first."""
    query = select(rights).order_by(rights.c.leaf_index)
    if asset is not None:
        query = query.where(rights.c.asset == str(asset))
    if grantee is not None:
        query = query.where(rights.c.grantee == str(grantee))
    return [
        Delegation(
            PartyId.parse(row.grantor),
            PartyId.parse(row.grantee),
            row.right_name,
            Digest.parse(row.asset),
            parse_timestamp(row.since),
            None if row.until is None else parse_timestamp(row.until),
            int(row.leaf_index),
            None if row.revoked_by is None else int(row.revoked_by),
        )
        for row in conn.execute(query)
    ]


def claims_on(conn: Connection, assets: list[Digest] | None = None) -> list[Claim]:
    """Every claim (on these assets, when given), oldest first."""
    query = select(claims).order_by(claims.c.leaf_index)
    if assets is not None:
        query = query.where(claims.c.asset.in_([str(a) for a in assets]))
    return [
        Claim(Digest.parse(row.asset), PartyId.parse(row.claimant), row.reason, int(row.leaf_index))
        for row in conn.execute(query)
    ]


def proposals(conn: Connection, asset: Digest | None = None) -> list[Proposal]:
    """Every contribution proposed by its contributor (on `asset`, when given)."""
    query = select(contribution_proposals).order_by(contribution_proposals.c.leaf_index)
    if asset is not None:
        query = query.where(contribution_proposals.c.asset == str(asset))
    return [
        Proposal(
            PartyId.parse(row.party_id),
            Digest.parse(row.asset),
            row.role,
            Fraction(row.share),
            int(row.leaf_index),
            row.leaf_hash,
            None if row.accepted_by is None else int(row.accepted_by),
        )
        for row in conn.execute(query)
    ]


def billed_months(conn: Connection, service: Digest) -> set[int]:
    """The months (`year * 12 + month - 1`) a revenue of `service` covers: closed to usage."""
    months: set[int] = set()
    for first, last in conn.execute(
        select(revenues.c.first_month, revenues.c.last_month).where(
            revenues.c.asset == str(service)
        )
    ):
        months.update(range(int(first), int(last) + 1))
    return months


__all__ = [
    "Claim",
    "Delegation",
    "Proposal",
    "billed_months",
    "claims_on",
    "delegations",
    "proposals",
]
