"""Questions about parties, assets, contributions and runs, asked of their projections."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Row, or_, select

from quotepart.errors import NotFoundError
from quotepart.ids import Digest, PartyId
from quotepart.store.engine import select_where_in
from quotepart.store.lineage import NodeRow
from quotepart.store.projections import digest_prefix
from quotepart.store.schema import (
    assets,
    contributions,
    overlaps,
    parties,
    payout_changes,
    runs,
)


@dataclass(frozen=True, slots=True)
class PartyRecord:
    party: PartyId
    name: str
    roles: tuple[str, ...]
    leaf_index: int


@dataclass(frozen=True, slots=True)
class AssetRecord:
    asset: Digest
    asset_kind: str
    name: str
    registered_by: PartyId
    leaf_index: int


@dataclass(frozen=True, slots=True)
class ContributionRecord:
    party: PartyId
    asset: Digest
    role: str
    share: Fraction
    leaf_index: int


@dataclass(frozen=True, slots=True)
class OverlapRecord:
    """An `overlap.detected`: `records` of `asset`'s `of` records were already in `earlier`."""

    asset: Digest
    earlier: Digest
    records: int
    of: int
    match: str  # exact | near
    tolerance: str
    leaf_index: int

    @property
    def shared(self) -> Fraction:
        return Fraction(self.records, self.of)


# ------------------------------------------------------------------ parties


def party_records(conn: Connection) -> list[PartyRecord]:
    """Every registered party, oldest first."""
    rows = conn.execute(select(parties).order_by(parties.c.leaf_index)).all()
    return [
        PartyRecord(PartyId.parse(r.party_id), r.name, tuple(r.roles.split(",")), r.leaf_index)
        for r in rows
    ]


def party_leaf(conn: Connection, party: PartyId | str) -> int | None:
    """The leaf index of the party's registration, or None."""
    row = conn.execute(select(parties.c.leaf_index).where(parties.c.party_id == str(party))).first()
    return None if row is None else int(row[0])


def payout_change(conn: Connection, party: PartyId | str) -> tuple[int, Digest] | None:
    """The leaf index and commitment of the party's latest payout change, or None."""
    row = conn.execute(
        select(payout_changes.c.leaf_index, payout_changes.c.commitment)
        .where(payout_changes.c.party_id == str(party))
        .order_by(payout_changes.c.leaf_index.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), Digest.parse(row[1]))


def party_leaves(conn: Connection, wanted: Iterable[str] | None = None) -> list[int]:
    """Leaf indexes of these parties' registrations (of every party for None), in log order."""
    if wanted is None:
        return sorted(int(r[0]) for r in conn.execute(select(parties.c.leaf_index)))
    rows = select_where_in(conn, parties, ["leaf_index"], "party_id", sorted(set(wanted)))
    return sorted(int(r[0]) for r in rows)


def parties_matching(conn: Connection, text: str, *, limit: int = 10) -> list[PartyRecord]:
    """Parties whose id is `text`, whose id starts with `text`, or whose name is `text`.

    An id prefix (`party:01J9`, case-insensitive like every ULID) is looked up as a range
    of the primary key, so it stays one index probe however many parties there are. At
    most `limit` records, oldest first.
    """
    found: dict[str, Row[Any]] = {}
    head = text.strip()
    if head.lower().startswith(PartyId.PREFIX) and len(head) > len(PartyId.PREFIX):
        low = PartyId.PREFIX + head[len(PartyId.PREFIX) :].upper()
        # ULID letters and digits sort alike in every collation; "~" sorts after them all.
        query = select(parties).where(parties.c.party_id >= low, parties.c.party_id < low + "~")
        for row in conn.execute(query.limit(limit)):
            if str(row.party_id).startswith(low):
                found[row.party_id] = row
    for row in conn.execute(select(parties).where(parties.c.name == head).limit(limit)):
        found[row.party_id] = row
    rows = sorted(found.values(), key=lambda r: int(r.leaf_index))[:limit]
    return [
        PartyRecord(PartyId.parse(r.party_id), r.name, tuple(r.roles.split(",")), r.leaf_index)
        for r in rows
    ]


def party_names(conn: Connection, wanted: Iterable[str]) -> dict[str, str]:
    """party id -> registered name, for the registered ones among `wanted`."""
    rows = select_where_in(conn, parties, ["party_id", "name"], "party_id", sorted(set(wanted)))
    return {str(party): str(name) for party, name in rows}


# ------------------------------------------------------------------- assets


def _asset_record(row: Row[Any]) -> AssetRecord:
    return AssetRecord(
        Digest.parse(row.digest),
        row.asset_kind,
        row.name,
        PartyId.parse(row.registered_by),
        row.leaf_index,
    )


def asset_record(conn: Connection, digest: Digest) -> AssetRecord | None:
    """The registration of `digest`, found through the 8-byte prefix index, or None."""
    row = conn.execute(
        select(assets).where(
            assets.c.digest_prefix == digest_prefix(str(digest)), assets.c.digest == str(digest)
        )
    ).first()
    return None if row is None else _asset_record(row)


def asset_records(conn: Connection) -> list[AssetRecord]:
    """Every registered asset, oldest first."""
    return [
        _asset_record(row)
        for row in conn.execute(select(assets).order_by(assets.c.leaf_index)).all()
    ]


def asset_leaf(conn: Connection, digest: Digest) -> int | None:
    """The leaf index of the entry that registered `digest`, or None."""
    found = asset_record(conn, digest)
    return None if found is None else found.leaf_index


def asset_registrations(
    conn: Connection, wanted: Iterable[str] | None = None
) -> list[tuple[str, int, str]]:
    """(digest, leaf index, registered by) of these assets (every asset for None)."""
    if wanted is None:
        columns = (assets.c.digest, assets.c.leaf_index, assets.c.registered_by)
        return [(str(d), int(leaf), str(by)) for d, leaf, by in conn.execute(select(*columns))]
    wanted_set = set(wanted)
    prefixes = sorted({digest_prefix(d) for d in wanted_set})
    rows = select_where_in(
        conn, assets, ["digest", "leaf_index", "registered_by"], "digest_prefix", prefixes
    )
    return [(str(d), int(leaf), str(by)) for d, leaf, by in rows if d in wanted_set]


def asset_digests_named(conn: Connection, name: str, *, limit: int = 2) -> list[str]:
    """Digests of assets registered under exactly this name (at most `limit`)."""
    rows = conn.execute(select(assets.c.digest).where(assets.c.name == name).limit(limit))
    return [str(row[0]) for row in rows]


def _digest_prefix_range(hexpart: str) -> tuple[int, int]:
    """The `digest_prefix` keys of every digest whose hex starts with `hexpart` (1+ digits).

    All such digests share their first bit, so the signed keys of the range are in order.
    """
    head = hexpart[:16]
    low = int.from_bytes(bytes.fromhex(head.ljust(16, "0")), "big", signed=True)
    high = int.from_bytes(bytes.fromhex(head.ljust(16, "f")), "big", signed=True)
    return low, high


MIN_DIGEST_PREFIX_HEX = 4
"""The shortest digest prefix looked up (`sha256:2e0d`); quotepart prints eight or more."""


def is_digest_prefix(text: str) -> bool:
    """`sha256:` and 4 to 64 hex digits: a digest or the start of one."""
    algorithm, colon, hexpart = text.strip().partition(":")
    return (
        bool(colon)
        and algorithm.lower() == "sha256"
        and MIN_DIGEST_PREFIX_HEX <= len(hexpart) <= 64
        and all(c in "0123456789abcdef" for c in hexpart.lower())
    )


def assets_matching(conn: Connection, text: str, *, limit: int = 10) -> list[AssetRecord]:
    """Assets whose digest is `text` or starts with it (`sha256:2e0df31b`), or whose name is `text`.

    A digest prefix is a range of the `digest_prefix` index: one probe, whatever the
    number of assets. At most `limit` records, oldest first.
    """
    found: dict[int, Row[Any]] = {}
    head = text.strip()
    hexpart = head.partition(":")[2].lower()
    if is_digest_prefix(head):
        low, high = _digest_prefix_range(hexpart)
        query = select(assets).where(assets.c.digest_prefix.between(low, high))
        if len(hexpart) > 16:
            query = query.where(assets.c.digest.startswith("sha256:" + hexpart, autoescape=True))
        for row in conn.execute(query.limit(limit)):
            if str(row.digest).startswith("sha256:" + hexpart):
                found[int(row.leaf_index)] = row
    named = select(assets).where(assets.c.name == head).order_by(assets.c.leaf_index)
    for row in conn.execute(named.limit(limit)):
        found[int(row.leaf_index)] = row
    return [_asset_record(found[leaf]) for leaf in sorted(found)[:limit]]


# ------------------------------------------------------------ contributions


def overlap_records(conn: Connection, wanted: Iterable[str] | None = None) -> list[OverlapRecord]:
    """Every overlap (of or with these assets, in either role, when given), oldest first."""
    query = select(overlaps).order_by(overlaps.c.leaf_index)
    if wanted is not None:
        names = sorted(set(wanted))
        if not names:
            return []
        query = query.where(or_(overlaps.c.asset.in_(names), overlaps.c.earlier.in_(names)))
    return [
        OverlapRecord(
            Digest.parse(r.asset),
            Digest.parse(r.earlier),
            int(r.records),
            int(r.of_records),
            r.match,
            r.tolerance,
            int(r.leaf_index),
        )
        for r in conn.execute(query)
    ]


def contribution_records(
    conn: Connection, of_assets: Iterable[str] | None = None
) -> list[ContributionRecord]:
    """Contributions to these assets (to every asset for None), in log order."""
    columns = ["leaf_index", "party_id", "asset", "role", "share"]
    if of_assets is None:
        rows = [tuple(r) for r in conn.execute(select(*(contributions.c[c] for c in columns)))]
    else:
        rows = select_where_in(conn, contributions, columns, "asset", sorted(set(of_assets)))
    return sorted(
        (
            ContributionRecord(
                PartyId.parse(party), Digest.parse(asset), role, Fraction(share), int(leaf)
            )
            for leaf, party, asset, role, share in rows
        ),
        key=lambda c: c.leaf_index,
    )


def declared_share_total(conn: Connection, digest: Digest) -> Fraction:
    """The shares declared so far for `digest` (1 when its contributors are complete)."""
    rows = select_where_in(conn, contributions, ["share"], "asset", [str(digest)])
    return sum((Fraction(row[0]) for row in rows), Fraction(0))


# --------------------------------------------------------------------- runs


def run_leaf(conn: Connection, run_id: str) -> int:
    """The leaf index of a run.

    Raises:
        NotFoundError: no such run.
    """
    row = conn.execute(select(runs.c.leaf_index).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise NotFoundError(
            f"no run {run_id} in this log", hint="list runs with `quotepart run list`"
        )
    return int(row[0])


def run_leaves(conn: Connection, wanted: Iterable[str] | None = None) -> list[int]:
    """Leaf indexes of these runs (of every run for None), in log order."""
    if wanted is None:
        return sorted(int(r[0]) for r in conn.execute(select(runs.c.leaf_index)))
    rows = select_where_in(conn, runs, ["leaf_index"], "run_id", sorted(set(wanted)))
    return sorted(int(r[0]) for r in rows)


def run_ids(conn: Connection, wanted: Iterable[str] | None = None) -> list[str]:
    """The recorded ones among `wanted` (every run id for None), in log order."""
    if wanted is None:
        query = select(runs.c.run_id).order_by(runs.c.leaf_index)
        return [str(row[0]) for row in conn.execute(query)]
    rows = select_where_in(conn, runs, ["run_id", "leaf_index"], "run_id", sorted(set(wanted)))
    return [str(run) for run, _ in sorted(rows, key=lambda r: int(r[1]))]


# ------------------------------------------------------------ lineage nodes


def lineage_nodes(conn: Connection, node_ids: Iterable[str]) -> dict[str, NodeRow]:
    """Assets (by digest) and runs (by run id) as lineage nodes; unknown ids are left out."""
    wanted = set(node_ids)
    found: dict[str, NodeRow] = {}
    digests = sorted(n for n in wanted if n.startswith("sha256:"))
    run_list = sorted(n for n in wanted if n.startswith("run:"))
    if digests:
        rows = select_where_in(
            conn,
            assets,
            ["digest", "asset_kind", "name", "leaf_index"],
            "digest_prefix",
            sorted({digest_prefix(d) for d in digests}),
        )
        for digest, kind, name, leaf in rows:
            if digest in wanted:
                found[digest] = NodeRow(int(leaf), digest, "asset", kind, name, None)
    if run_list:
        for run_id, name, status, leaf in select_where_in(
            conn, runs, ["run_id", "name", "status", "leaf_index"], "run_id", run_list
        ):
            found[run_id] = NodeRow(int(leaf), run_id, "run", "run", name, status)
    return found


__all__ = [
    "AssetRecord",
    "ContributionRecord",
    "OverlapRecord",
    "PartyRecord",
    "asset_digests_named",
    "asset_leaf",
    "asset_record",
    "asset_records",
    "asset_registrations",
    "assets_matching",
    "contribution_records",
    "declared_share_total",
    "is_digest_prefix",
    "lineage_nodes",
    "overlap_records",
    "parties_matching",
    "party_leaf",
    "party_leaves",
    "party_names",
    "party_records",
    "payout_change",
    "run_ids",
    "run_leaf",
    "run_leaves",
]
