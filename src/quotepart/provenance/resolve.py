"""Find the party or asset a caller means: by id, by a printed prefix, or by unique name.

Everything that takes a party or an asset from a person (the CLI, the Python API with a
string) goes through `resolve_party` / `resolve_asset`, so a name, a prefix and an id
mean the same everywhere, and an unknown or ambiguous one is refused in the same words.
"""

from __future__ import annotations

from sqlalchemy import Connection

from quotepart.errors import NotFoundError
from quotepart.ids import Digest
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.store.queries import provenance as queries
from quotepart.store.queries.names import SHOWN, PartyRef, one_match, resolve_party

AssetOrName = AssetRef | str
"""An asset as callers may name it: a digest (or record), or its digest, a prefix or its name."""

_ASSET_HINT = "list assets with `quotepart asset list`"


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
    matches = queries.assets_matching(conn, text, limit=SHOWN + 1)
    named = [m for m in matches if m.name == text.strip()]
    listed = [f"{m.asset}  {m.name} ({m.asset_kind})" for m in matches]
    chosen = one_match(named or matches, text, "asset", listed)
    return None if chosen is None else chosen.asset


__all__ = ["AssetOrName", "PartyRef", "find_asset", "resolve_asset", "resolve_party"]
