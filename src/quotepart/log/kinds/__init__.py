"""Every entry kind this build can read: the wire format an auditor checks, in one place.

A kind changes only by adding a version and an upcaster from the previous one, so
entries written years ago still decode (STYLE.md rule 8).
"""

from __future__ import annotations

from quotepart.errors import UnknownKindError
from quotepart.log.kinds._base import EntryBody, RawBody, Upcaster, format_fraction
from quotepart.log.kinds.allocation import (
    PAYMENT_RAILS,
    AllocationRecordedV1,
    PayoutRecordedV1,
)
from quotepart.log.kinds.asset import (
    ASSET_KINDS,
    DIGEST_SCHEMES,
    FIELD_TYPES,
    METADATA_FIELDS,
    AssetRegisteredV2,
    upcast_asset_v1,
)
from quotepart.log.kinds.consent import CONSENT_ACTIONS, ConsentRecordedV1
from quotepart.log.kinds.contribution import CONTRIBUTION_ROLES, ContributionRecordedV1
from quotepart.log.kinds.party import (
    AGENT_TYPES,
    PARTY_ROLES,
    PartyRegisteredV2,
    upcast_party_v1,
)
from quotepart.log.kinds.policy import (
    MISSING_VALUATION,
    NEGATIVE_VALUES,
    UPSTREAM_MODES,
    WEIGHTINGS,
    PolicySetV1,
)
from quotepart.log.kinds.report import ReportPublishedV1
from quotepart.log.kinds.revenue import RevenueRecordedV1
from quotepart.log.kinds.run import RUN_STATUSES, RunRecordedV1, describe_value
from quotepart.log.kinds.usage import UsageRecordedV1
from quotepart.log.kinds.valuation import ValuationRecordedV1

CURRENT: dict[str, type[EntryBody]] = {
    cls.KIND: cls
    for cls in (
        PartyRegisteredV2,
        AssetRegisteredV2,
        ContributionRecordedV1,
        RunRecordedV1,
        RevenueRecordedV1,
        PolicySetV1,
        ValuationRecordedV1,
        ConsentRecordedV1,
        AllocationRecordedV1,
        PayoutRecordedV1,
        UsageRecordedV1,
        ReportPublishedV1,
    )
}
"""The newest body class of each kind."""

UPCASTERS: dict[tuple[str, int], Upcaster] = {
    (PartyRegisteredV2.KIND, 1): upcast_party_v1,
    (AssetRegisteredV2.KIND, 1): upcast_asset_v1,
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
    "AllocationRecordedV1",
    "AssetRegisteredV2",
    "ConsentRecordedV1",
    "ContributionRecordedV1",
    "EntryBody",
    "PartyRegisteredV2",
    "PayoutRecordedV1",
    "PolicySetV1",
    "RawBody",
    "ReportPublishedV1",
    "RevenueRecordedV1",
    "RunRecordedV1",
    "UsageRecordedV1",
    "ValuationRecordedV1",
    "decode_body",
    "describe_value",
    "format_fraction",
]
