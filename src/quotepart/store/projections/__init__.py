"""Projections: each is `apply(writer, entry, leaf_index) -> None` and nothing else.

They run inside the append transaction, after the entry is known to be signed by a
registered author, so a projection only enforces the *meaning* of facts (an asset is
registered once, a contribution names a known party and asset). Replaying the log
through them is exactly `rebuild`.

Rows go through a `ProjectionWriter`, which answers "is this key known?" from the
rows buffered in the same batch and from the database (looked up in bulk beforehand),
and writes each table with one executemany at the end: per-row statements cost more
than signing the entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Table

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    AllocationRecorded,
    AssetRegistered,
    ConsentRecorded,
    ContributionRecorded,
    PartyRegistered,
    PayoutRecorded,
    PolicySet,
    RevenueRecorded,
    RunRecorded,
    UsageRecorded,
    ValuationRecorded,
    format_fraction,
)
from quotepart.store.engine import bulk_insert, select_where_in
from quotepart.store.lineage import reaches
from quotepart.store.projections.sharing import (
    project_allocation,
    project_consent,
    project_payout,
    project_policy,
    project_revenue,
    project_usage,
    project_valuation,
)
from quotepart.store.schema import assets, contributions, lineage_edges, parties, runs


def digest_prefix(digest: str) -> int:
    """The first 8 bytes of a `sha256:<hex>` digest as a signed 64-bit integer (the lookup key)."""
    return int.from_bytes(bytes.fromhex(digest[7:23]), "big", signed=True)


_LOOKUPS: dict[str, tuple[str, str | None]] = {
    "parties": ("party_id", None),
    "runs": ("run_id", None),
    "assets": ("digest", "digest_prefix"),
}
"""table -> (key column, the indexed 8-byte prefix column that finds it, if any)."""


class ProjectionWriter:
    """One batch of projection rows, checked against the buffer and the database, then flushed."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._rows: dict[Table, list[dict[str, Any]]] = {}
        self._known: dict[tuple[str, str], int | None] = {}  # key -> its leaf index, if known
        self._shares: dict[str, Fraction] = {}
        self.asset_kinds: dict[str, str] = {}  # kinds never change: remembered per batch

    def share_total(self, asset: str) -> Fraction:
        """The declared shares of `asset` so far, from the database and this batch."""
        total = self._shares.get(asset)
        if total is None:
            rows = select_where_in(self.conn, contributions, ["share"], "asset", [asset])
            total = sum((Fraction(row[0]) for row in rows), Fraction(0))
            self._shares[asset] = total
        return total

    def prefetch_shares(self, assets_wanted: Iterable[str]) -> None:
        """Load the declared-share totals of many assets in one query."""
        wanted = sorted(set(assets_wanted) - set(self._shares))
        if not wanted:
            return
        totals = dict.fromkeys(wanted, Fraction(0))
        for asset, share in select_where_in(
            self.conn, contributions, ["asset", "share"], "asset", wanted
        ):
            totals[asset] += Fraction(share)
        self._shares.update(totals)

    def add_share(self, asset: str, share: Fraction) -> None:
        self._shares[asset] = self.share_total(asset) + share

    def prefetch(self, wanted: Iterable[tuple[Table, str]]) -> None:
        """Look up many keys (single-column primary keys) in one query per table."""
        by_table: dict[Table, set[str]] = {}
        for table, key in wanted:
            if (table.name, key) not in self._known:
                by_table.setdefault(table, set()).add(key)
        for table, keys in by_table.items():
            column, prefix_column = _LOOKUPS[table.name]
            if prefix_column is None:
                rows = select_where_in(
                    self.conn, table, [column, "leaf_index"], column, sorted(keys)
                )
            else:
                prefixes = set()
                for key in keys:
                    with contextlib.suppress(ValueError):  # malformed: the projection says so
                        prefixes.add(digest_prefix(key))
                rows = select_where_in(
                    self.conn, table, [column, "leaf_index"], prefix_column, sorted(prefixes)
                )
            present = {row[0]: int(row[1]) for row in rows}
            self._known.update(((table.name, key), present.get(key)) for key in keys)

    def leaf_of(self, table: Table, key: str) -> int | None:
        """The leaf index that registered `key` in `table` (this batch included), or None."""
        if (table.name, key) not in self._known:
            self.prefetch([(table, key)])
        return self._known[(table.name, key)]

    def exists(self, table: Table, key: str) -> bool:
        return self.leaf_of(table, key) is not None

    def add(self, table: Table, row: dict[str, Any], *, key: str | None = None) -> None:
        self._rows.setdefault(table, []).append(row)
        if key is not None:
            self._known[(table.name, key)] = int(row["leaf_index"])

    def flush(self) -> None:
        for table, rows in self._rows.items():
            if rows:
                columns = list(rows[0])
                bulk_insert(
                    self.conn, table, columns, [tuple(row[c] for c in columns) for row in rows]
                )
        self._rows.clear()


Projection = Callable[[ProjectionWriter, SignedEntry, int], None]
KeysNeeded = Callable[[SignedEntry], list[tuple[Table, str]]]


def project_party(writer: ProjectionWriter, entry: SignedEntry, leaf_index: int) -> None:
    body = entry.body()
    assert isinstance(body, PartyRegistered)
    if writer.exists(parties, str(body.party)):
        raise InputError(f"{body.party} is already registered", hint="a party is registered once")
    writer.add(
        parties,
        {
            "party_id": str(body.party),
            "name": body.name,
            "roles": ",".join(body.roles),
            "public_key": body.public_key.raw,
            "leaf_index": leaf_index,
        },
        key=str(body.party),
    )


def project_asset(writer: ProjectionWriter, entry: SignedEntry, leaf_index: int) -> None:
    body = entry.body()
    assert isinstance(body, AssetRegistered)
    if writer.exists(assets, str(body.asset)):
        raise InputError(
            f"asset {body.asset} is already registered",
            hint="registering the same content again returns the existing asset; look it up instead",
        )
    digest = str(body.asset)
    for parent in body.derived_from:
        parent_leaf = writer.leaf_of(assets, str(parent))
        if parent_leaf is None:
            raise NotFoundError(
                f"asset {digest} derives from unknown asset {parent}",
                hint="register the asset it derives from first",
            )
        writer.add(
            lineage_edges, {"child": leaf_index, "parent": parent_leaf, "relation": "derived"}
        )
    writer.add(
        assets,
        {
            "digest": digest,
            "digest_prefix": digest_prefix(digest),
            "asset_kind": body.asset_kind,
            "name": body.name,
            "registered_by": str(entry.author),
            "leaf_index": leaf_index,
        },
        key=digest,
    )


def project_contribution(writer: ProjectionWriter, entry: SignedEntry, leaf_index: int) -> None:
    body = entry.body()
    assert isinstance(body, ContributionRecorded)
    if not writer.exists(parties, str(body.party)):
        raise NotFoundError(
            f"contribution names unknown {body.party}", hint="register the party first"
        )
    if not writer.exists(assets, str(body.asset)):
        raise NotFoundError(
            f"contribution names unknown asset {body.asset}", hint="register the asset first"
        )
    total = writer.share_total(str(body.asset)) + body.share
    if total > 1:
        raise InputError(
            f"the declared shares of asset {body.asset} would add up to {format_fraction(total)}, "
            "more than the whole",
            hint="shares of one asset sum to at most 1; record them together with "
            "Workspace.contribute(..., normalise=True) to scale them",
        )
    writer.add_share(str(body.asset), body.share)
    writer.add(
        contributions,
        {
            "leaf_index": leaf_index,
            "party_id": str(body.party),
            "asset": str(body.asset),
            "role": body.role,
            "share": format_fraction(body.share),
        },
    )


def project_run(writer: ProjectionWriter, entry: SignedEntry, leaf_index: int) -> None:
    body = entry.body()
    assert isinstance(body, RunRecorded)
    run = str(body.run)
    if writer.exists(runs, run):
        raise InputError(f"{run} is already recorded", hint="a run is recorded once, when it ends")
    if not writer.exists(parties, str(body.operator)):
        raise NotFoundError(
            f"{run} names unknown operator {body.operator}", hint="register the party first"
        )
    leaves: dict[Digest, int] = {}
    for digest in (*body.inputs, *body.outputs):
        found = writer.leaf_of(assets, str(digest))
        if found is None:
            raise NotFoundError(
                f"{run} names unknown asset {digest}",
                hint="register every asset a run uses or produces before recording the run",
            )
        leaves[digest] = found
    inputs = sorted({leaves[d] for d in body.inputs})
    outputs = sorted({leaves[d] for d in body.outputs})
    if inputs and outputs:
        writer.flush()  # the walk below reads this batch's edges too
        looped = reaches(writer.conn, outputs, inputs)
        if looped is not None:
            name = next(str(d) for d, leaf in leaves.items() if leaf == looped)
            raise InputError(
                f"{run} would close a lineage cycle: it uses {name}, which already comes "
                "from one of its outputs",
                hint="an asset cannot be its own ancestor; register the changed content as a new asset",
            )
    writer.add(
        runs,
        {
            "run_id": run,
            "name": body.name,
            "operator": str(body.operator),
            "status": body.status,
            "started": entry.raw_body["started"],
            "ended": entry.raw_body["ended"],
            "leaf_index": leaf_index,
        },
        key=run,
    )
    for parent in inputs:
        writer.add(lineage_edges, {"child": leaf_index, "parent": parent, "relation": "used"})
    for child in outputs:
        writer.add(lineage_edges, {"child": child, "parent": leaf_index, "relation": "generated"})


def _run_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    body = entry.raw_body
    keys: list[tuple[Table, str]] = [
        (runs, str(body.get("run"))),
        (parties, str(body.get("operator"))),
    ]
    for field in ("inputs", "outputs"):
        values = body.get(field)
        if isinstance(values, list):
            keys.extend((assets, str(value)) for value in values)
    return keys


def _party_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    return [(parties, str(entry.raw_body.get("party")))]


def _asset_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    derived = entry.raw_body.get("derived_from")
    parents = [str(d) for d in derived] if isinstance(derived, list) else []
    return [(assets, str(entry.raw_body.get("asset"))), *((assets, d) for d in parents)]


def _contribution_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    return [*_party_keys(entry), *_asset_keys(entry)]


SHARING_PROJECTIONS: dict[str, tuple[Projection, ...]] = {
    RevenueRecorded.KIND: (project_revenue,),
    PolicySet.KIND: (project_policy,),
    ValuationRecorded.KIND: (project_valuation,),
    ConsentRecorded.KIND: (project_consent,),
    AllocationRecorded.KIND: (project_allocation,),
    PayoutRecorded.KIND: (project_payout,),
    UsageRecorded.KIND: (project_usage,),
}


PROJECTIONS: dict[str, tuple[Projection, ...]] = {
    PartyRegistered.KIND: (project_party,),
    AssetRegistered.KIND: (project_asset,),
    ContributionRecorded.KIND: (project_contribution,),
    RunRecorded.KIND: (project_run,),
    **SHARING_PROJECTIONS,
}

KEYS_NEEDED: dict[str, KeysNeeded] = {
    PartyRegistered.KIND: _party_keys,
    AssetRegistered.KIND: _asset_keys,
    ContributionRecorded.KIND: _contribution_keys,
    RunRecorded.KIND: _run_keys,
}
"""Keys each kind's projections will look up, so a batch can fetch them in bulk first."""


def prefetch(writer: ProjectionWriter, entries: Sequence[SignedEntry]) -> None:
    writer.prefetch_shares(
        str(entry.raw_body.get("asset"))
        for entry in entries
        if entry.kind == ContributionRecorded.KIND
    )
    writer.prefetch(
        key
        for entry in entries
        if entry.kind in KEYS_NEEDED
        for key in KEYS_NEEDED[entry.kind](entry)
    )


def apply_projections(writer: ProjectionWriter, entry: SignedEntry, leaf_index: int) -> None:
    for project in PROJECTIONS.get(entry.kind, ()):
        project(writer, entry, leaf_index)
