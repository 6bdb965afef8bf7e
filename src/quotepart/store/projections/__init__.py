"""Projections: each is `apply(conn, entry, leaf_index) -> None` and nothing else.

They run inside the append transaction, after the entry is known to be signed by a
registered author, so a projection only enforces the *meaning* of facts (an asset is
registered once, a contribution names a known party and asset). Replaying the log
through them is exactly `rebuild`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, select

from quotepart.errors import InputError, NotFoundError
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    AssetRegisteredV1,
    ContributionRecordedV1,
    PartyRegisteredV1,
    format_fraction,
)
from quotepart.store.schema import assets, contributions, parties

Projection = Callable[[Connection, SignedEntry, int], None]


def project_party(conn: Connection, entry: SignedEntry, leaf_index: int) -> None:
    body = entry.body()
    assert isinstance(body, PartyRegisteredV1)
    if conn.execute(
        select(parties.c.party_id).where(parties.c.party_id == str(body.party))
    ).first():
        raise InputError(f"{body.party} is already registered", hint="a party is registered once")
    conn.execute(
        insert(parties).values(
            party_id=str(body.party),
            name=body.name,
            roles=",".join(body.roles),
            public_key=body.public_key.raw,
            leaf_index=leaf_index,
        )
    )


def project_asset(conn: Connection, entry: SignedEntry, leaf_index: int) -> None:
    body = entry.body()
    assert isinstance(body, AssetRegisteredV1)
    if conn.execute(select(assets.c.digest).where(assets.c.digest == str(body.asset))).first():
        raise InputError(
            f"asset {body.asset} is already registered",
            hint="registering the same content again returns the existing asset; look it up instead",
        )
    conn.execute(
        insert(assets).values(
            digest=str(body.asset),
            asset_kind=body.asset_kind,
            name=body.name,
            registered_by=str(entry.author),
            leaf_index=leaf_index,
        )
    )


def project_contribution(conn: Connection, entry: SignedEntry, leaf_index: int) -> None:
    body = entry.body()
    assert isinstance(body, ContributionRecordedV1)
    if not conn.execute(
        select(parties.c.party_id).where(parties.c.party_id == str(body.party))
    ).first():
        raise NotFoundError(
            f"contribution names unknown {body.party}", hint="register the party first"
        )
    if not conn.execute(select(assets.c.digest).where(assets.c.digest == str(body.asset))).first():
        raise NotFoundError(
            f"contribution names unknown asset {body.asset}", hint="register the asset first"
        )
    conn.execute(
        insert(contributions).values(
            leaf_index=leaf_index,
            party_id=str(body.party),
            asset=str(body.asset),
            role=body.role,
            share=format_fraction(body.share),
        )
    )


PROJECTIONS: dict[str, tuple[Projection, ...]] = {
    PartyRegisteredV1.KIND: (project_party,),
    AssetRegisteredV1.KIND: (project_asset,),
    ContributionRecordedV1.KIND: (project_contribution,),
}


def apply_projections(conn: Connection, entry: SignedEntry, leaf_index: int) -> None:
    for project in PROJECTIONS.get(entry.kind, ()):
        project(conn, entry, leaf_index)
