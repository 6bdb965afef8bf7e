"""Entries by leaf index or hash: the log's own bytes, decoded and typed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Connection, select

from quotepart.errors import OutOfRangeError, VerificationError
from quotepart.log import SignedEntry, parse_entry
from quotepart.log.kinds import EntryBody
from quotepart.store.log_store import leaf_indexes_of
from quotepart.store.schema import log_entries

B = TypeVar("B", bound=EntryBody)


def read_entries(conn: Connection, leaf_indexes: Iterable[int]) -> list[tuple[int, SignedEntry]]:
    """The entries at these leaf indexes, in log order."""
    wanted = sorted(set(leaf_indexes))
    found: list[tuple[int, SignedEntry]] = []
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(log_entries.c.leaf_index, log_entries.c.entry).where(
                log_entries.c.leaf_index.in_(wanted[start : start + 500])
            )
        )
        found.extend((int(index), parse_entry(bytes(data))) for index, data in rows)
    return sorted(found, key=lambda pair: pair[0])


def read_entry(conn: Connection, leaf_index: int) -> SignedEntry:
    """The entry at `leaf_index`.

    Raises:
        OutOfRangeError: no entry has that index.
    """
    found = read_entries(conn, [leaf_index])
    if not found:
        raise OutOfRangeError(
            f"no entry at leaf index {leaf_index}", hint="indexes run from 0 to the tree size - 1"
        )
    return found[0][1]


def read_body(conn: Connection, leaf_index: int, kind: type[B]) -> B:
    """The typed body of the entry at `leaf_index`, which must be of `kind`.

    Raises:
        OutOfRangeError: no entry has that index.
        KindMismatchError: the entry is of another kind.
    """
    return read_entry(conn, leaf_index).body_as(kind)


def read_bodies(conn: Connection, leaf_indexes: Iterable[int], kind: type[B]) -> list[B]:
    """The typed bodies at these leaf indexes, in log order, each of `kind`."""
    return [entry.body_as(kind) for _, entry in read_entries(conn, leaf_indexes)]


def entries_of_kind(
    conn: Connection, kind: str, *, start: int = 0
) -> list[tuple[int, SignedEntry]]:
    """Every entry of `kind` at or after leaf index `start`, in log order (for log-only
    kinds, which have no projection table to look them up in)."""
    rows = conn.execute(
        select(log_entries.c.leaf_index, log_entries.c.entry)
        .where(log_entries.c.leaf_index >= start, log_entries.c.kind == kind)
        .order_by(log_entries.c.leaf_index)
    )
    return [(int(index), parse_entry(bytes(raw))) for index, raw in rows]


def entries_by_hash(conn: Connection, hashes: Sequence[str]) -> list[tuple[int, SignedEntry]]:
    """Entries named by leaf hash (hex), found through the log's hash-prefix index.

    Raises:
        VerificationError: one of them is not in the log.
    """
    wanted = {bytes.fromhex(h) for h in hashes}
    indexes = leaf_indexes_of(conn, sorted(wanted))
    if len(indexes) != len(wanted):
        raise VerificationError(
            f"{len(wanted) - len(indexes)} of the entries an allocation names are not in the log",
            hint="the log was altered or truncated; run `quotepart verify`",
        )
    return read_entries(conn, indexes.values())


__all__ = [
    "entries_by_hash",
    "entries_of_kind",
    "read_bodies",
    "read_body",
    "read_entries",
    "read_entry",
]
