"""Every entry kind this build can read: the wire format an auditor checks, in one place.

A kind changes only by adding a version and an upcaster from the previous one, so
entries written years ago still decode (STYLE.md rule 8).
"""

from __future__ import annotations

from quotepart.errors import UnknownKindError
from quotepart.log.kinds._base import EntryBody, RawBody, Upcaster, format_fraction
from quotepart.log.kinds.allocation import (
    PAYMENT_RAILS,
    AllocationRecorded,
    PayoutRecorded,
)
from quotepart.log.kinds.asset import (
    ASSET_KINDS,
    DIGEST_SCHEMES,
    FIELD_TYPES,
    METADATA_FIELDS,
    AssetRegistered,
    upcast_asset_v1,
)
from quotepart.log.kinds.consent import CONSENT_ACTIONS, ConsentRecorded
from quotepart.log.kinds.contribution import CONTRIBUTION_ROLES, ContributionRecorded
from quotepart.log.kinds.party import (
    AGENT_TYPES,
    PARTY_ROLES,
    PartyRegistered,
    upcast_party_v1,
)
from quotepart.log.kinds.policy import (
    MISSING_VALUATION,
    NEGATIVE_VALUES,
    UPSTREAM_MODES,
    WEIGHTINGS,
    PolicySet,
)
from quotepart.log.kinds.report import ReportPublished
from quotepart.log.kinds.revenue import RevenueRecorded
from quotepart.log.kinds.run import RUN_STATUSES, RunRecorded, describe_value
from quotepart.log.kinds.usage import UsageRecorded
from quotepart.log.kinds.valuation import ValuationRecorded

CURRENT: dict[str, type[EntryBody]] = {
    cls.KIND: cls
    for cls in (
        PartyRegistered,
        AssetRegistered,
        ContributionRecorded,
        RunRecorded,
        RevenueRecorded,
        PolicySet,
        ValuationRecorded,
        ConsentRecorded,
        AllocationRecorded,
        PayoutRecorded,
        UsageRecorded,
        ReportPublished,
    )
}
"""The newest body class of each kind."""

UPCASTERS: dict[tuple[str, int], Upcaster] = {
    (PartyRegistered.KIND, 1): upcast_party_v1,
    (AssetRegistered.KIND, 1): upcast_asset_v1,
}
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
    "AGENT_TYPES",
    "ASSET_KINDS",
    "CONSENT_ACTIONS",
    "CONTRIBUTION_ROLES",
    "CURRENT",
    "DIGEST_SCHEMES",
    "FIELD_TYPES",
    "METADATA_FIELDS",
    "MISSING_VALUATION",
    "NEGATIVE_VALUES",
    "PARTY_ROLES",
    "PAYMENT_RAILS",
    "RUN_STATUSES",
    "UPCASTERS",
    "UPSTREAM_MODES",
    "WEIGHTINGS",
    "AllocationRecorded",
    "AssetRegistered",
    "ConsentRecorded",
    "ContributionRecorded",
    "EntryBody",
    "PartyRegistered",
    "PayoutRecorded",
    "PolicySet",
    "RawBody",
    "ReportPublished",
    "RevenueRecorded",
    "RunRecorded",
    "UsageRecorded",
    "ValuationRecorded",
    "decode_body",
    "describe_value",
    "format_fraction",
]
