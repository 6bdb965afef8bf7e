"""Every entry kind this build can read: the wire format an auditor checks, in one place.

A kind changes only by adding a version and an upcaster from the previous one, so
entries written years ago still decode (STYLE.md rule 8).
"""

from __future__ import annotations

from quotepart.errors import UnknownKindError
from quotepart.log.kinds._base import EntryBody, RawBody, Upcaster, format_fraction
from quotepart.log.kinds.asset import ASSET_KINDS, AssetRegisteredV1
from quotepart.log.kinds.contribution import CONTRIBUTION_ROLES, ContributionRecordedV1
from quotepart.log.kinds.party import PARTY_ROLES, PartyRegisteredV1

CURRENT: dict[str, type[EntryBody]] = {
    cls.KIND: cls for cls in (PartyRegisteredV1, AssetRegisteredV1, ContributionRecordedV1)
}
"""The newest body class of each kind."""

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(kind, version v) -> function turning a v body into a v+1 body."""


def decode_body(kind: str, version: int, body: RawBody) -> EntryBody:
    """The current body class for (kind, version), upcasting old versions first.

    Raises:
        UnknownKindError: the kind, or this version of it, is not known here.
        MalformedEntryError: the body does not fit the kind's format.
    """
    cls = CURRENT.get(kind)
    if cls is None:
        raise UnknownKindError(
            f"unknown entry kind {kind!r}",
            hint=f"known kinds: {', '.join(sorted(CURRENT))}; upgrade quotepart if the entry is newer",
        )
    if not 1 <= version <= cls.VERSION:
        raise UnknownKindError(
            f"unknown version {version} of entry kind {kind!r} (this build reads 1 to {cls.VERSION})",
            hint="upgrade quotepart to read newer entries",
        )
    while version < cls.VERSION:
        body = UPCASTERS[(kind, version)](body)
        version += 1
    return cls.from_body(body)


__all__ = [
    "ASSET_KINDS",
    "CONTRIBUTION_ROLES",
    "CURRENT",
    "PARTY_ROLES",
    "UPCASTERS",
    "AssetRegisteredV1",
    "ContributionRecordedV1",
    "EntryBody",
    "PartyRegisteredV1",
    "RawBody",
    "decode_body",
    "format_fraction",
]
