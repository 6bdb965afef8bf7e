"""Every entry kind this build can read: the wire format an auditor checks, in one place.

Each kind is declared once, in its own module, with `@entry_kind` (its body class, its
current version, its upcasters, whether it is log-only); CURRENT and UPCASTERS are built
from those declarations. A kind changes only by adding a version and an upcaster from
the previous one, so entries written years ago still decode.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from quotepart.log.kinds._base import (
    DECLARED,
    EntryBody,
    KindDeclaration,
    RawBody,
    Upcaster,
    decode_body,
    entry_kind,
    format_fraction,
)
from quotepart.log.kinds.allocation import (
    PAYMENT_RAILS,
    AllocationRecorded,
    Held,
    PayoutRecorded,
)
from quotepart.log.kinds.asset import (
    ASSET_KINDS,
    DIGEST_SCHEMES,
    FIELD_TYPES,
    METADATA_FIELDS,
    AssetRegistered,
)
from quotepart.log.kinds.claim import ClaimFiled
from quotepart.log.kinds.consent import CONSENT_ACTIONS, ConsentRecorded
from quotepart.log.kinds.contribution import (
    CONTRIBUTION_ROLES,
    ContributionAccepted,
    ContributionRecorded,
)
from quotepart.log.kinds.metering import (
    AGGREGATIONS,
    BillLine,
    MeterDefined,
    PrivacyBudget,
    PrivacyReleased,
    TariffSet,
    UsageBatch,
    UsageBilled,
)
from quotepart.log.kinds.overlap import OVERLAP_MATCHES, OverlapDetected
from quotepart.log.kinds.party import (
    AGENT_TYPES,
    PARTY_ROLES,
    PartyRegistered,
)
from quotepart.log.kinds.party_payout import PartyPayoutChanged
from quotepart.log.kinds.policy import (
    MISSING_VALUATION,
    NEGATIVE_VALUES,
    POLICY_ROLES,
    UPSTREAM_MODES,
    WEIGHTINGS,
    PolicySet,
)
from quotepart.log.kinds.report import ReportPublished
from quotepart.log.kinds.revenue import RevenueRecorded
from quotepart.log.kinds.rights import RIGHTS, RightGranted, RightRevoked
from quotepart.log.kinds.run import RUN_STATUSES, USE_ROLES, RunRecorded, describe_value
from quotepart.log.kinds.usage import UsageRecorded
from quotepart.log.kinds.valuation import ValuationRecorded


def _import_every_kind() -> None:
    """Import each module of this package, so every kind declares itself (`@entry_kind`).

    A new kind is one module here; nothing else in `quotepart.log` needs an edit.
    """
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_every_kind()

CURRENT: Mapping[str, type[EntryBody]] = MappingProxyType(
    {kind: declared.body for kind, declared in DECLARED.items()}
)
"""The newest body class of each kind (built from the declarations)."""

UPCASTERS: Mapping[tuple[str, int], Upcaster] = MappingProxyType(
    {
        (kind, version): upcaster
        for kind, declared in DECLARED.items()
        for version, upcaster in declared.upcasters.items()
    }
)
"""(kind, version v) -> function turning a v body into a v+1 body (built from the declarations)."""


__all__ = [
    "AGENT_TYPES",
    "AGGREGATIONS",
    "ASSET_KINDS",
    "CONSENT_ACTIONS",
    "CONTRIBUTION_ROLES",
    "CURRENT",
    "DECLARED",
    "DIGEST_SCHEMES",
    "FIELD_TYPES",
    "METADATA_FIELDS",
    "MISSING_VALUATION",
    "NEGATIVE_VALUES",
    "OVERLAP_MATCHES",
    "PARTY_ROLES",
    "PAYMENT_RAILS",
    "POLICY_ROLES",
    "RIGHTS",
    "RUN_STATUSES",
    "UPCASTERS",
    "UPSTREAM_MODES",
    "USE_ROLES",
    "WEIGHTINGS",
    "AllocationRecorded",
    "AssetRegistered",
    "BillLine",
    "ClaimFiled",
    "ConsentRecorded",
    "ContributionAccepted",
    "ContributionRecorded",
    "EntryBody",
    "Held",
    "KindDeclaration",
    "MeterDefined",
    "OverlapDetected",
    "PartyPayoutChanged",
    "PartyRegistered",
    "PayoutRecorded",
    "PolicySet",
    "PrivacyBudget",
    "PrivacyReleased",
    "RawBody",
    "ReportPublished",
    "RevenueRecorded",
    "RightGranted",
    "RightRevoked",
    "RunRecorded",
    "TariffSet",
    "UsageBatch",
    "UsageBilled",
    "UsageRecorded",
    "ValuationRecorded",
    "decode_body",
    "describe_value",
    "entry_kind",
    "format_fraction",
]
