"""The record index: each registered record set's keys, kept beside the log.

The index is derived from the *records* (which the log never holds), not from log
entries: `rebuild` keeps it (it cannot recreate it) and `verify` does not compare it
(nothing in the log says what it should hold). Losing it loses overlap detection
against the sets it held, nothing else: register them again to index them, or restore
the database. It is written in the transaction that appends the set's
`asset.registered` (`LogStore.append(..., alongside=...)`), so a set is indexed if and
only if its registration committed.

Rows hold opaque blobs; `quotepart.provenance.overlap` says what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from quotepart.errors import NotFoundError
from quotepart.store.projections import digest_prefix
from quotepart.store.schema import assets, record_keys, record_sets

RECORD_KEYS_PART = 1 << 20
"""Records per `record_keys` row: 96 MB of keys at most per blob, far below the 1 GB
that SQLite's and PostgreSQL's blobs allow."""


@dataclass(frozen=True, slots=True)
class RecordSetRow:
    """One indexed record set; `parts` are its (exact, near) key blobs, in order."""

    asset: str
    set_root: str
    records: int
    fields: int
    tolerance: str
    parts: tuple[tuple[bytes, bytes], ...] = ()


def write_record_set(conn: Connection, row: RecordSetRow) -> None:
    """Index one record set (inside the write transaction that registered it).

    Raises:
        NotFoundError: the asset is not registered (not even in this transaction).
    """
    leaf = conn.execute(
        select(assets.c.leaf_index).where(
            assets.c.digest_prefix == digest_prefix(row.asset), assets.c.digest == row.asset
        )
    ).scalar()
    if leaf is None:
        raise NotFoundError(
            f"cannot index {row.asset}: it is not registered", hint="register the asset first"
        )
    conn.execute(
        insert(record_sets).values(
            asset=row.asset,
            leaf_index=int(leaf),
            set_root=row.set_root,
            records=row.records,
            fields=row.fields,
            tolerance=row.tolerance,
        )
    )
    for part, (exact, near) in enumerate(row.parts):
        conn.execute(insert(record_keys).values(asset=row.asset, part=part, exact=exact, near=near))


def indexed_sets(conn: Connection, *, keys: bool = True) -> list[RecordSetRow]:
    """Every indexed record set, in the order their assets were registered (oldest
    first); without their key blobs unless `keys`."""
    rows = conn.execute(select(record_sets).order_by(record_sets.c.leaf_index)).all()
    parts: dict[str, list[tuple[bytes, bytes]]] = {}
    if keys:
        for key_row in conn.execute(
            select(record_keys).order_by(record_keys.c.asset, record_keys.c.part)
        ):
            parts.setdefault(key_row.asset, []).append((bytes(key_row.exact), bytes(key_row.near)))
    return [
        RecordSetRow(
            r.asset, r.set_root, r.records, r.fields, r.tolerance, tuple(parts.get(r.asset, ()))
        )
        for r in rows
    ]


def record_set(conn: Connection, asset: str) -> RecordSetRow | None:
    """The index row of one asset (without its keys), or None when it is not indexed."""
    row = conn.execute(select(record_sets).where(record_sets.c.asset == asset)).first()
    if row is None:
        return None
    return RecordSetRow(row.asset, row.set_root, row.records, row.fields, row.tolerance)


__all__ = [
    "RECORD_KEYS_PART",
    "RecordSetRow",
    "indexed_sets",
    "record_set",
    "write_record_set",
]
