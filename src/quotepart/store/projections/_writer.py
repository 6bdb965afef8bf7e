"""The projection writer and the registry of projections, one per entry kind.

A projection is declared beside its code with `@projects(Kind, keys=..., prepare=...)`:
the body class it reads (decoded and type-checked before it is called), the keys it will
look up (so a batch fetches them in bulk first). Before any projection runs, the entry's
rule (`quotepart.store.rights`: who may author it, given the log so far) admits it.
Append and verify's replay both go through `apply_projections`, so a rule holds for
live appends and for every replay alike.

Rows go through a `ProjectionWriter`, which answers "is this key known?" from the
rows buffered in the same batch and from the database (looked up in bulk beforehand),
and writes each table with one executemany at the end: per-row statements cost more
than signing the entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Table

from quotepart.allocation.facts import INPUT_KINDS
from quotepart.log import SignedEntry
from quotepart.log.kinds import DECLARED, EntryBody
from quotepart.store.engine import bulk_insert, select_where_in
from quotepart.store.rights import admit
from quotepart.store.schema import contributions


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

    def __init__(
        self,
        conn: Connection,
        *,
        kept: dict[int, SignedEntry] | None = None,
        logged: bool = True,
    ) -> None:
        """`kept` holds the entries an allocation may read that were admitted but are not
        in `log_entries` (this batch's; in verify's replay, every one so far), and `logged`
        says whether `conn` holds the log's own entries to read the rest from."""
        self.conn = conn
        self.cache: dict[str, dict[Any, Any]] = {}  # rights lookups, for this batch
        self.kept: dict[int, SignedEntry] = {} if kept is None else kept
        self._logged = logged
        self._rows: dict[Table, list[dict[str, Any]]] = {}
        self._known: dict[tuple[str, str], int | None] = {}  # key -> its leaf index, if known
        self._shares: dict[str, Fraction] = {}
        self.asset_kinds: dict[str, str] = {}  # kinds never change: remembered per batch

    def entries_at(self, leaf_indexes: Iterable[int]) -> list[tuple[int, SignedEntry]]:
        """The signed entries at these leaf indexes, this batch's included, in log order."""
        wanted = set(leaf_indexes)
        here = {i: self.kept[i] for i in wanted if i in self.kept}
        rest = sorted(wanted - set(here))
        logged = _read_logged_entries(self.conn, rest) if rest and self._logged else []
        return sorted([*here.items(), *logged], key=lambda pair: pair[0])

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


ALLOCATION_READS = INPUT_KINDS
"""The kinds an allocation is recomputed from: kept in memory until they are logged."""


def _read_logged_entries(
    conn: Connection, leaf_indexes: Iterable[int]
) -> list[tuple[int, SignedEntry]]:
    from quotepart.store.queries.entries import read_entries

    return read_entries(conn, leaf_indexes)


B = TypeVar("B", bound=EntryBody)
KeysNeeded = Callable[[SignedEntry], list[tuple[Table, str]]]
"""The (table, key) pairs an entry's projection will look up, read from its raw body."""
Prepare = Callable[["ProjectionWriter", Sequence[SignedEntry]], None]
"""Bulk work before a batch is projected, given the batch's entries of that kind."""


@dataclass(frozen=True, slots=True)
class ProjectionDeclaration(Generic[B]):
    """How one entry kind changes the projection tables."""

    body: type[B]
    apply: Callable[[ProjectionWriter, B, SignedEntry, int], None]
    keys: KeysNeeded | None
    prepare: Prepare | None

    def project(self, writer: ProjectionWriter, entry: SignedEntry, leaf_index: int) -> None:
        body = entry.body_as(self.body)
        admit(writer, body, entry)
        self.apply(writer, body, entry, leaf_index)


_DECLARED_PROJECTIONS: dict[str, ProjectionDeclaration[Any]] = {}
PROJECTIONS: Mapping[str, ProjectionDeclaration[Any]] = MappingProxyType(_DECLARED_PROJECTIONS)
"""kind -> its projection; log-only kinds (see `quotepart.log.kinds.DECLARED`) have none."""


def projects(
    body: type[B],
    *,
    keys: KeysNeeded | None = None,
    prepare: Prepare | None = None,
) -> Callable[
    [Callable[[ProjectionWriter, B, SignedEntry, int], None]],
    Callable[[ProjectionWriter, B, SignedEntry, int], None],
]:
    """Declare `apply` as the projection of `body`'s kind (a function decorator)."""

    def declare(
        apply: Callable[[ProjectionWriter, B, SignedEntry, int], None],
    ) -> Callable[[ProjectionWriter, B, SignedEntry, int], None]:
        declared = DECLARED.get(body.KIND)
        if declared is None or declared.body is not body:
            raise TypeError(f"{body.__name__} is not a declared entry kind (@entry_kind)")
        if declared.log_only:
            raise TypeError(f"{body.KIND} is declared log-only: it has no projection")
        if body.KIND in _DECLARED_PROJECTIONS:
            raise TypeError(f"{body.KIND} has two projections")
        _DECLARED_PROJECTIONS[body.KIND] = ProjectionDeclaration(body, apply, keys, prepare)
        return apply

    return declare


def prefetch(writer: ProjectionWriter, entries: Sequence[SignedEntry]) -> None:
    """Look up, in bulk, every key the batch's projections will ask for."""
    by_kind: dict[str, list[SignedEntry]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    wanted: list[tuple[Table, str]] = []
    for kind, of_kind in by_kind.items():
        declaration = _DECLARED_PROJECTIONS.get(kind)
        if declaration is None:
            continue
        if declaration.prepare is not None:
            declaration.prepare(writer, of_kind)
        if declaration.keys is not None:
            for entry in of_kind:
                wanted.extend(declaration.keys(entry))
    writer.prefetch(wanted)


def apply_projections(writer: ProjectionWriter, entry: SignedEntry, leaf_index: int) -> None:
    """Admit one entry under its rule (`quotepart.store.rights`), then project it
    (log-only kinds change no table)."""
    declaration = _DECLARED_PROJECTIONS.get(entry.kind)
    if declaration is not None:
        declaration.project(writer, entry, leaf_index)
    else:
        admit(writer, entry.body(), entry)
    if entry.kind in ALLOCATION_READS:
        writer.kept[leaf_index] = entry
