"""The report's document: what report.json holds, as frozen, typed values.

The three files are drawn from one `ReportDocument`: `to_json_bytes()` writes
report.json, and the HTML and PDF renderers read the same fields, so the files cannot
disagree. Each field is named as its JSON key, with a trailing underscore where the key
is a Python keyword (`as_` is "as", `from_` is "from"); amounts are integer minor units
beside their formatted text, and every id comes with the name a person reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal

from quotepart.ids import Digest, PartyId, Period

FORMAT = "quotepart-report/1"


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    amount: str  # decimal text in major units, without the currency: "1234.50"


@dataclass(frozen=True, slots=True)
class ReportedAsset:
    digest: str
    name: str
    kind: str  # service | model


@dataclass(frozen=True, slots=True)
class Earner:
    """An asset whose revenue the report covers: the reported asset, or a model's service."""

    digest: str
    name: str


@dataclass(frozen=True, slots=True)
class AllocationRef:
    leaf_index: int
    entry: str  # leaf hash, hex


@dataclass(frozen=True, slots=True)
class RevenueLine:
    revenue: str
    asset: str
    period: str
    amount_minor: int
    amount: str
    currency: str
    source: str
    entry: str  # the revenue.recorded entry's leaf hash
    allocation: AllocationRef
    notes: tuple[str, ...]  # the allocation's notes, asset digests as recorded


@dataclass(frozen=True, slots=True)
class Totals:
    earned: Money
    to_contributors: Money
    kept_by_operators: Money


@dataclass(frozen=True, slots=True)
class PaidAt:
    asset: str
    name: str
    amount_minor: int
    amount: str


@dataclass(frozen=True, slots=True)
class PartyLine:
    """What one party received in one currency over the period, as what and where."""

    party: str
    name: str
    currency: str
    amount_minor: int
    amount: str
    as_: tuple[str, ...]  # roles in words ("data", "operator's part"), sorted
    at: tuple[PaidAt, ...]  # the assets that paid it, largest first


@dataclass(frozen=True, slots=True)
class LineageNode:
    id: str
    type: str  # asset | run
    kind: str  # an asset kind, or "run"
    name: str
    status: str | None  # a run's status; None for assets


@dataclass(frozen=True, slots=True)
class LineageEdge:
    from_: str
    to: str
    relation: str  # used | generated | derived


@dataclass(frozen=True, slots=True)
class LineageGraph:
    root: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]


@dataclass(frozen=True, slots=True)
class Player:
    """One input of a valuation: its value and standard error, as recorded (decimal text)."""

    asset: str
    name: str
    kind: str | None  # its asset kind, where it is registered
    value: str
    stderr: str | None


@dataclass(frozen=True, slots=True)
class Valuation:
    model: str
    model_name: str
    entry: str
    method: str
    parameters: Mapping[str, str]
    seed: int | None
    evaluations: int
    converged: bool
    utility: str | None
    used_by_allocations: int
    players: tuple[Player, ...]  # highest value first


@dataclass(frozen=True, slots=True)
class AssetFlow:
    """Minor units that went from an asset (None: from the revenue) to another asset."""

    from_: str | None
    to: str
    from_name: str | None
    to_name: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PartyFlow:
    """Minor units a party received at an asset: the last hop of the money flow."""

    at: str
    at_name: str
    party: str
    party_name: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class MoneyFlow:
    assets: tuple[AssetFlow, ...]
    parties: tuple[PartyFlow, ...]


@dataclass(frozen=True, slots=True)
class UsagePoint:
    start: str  # the day ("2026-01-31") or month ("2026-01")
    units: int
    consumers: int


@dataclass(frozen=True, slots=True)
class MeteredUsage:
    """One meter's exact usage over the period, as its signed batches count it (what bills
    count): totals over all consumers, never one consumer's."""

    service: str
    service_name: str
    meter: str
    aggregation: str  # count | sum | max | unique_count
    events: int
    total: str | None  # decimal: events (count), summed or maximal value; None: unique_count


@dataclass(frozen=True, slots=True)
class PrivateRelease:
    """A differentially private aggregate of one month of a meter, as its
    `privacy.released` entry holds it (docs/privacy.md): noisy values, and the ε spent."""

    service: str
    service_name: str
    meter: str
    period: str  # one month
    query: str  # daily-count | daily-sum | consumer-histogram
    mechanism: str  # e.g. opendp:discrete-laplace;bound=10;d_in=310;scale=620
    epsilon: str
    values: tuple[tuple[str, str], ...]  # (day or bucket, noisy decimal)
    entry: int  # leaf index of the privacy.released entry


@dataclass(frozen=True, slots=True)
class Usage:
    unit: str
    per: Literal["day", "month"]
    series: tuple[UsagePoint, ...]  # every day (or month) of the period, idle ones at zero
    total_units: int
    distinct_consumers: int
    metered: tuple[MeteredUsage, ...] = ()  # CloudEvents meters, exact totals
    private: tuple[PrivateRelease, ...] = ()  # the period's private releases, in log order


@dataclass(frozen=True, slots=True)
class Policy:
    asset: str
    name: str
    entry: str
    operator: str
    operator_name: str
    words: str
    rules: Mapping[str, Any]  # the policy.set entry's body, as signed
    used_by_allocations: int


@dataclass(frozen=True, slots=True)
class Delegate:
    """A party that holds (or held) one right over an asset by delegation."""

    party: str
    name: str
    right: str  # valuation, metering, billing, sharing, policy, run, contribution
    asset: str
    asset_name: str
    granted_by: str
    granted_by_name: str
    since: str
    until: str | None
    entry: int  # leaf index of the right.granted entry
    revoked_at: int | None  # leaf index of the right.revoked entry, if revoked


@dataclass(frozen=True, slots=True)
class FiledClaim:
    """A claim.filed on an asset of the report's lineage: someone disputes its registrant."""

    asset: str
    asset_name: str
    registrant: str
    registrant_name: str
    claimant: str
    claimant_name: str
    reason: str
    entry: int  # leaf index


@dataclass(frozen=True, slots=True)
class CopiedRecords:
    """An overlap.detected touching the report's lineage: `records` of `asset`'s `of`
    records were already in `earlier`, and are credited to its registrant."""

    asset: str
    asset_name: str
    registrant_name: str
    earlier: str
    earlier_name: str
    earlier_registrant_name: str
    records: int
    of: int
    match: str  # exact | near
    entry: int  # leaf index


@dataclass(frozen=True, slots=True)
class Rights:
    """Who holds the rights over what the report shows: the operator (the registrant of
    the service or model), the parties it delegated rights to, the claims filed, and
    the records of its assets found copied from earlier ones (or copied by later ones)."""

    operator: str
    operator_name: str
    delegates: tuple[Delegate, ...]
    claims: tuple[FiledClaim, ...]
    overlaps: tuple[CopiedRecords, ...] = ()


@dataclass(frozen=True, slots=True)
class PinnedCheckpoint:
    tree_size: int
    root_hash: str  # hex
    note: str  # the signed note


@dataclass(frozen=True, slots=True)
class Verification:
    checkpoint: PinnedCheckpoint
    verifier_key: str
    allocations: tuple[str, ...]  # leaf hashes, sorted
    commands: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportDocument:
    """The whole report, section by section: exactly what report.json holds."""

    format: str
    asset: ReportedAsset
    period: str
    earned_by: tuple[Earner, ...]
    revenues: tuple[RevenueLine, ...]
    totals: Mapping[str, Totals]  # by currency, sorted
    parties: tuple[PartyLine, ...]
    lineage: LineageGraph
    valuations: tuple[Valuation, ...]
    money_flow: Mapping[str, MoneyFlow]  # by currency
    usage: Usage
    policies: tuple[Policy, ...]
    rights: Rights
    verification: Verification

    def to_json(self) -> dict[str, Any]:
        """The document as JSON values: dicts, lists, strings, numbers, booleans, None."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain

    def to_json_bytes(self) -> bytes:
        """The exact bytes of report.json: sorted keys, so the same facts give the same digest."""
        text = json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
        return (text + "\n").encode()


def _plain(value: object) -> Any:
    """Dataclasses as dicts (a trailing `_` dropped from field names), tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name.rstrip("_"): _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class ReportData:
    """The report's document and what publishing it needs to know."""

    document: ReportDocument
    asset: Digest
    period: Period
    name: str  # the asset's name
    allocations: tuple[str, ...]  # leaf hashes of the allocations covered, sorted
    signer: PartyId  # who signed the first allocation covered

    def to_json_bytes(self) -> bytes:
        """The exact bytes of report.json."""
        return self.document.to_json_bytes()


__all__ = [
    "FORMAT",
    "AllocationRef",
    "AssetFlow",
    "CopiedRecords",
    "Delegate",
    "Earner",
    "FiledClaim",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "MeteredUsage",
    "Money",
    "MoneyFlow",
    "PaidAt",
    "PartyFlow",
    "PartyLine",
    "PinnedCheckpoint",
    "Player",
    "Policy",
    "PrivateRelease",
    "ReportData",
    "ReportDocument",
    "ReportedAsset",
    "RevenueLine",
    "Rights",
    "Totals",
    "Usage",
    "UsagePoint",
    "Valuation",
    "Verification",
]
