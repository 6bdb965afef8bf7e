"""Find the party or asset a caller means: by id, by a printed prefix, or by unique name.

Everything that takes a party or an asset from a person (the CLI, the Python API with a
string) goes through `resolve_party` / `resolve_asset`, so a name, a prefix and an id
mean the same everywhere, and an unknown or ambiguous one is refused in the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Connection

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.store.queries import provenance as queries

PartyRef = PartyId | str
"""A party as callers may name it: its id, or a string (its id, an id prefix, its name)."""

AssetOrName = AssetRef | str
"""An asset as callers may name it: a digest (or record), or its digest, a prefix or its name."""

_PARTY_HINT = "list parties with `quotepart party list`"
_ASSET_HINT = "list assets with `quotepart asset list`"
T = TypeVar("T")
_SHOWN = 10  # candidates listed when a name or prefix is ambiguous


def resolve_party(conn: Connection, party: PartyRef) -> PartyId:
    """The registered party `party` names.

    Raises:
        TypeError: `party` is neither a PartyId nor a string.
        NotFoundError: no registered party has that id, id prefix or name.
        InputError: more than one party has that name or id prefix (the candidates listed).
    """
    if isinstance(party, str) and len(party) == len(PartyId.PREFIX) + 26:
        party = PartyId.parse(party) if party.startswith(PartyId.PREFIX) else party
    if isinstance(party, PartyId):
        if queries.party_leaf(conn, party) is None:
            raise NotFoundError(f"unknown party {party}", hint=_PARTY_HINT)
        return party
    if not isinstance(party, str):
        raise TypeError(
            f"a party is a PartyId or a name string, not {type(party).__name__}: {party!r}"
        )
    matches = queries.parties_matching(conn, party, limit=_SHOWN + 1)
    named = [m for m in matches if m.name == party.strip()]
    chosen = _one(named or matches, party, "party", [f"{m.party}  {m.name}" for m in matches])
    if chosen is None:
        raise NotFoundError(f"no party {party!r} in this log", hint=_PARTY_HINT)
    return chosen.party


def resolve_asset(conn: Connection, asset: AssetOrName) -> Digest:
    """The registered asset `asset` names.

    Raises:
        InputError: `asset` is neither a digest, an asset record nor a string, or more than
            one asset has that name or digest prefix (the candidates listed).
        NotFoundError: no registered asset has that digest, digest prefix or name.
    """
    if isinstance(asset, str) and asset.startswith("sha256:") and len(asset) == 71:
        asset = Digest.parse(asset)
    if not isinstance(asset, str):
        digest = asset_digest(asset)
        if queries.asset_record(conn, digest) is None:
            raise NotFoundError(f"unknown asset {digest}", hint=_ASSET_HINT)
        return digest
    found = find_asset(conn, asset)
    if found is None:
        short = asset.startswith("sha256:") and len(asset) < 7 + queries.MIN_DIGEST_PREFIX_HEX
        raise NotFoundError(
            f"no asset {asset!r} in this log",
            hint=_ASSET_HINT
            + (
                f"; a digest prefix has at least {queries.MIN_DIGEST_PREFIX_HEX} hex digits"
                if short
                else ""
            ),
        )
    return found


def find_asset(conn: Connection, text: str) -> Digest | None:
    """The asset whose digest, digest prefix or name is `text`; None if there is none.

    An exact name wins over a digest prefix that happens to be spelt the same.

    Raises:
        InputError: more than one asset has that name or prefix (the candidates listed).
    """
    matches = queries.assets_matching(conn, text, limit=_SHOWN + 1)
    named = [m for m in matches if m.name == text.strip()]
    listed = [f"{m.asset}  {m.name} ({m.asset_kind})" for m in matches]
    chosen = _one(named or matches, text, "asset", listed)
    return None if chosen is None else chosen.asset


def _one(matches: Sequence[T], text: str, what: str, listed: Sequence[str]) -> T | None:
    """The single match, None for none; InputError listing the candidates for several."""
    if len(matches) <= 1:
        return matches[0] if matches else None
    more = " and more" if len(listed) > _SHOWN else ""
    raise InputError(
        f"{text!r} names more than one {what}: " + "; ".join(listed[:_SHOWN]) + more,
        hint=f"give the full id, or a longer prefix, of the {what} you mean",
    )


__all__ = ["AssetOrName", "PartyRef", "find_asset", "resolve_asset", "resolve_party"]
