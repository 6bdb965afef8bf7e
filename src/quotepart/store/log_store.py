"""The stored log: append (leaf + tree nodes + projections + checkpoint in one transaction),
proofs read from stored nodes, the auditor's `LogSource`, and rebuild by replay."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)

from quotepart.errors import (
    InputError,
    OutOfRangeError,
    QuotepartError,
    ReadOnlyWorkspaceError,
    RightsError,
    SignatureError,
    UnknownAuthorError,
    VerificationError,
    WrongLogError,
)
from quotepart.ids import PartyId
from quotepart.log import (
    Checkpoint,
    CompactRange,
    NodeId,
    SignedEntry,
    SigningKey,
    VerifiedEntry,
    VerifyKey,
    merkle,
    parse_entry,
)
from quotepart.log.canonical import MAX_ENTRY_BYTES
from quotepart.log.kinds import PartyRegistered
from quotepart.store.engine import WalCheckpointer, bulk_insert, select_where_in, writer
from quotepart.store.projections import ProjectionWriter, apply_projections, prefetch
from quotepart.store.schema import (
    PROJECTION_TABLES,
    checkpoints,
    log_entries,
    log_head,
    log_meta,
    metadata,
    parties,
    tree_nodes,
)

_IN_CHUNK = 500  # bound on bind parameters per IN (...) query
_LEAF_COLUMNS = ("leaf_index", "leaf_hash", "leaf_prefix", "kind", "author", "entry")


def leaf_prefix(leaf_hash: bytes) -> int:
    """The first 8 bytes of a leaf hash as a signed 64-bit integer (the lookup key)."""
    return int.from_bytes(leaf_hash[:8], "big", signed=True)


def leaf_indexes_of(conn: Connection, hashes: Sequence[bytes]) -> dict[bytes, int]:
    """Leaf index of each leaf hash that is in the log, through the 8-byte prefix index."""
    wanted = set(hashes)
    rows = select_where_in(
        conn,
        log_entries,
        ("leaf_hash", "leaf_index"),
        "leaf_prefix",
        sorted({leaf_prefix(h) for h in wanted}),
    )
    return {bytes(h): int(i) for h, i in rows if bytes(h) in wanted}


_NODE_COLUMNS = ("node_id", "hash")

FAULT_POINTS = ("entry", "projections", "leaves", "sealed")
"""Where `LogStore.faults` is called inside an append's transaction, in order: after each
new entry is checked and projected in memory, after the projection rows are written,
after the leaves and tree nodes are written, and after the checkpoint (just before commit)."""

FaultHook = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: tuple[bytes, ...]


class LogStore:
    """One log (one origin) in one database. Every method opens its own transaction."""

    def __init__(
        self,
        engine: Engine,
        *,
        origin: str,
        log_key: SigningKey | None,
        faults: FaultHook | None = None,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        self.engine = engine
        self.origin = origin
        self.log_key = log_key  # None: read-only, as for an auditor
        # Fault injection for simulation tests: called with a name from FAULT_POINTS inside
        # append's transaction; whatever it raises rolls the whole append back.
        self.faults = faults
        self.max_entry_bytes = max_entry_bytes  # the workspace's own limit (docs: Limits)
        self._checkpointer = WalCheckpointer(engine)

    def _fault(self, point: str) -> None:
        if self.faults is not None:
            self.faults(point)

    def close(self) -> None:
        """Stop background work and release the database connections."""
        self._checkpointer.close()
        self.engine.dispose()

    # ----------------------------------------------------------------- writing

    def append(
        self,
        entries: Sequence[SignedEntry],
        *,
        alongside: Callable[[Connection, Sequence[int]], None] | None = None,
    ) -> list[int]:
        """Append entries in order; return each one's leaf index (existing ones keep theirs).

        All or nothing: the leaves, their tree nodes, their projection rows and one
        signed checkpoint commit together, or nothing does. Every signature is checked
        against the author's registered key, except that a `VerifiedEntry` whose signer
        is that very key (this process signed or checked it) is not verified twice.

        Every entry must be signed for this log (its origin is `self.origin`); one that
        is already in the log is returned as is, whichever envelope it has.

        `alongside(conn, indexes)`, when given, writes side tables (the record index, a
        usage batch's events) in the same transaction, once the leaves are written and
        only when at least one is new; `indexes` are the entries' leaf indexes, in order.

        Raises:
            UnknownAuthorError / SignatureError: an author that is not registered or a bad signature.
            WrongLogError: an entry signed for another log, or (envelope 1) for none.
            InputError: an entry that contradicts the log (a projection refused it).
        """
        if not entries:
            return []
        if self.log_key is None:
            raise ReadOnlyWorkspaceError(
                "this workspace is open read-only (read-only media, or opened so): "
                "nothing can be appended",
                hint="copy the workspace to writable storage to record anything; reading "
                "commands (verify, log, statement, lineage, export) work as they are",
            )
        with writer(self.engine) as conn:
            size = self._lock_head(conn)
            tree = self._compact_range(conn, size)
            known = self._indexes_of(conn, [entry.leaf_hash for entry in entries])
            keys: dict[PartyId, VerifyKey] = {}
            projections = ProjectionWriter(conn)
            prefetch(projections, [entry for entry in entries if entry.leaf_hash not in known])
            leaf_rows: list[tuple[int, bytes, int, str, str, bytes]] = []
            node_rows: list[tuple[int, bytes]] = []
            indexes = []
            for entry in entries:
                existing = known.get(entry.leaf_hash)
                if existing is not None:
                    indexes.append(existing)
                    continue
                index = tree.size
                if len(entry.canonical) > self.max_entry_bytes:
                    raise InputError(
                        f"entry {entry.leaf_hash.hex()[:16]}… is {len(entry.canonical):,} bytes, "
                        f"more than this workspace's limit of {self.max_entry_bytes:,}",
                        hint="an entry states a fact, not data: register content by its digest",
                    )
                self._check_origin(entry)
                self._check_author(conn, entry, index, keys)
                apply_projections(projections, entry, index)
                self._fault("entry")
                leaf_rows.append(
                    (
                        index,
                        entry.leaf_hash,
                        leaf_prefix(entry.leaf_hash),
                        entry.kind,
                        str(entry.author),
                        entry.canonical,
                    )
                )
                node_rows.extend((node.flat, value) for node, value in tree.append(entry.leaf_hash))
                known[entry.leaf_hash] = index
                indexes.append(index)
            if leaf_rows:
                projections.flush()
                self._fault("projections")
                bulk_insert(conn, log_entries, _LEAF_COLUMNS, leaf_rows)
                bulk_insert(conn, tree_nodes, _NODE_COLUMNS, node_rows)
                if alongside is not None:
                    alongside(conn, indexes)
                self._fault("leaves")
                self._seal(conn, tree)
                self._fault("sealed")
        if leaf_rows:  # committed: let the WAL drain beside the caller's next batch
            self._checkpointer.request()
        return indexes

    def append_leaf_hashes_unsigned_for_benchmark(self, hashes: Iterable[bytes]) -> None:
        """Fill the tree from synthetic leaf hashes through the same node storage.

        Only for benchmarks that need a tree of millions of leaves quickly: the leaves
        carry no entry bytes, so such a log never passes `verify`.
        """
        with writer(self.engine) as conn:
            size = self._lock_head(conn)
            tree = self._compact_range(conn, size)
            leaf_rows: list[tuple[int, bytes, int, str, str, bytes]] = []
            node_rows: list[tuple[int, bytes]] = []
            for value in hashes:
                leaf_rows.append((tree.size, value, leaf_prefix(value), "-", "-", b""))
                node_rows.extend((node.flat, h) for node, h in tree.append(value))
            bulk_insert(conn, log_entries, _LEAF_COLUMNS, leaf_rows)
            bulk_insert(conn, tree_nodes, _NODE_COLUMNS, node_rows)
            self._seal(conn, tree)

    def _seal(self, conn: Connection, tree: CompactRange) -> None:
        """Check the stored tree against the in-memory one, sign a checkpoint, move the head."""
        assert self.log_key is not None
        root = tree.root()
        plan = merkle.root_plan(tree.size)
        nodes = _read_nodes(conn, plan)
        stored_root = merkle.fold([nodes[node] for node in plan])
        if stored_root != root:  # our own bug, never user input: refuse to sign it
            raise VerificationError(
                f"stored tree root {stored_root.hex()} differs from computed {root.hex()}; nothing written"
            )
        note = Checkpoint(self.origin, tree.size, root).sign(self.log_key)
        conn.execute(insert(checkpoints).values(tree_size=tree.size, root_hash=root, note=note))
        conn.execute(update(log_head).where(log_head.c.id == 1).values(tree_size=tree.size))

    def _lock_head(self, conn: Connection) -> int:
        query = select(log_head.c.tree_size).where(log_head.c.id == 1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        size = conn.execute(query).scalar_one()
        return int(size)

    def _compact_range(self, conn: Connection, size: int) -> CompactRange:
        plan = CompactRange.plan(size)
        nodes = _read_nodes(conn, plan)
        return CompactRange(size, [nodes[node] for node in plan])

    def _indexes_of(self, conn: Connection, hashes: Sequence[bytes]) -> dict[bytes, int]:
        return leaf_indexes_of(conn, hashes)

    def _check_origin(self, entry: SignedEntry) -> None:
        """Refuse an entry signed for another log, and a new envelope 1 entry (bound to none)."""
        if entry.origin is None:
            raise WrongLogError(
                f"entry {entry.leaf_hash.hex()[:16]}… names no log (envelope 1); "
                f"new entries must be signed for the log {self.origin!r}",
                hint=f"have {entry.author} sign it again with origin={self.origin!r}",
            )
        entry.check_origin(self.origin)

    def _check_author(
        self,
        conn: Connection,
        entry: SignedEntry,
        index: int,
        keys: dict[PartyId, VerifyKey],
    ) -> None:
        if entry.kind == PartyRegistered.KIND:
            body = entry.body_as(PartyRegistered)
            if body.party != entry.author:
                raise UnknownAuthorError(
                    f"{body.party} must sign its own registration, but {entry.author} signed it",
                    hint="sign party.registered with the new party's own key",
                )
            key = keys[body.party] = body.public_key  # later entries of this batch may be its
        else:
            cached = keys.get(entry.author)
            if cached is None:
                raw = conn.execute(
                    select(parties.c.public_key).where(parties.c.party_id == str(entry.author))
                ).scalar()
                if raw is None:
                    raise UnknownAuthorError(
                        f"entry {entry.leaf_hash.hex()[:16]}… is signed by {entry.author}, "
                        "who is not registered in this log",
                        hint="register the party (a party.registered entry signed by its key) first",
                    )
                cached = keys[entry.author] = VerifyKey(bytes(raw))
            key = cached
        if not (isinstance(entry, VerifiedEntry) and entry.signer == key):
            try:
                entry.verify(key)
            except SignatureError as exc:
                raise SignatureError(
                    f"entry {entry.leaf_hash.hex()[:16]}…: signature is not by {entry.author}'s key",
                    hint="sign the entry with the key registered for its author",
                ) from exc

    def claim(self, public: VerifyKey) -> None:
        """Record which log (origin, key) this database holds; refuse a database of another log."""
        with writer(self.engine) as conn:
            row = conn.execute(select(log_meta.c.origin, log_meta.c.log_public_key)).first()
            if row is None:
                conn.execute(
                    insert(log_meta).values(id=1, origin=self.origin, log_public_key=public.raw)
                )
            elif (row.origin, bytes(row.log_public_key)) != (self.origin, public.raw):
                raise InputError(
                    f"the database already holds the log {row.origin!r}, not {self.origin!r}",
                    hint="use an empty database, or open the workspace that owns this one",
                )

    def log_identity(self) -> tuple[str, VerifyKey] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(log_meta.c.origin, log_meta.c.log_public_key)).first()
        return None if row is None else (str(row.origin), VerifyKey(bytes(row.log_public_key)))

    # ----------------------------------------------------------------- reading

    def tree_size(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(log_head.c.tree_size)).scalar_one())

    def _check_size(self, tree_size: int | None, current: int) -> int:
        if tree_size is None:
            return current
        if not 0 <= tree_size <= current:
            raise OutOfRangeError(
                f"tree size {tree_size} is larger than the log ({current} entries)",
                hint=f"use a tree size from 1 to {current}",
            )
        return tree_size

    def entry(self, leaf_index: int) -> tuple[bytes, bytes]:
        """(leaf hash, canonical entry bytes) at `leaf_index`."""
        with self.engine.connect() as conn:
            size = int(conn.execute(select(log_head.c.tree_size)).scalar_one())
            if not 0 <= leaf_index < size:
                raise OutOfRangeError(
                    f"entry {leaf_index} is beyond the log ({size} entries)",
                    hint=f"use an index from 0 to {size - 1}" if size else "the log is empty",
                )
            row = conn.execute(
                select(log_entries.c.leaf_hash, log_entries.c.entry).where(
                    log_entries.c.leaf_index == leaf_index
                )
            ).one()
            return bytes(row.leaf_hash), bytes(row.entry)

    def root_hash(self, tree_size: int | None = None) -> bytes:
        with self.engine.connect() as conn:
            size = self._check_size(
                tree_size, int(conn.execute(select(log_head.c.tree_size)).scalar_one())
            )
            plan = merkle.root_plan(size)
            nodes = _read_nodes(conn, plan)
            return merkle.fold([nodes[node] for node in plan])

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
        """RFC 9162 inclusion proof, read from stored nodes with two queries."""
        with self.engine.connect() as conn:
            size = self._check_size(
                tree_size, int(conn.execute(select(log_head.c.tree_size)).scalar_one())
            )
            plan = merkle.inclusion_plan(leaf_index, size)
            root_plan = merkle.root_plan(size)
            wanted = merkle.plan_nodes(plan) | set(root_plan) | {NodeId(0, leaf_index)}
            nodes = _read_nodes(conn, wanted)
            return InclusionProof(
                leaf_index,
                size,
                nodes[NodeId(0, leaf_index)],
                merkle.fold([nodes[node] for node in root_plan]),
                tuple(merkle.assemble(plan, nodes)),
            )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 9162 consistency proof between two tree sizes, read from stored nodes."""
        with self.engine.connect() as conn:
            current = int(conn.execute(select(log_head.c.tree_size)).scalar_one())
            new = self._check_size(new_size, current)
            if not 0 <= old_size <= new:
                raise OutOfRangeError(
                    f"old size {old_size} must be between 0 and new size {new}",
                    hint="give the older, smaller tree size first",
                )
            plan = merkle.consistency_plan(old_size, new)
            old_plan, new_plan = merkle.root_plan(old_size), merkle.root_plan(new)
            nodes = _read_nodes(conn, merkle.plan_nodes(plan) | set(old_plan) | set(new_plan))
            return ConsistencyProof(
                old_size,
                new,
                merkle.fold([nodes[node] for node in old_plan]),
                merkle.fold([nodes[node] for node in new_plan]),
                tuple(merkle.assemble(plan, nodes)),
            )

    def latest_checkpoint(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(checkpoints.c.note).order_by(checkpoints.c.tree_size.desc()).limit(1)
            ).scalar()

    def checkpoint_at(self, tree_size: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(checkpoints.c.note).where(checkpoints.c.tree_size == tree_size)
            ).scalar()

    def party_key(self, party: PartyId) -> VerifyKey | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(parties.c.public_key).where(parties.c.party_id == str(party))
            ).scalar()
        return None if raw is None else VerifyKey(bytes(raw))

    # ------------------------------------------------ the auditor's LogSource

    @contextmanager
    def snapshot(self) -> Iterator[LogSnapshot]:
        """The log as it stands now, held still: every read through it sees one snapshot.

        One read transaction (PostgreSQL: REPEATABLE READ, read only; SQLite in WAL mode:
        one BEGIN, whose snapshot is taken at its first read and kept until it ends), so
        appends that commit meanwhile are invisible to it. `verify` judges a log that is
        being written to through one of these.
        """
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            with conn.begin():
                yield LogSnapshot(conn)

    # The same reads, each in its own transaction: enough for a log nothing writes to
    # meanwhile; mixing them on a log being appended to compares different tree sizes.

    def leaves(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        with self.snapshot() as snapshot:
            rows = list(snapshot.leaves(start, end))
        yield from rows

    def interior_nodes(self, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
        with self.snapshot() as snapshot:
            return snapshot.interior_nodes(nodes)

    def leaf_count(self) -> int:
        with self.snapshot() as snapshot:
            return snapshot.leaf_count()

    def interior_node_count(self) -> int:
        with self.snapshot() as snapshot:
            return snapshot.interior_node_count()

    def checkpoint_notes(self) -> list[tuple[int, bytes, str]]:
        with self.snapshot() as snapshot:
            return snapshot.checkpoint_notes()

    # ------------------------------------------------------------ projections

    def rebuild(self) -> int:
        """Drop every projection row and replay the log; return the number of entries replayed.

        Raises:
            VerificationError: an entry the rules refuse at its position (nothing changes).
        """
        with writer(self.engine) as conn:
            size = self._lock_head(conn)
            for table in reversed(PROJECTION_TABLES):
                conn.execute(delete(table))
            projections = ProjectionWriter(conn)
            for start, entries in self._chunks(conn, size):
                prefetch(projections, entries)
                for index, entry in enumerate(entries, start):
                    replay_entry(projections, entry, index)
                projections.flush()
            return size

    def _chunks(self, conn: Connection, size: int) -> Iterator[tuple[int, list[SignedEntry]]]:
        chunk = 4096
        for start in range(0, size, chunk):
            rows = conn.execute(
                select(log_entries.c.entry)
                .where(log_entries.c.leaf_index >= start, log_entries.c.leaf_index < start + chunk)
                .order_by(log_entries.c.leaf_index)
            ).scalars()
            yield start, [parse_entry(bytes(data)) for data in rows]

    def projection_checker(self) -> ProjectionReplay:
        return ProjectionReplay()


class LogSnapshot:
    """The auditor's `LogSource` over one open read transaction (see `LogStore.snapshot`).

    Every count and read sees the same committed state, so the tree size, the leaves, the
    tree nodes, the checkpoints and the projection rows all belong to one log.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def tree_size(self) -> int:
        return int(self.connection.execute(select(log_head.c.tree_size)).scalar_one())

    def leaves(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        rows = self.connection.execute(
            select(log_entries.c.leaf_index, log_entries.c.leaf_hash, log_entries.c.entry)
            .where(log_entries.c.leaf_index >= start, log_entries.c.leaf_index < end)
            .order_by(log_entries.c.leaf_index)
        ).all()
        for index, leaf_hash, data in rows:
            yield int(index), bytes(leaf_hash), bytes(data)

    def interior_nodes(self, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
        return _read_interior(self.connection, nodes)

    def leaf_count(self) -> int:
        return int(
            self.connection.execute(select(func.count()).select_from(log_entries)).scalar_one()
        )

    def interior_node_count(self) -> int:
        return int(
            self.connection.execute(select(func.count()).select_from(tree_nodes)).scalar_one()
        )

    def checkpoint_notes(self) -> list[tuple[int, bytes, str]]:
        rows = self.connection.execute(
            select(checkpoints.c.tree_size, checkpoints.c.root_hash, checkpoints.c.note).order_by(
                checkpoints.c.tree_size
            )
        )
        return [(int(size), bytes(root), str(note)) for size, root, note in rows]


def replay_entry(writer: ProjectionWriter, entry: SignedEntry, index: int) -> None:
    """Project one logged entry again (verify's replay, rebuild); a refusal names the entry.

    Raises:
        VerificationError: the log holds an entry its rules refuse at its position.
    """
    try:
        apply_projections(writer, entry, index)
    except RightsError as exc:
        raise VerificationError(
            f"entry {index}: {exc.message}",
            hint="the log holds an entry its rules forbid (docs/rights.md): it was written "
            "behind quotepart's back, or by a version that did not check rights",
        ) from exc
    except QuotepartError as exc:
        raise VerificationError(
            f"entry {index}: a replay of the log refuses it: {exc.message}",
            hint="the log holds an entry its rules forbid; it was written behind quotepart's back",
        ) from exc


class ProjectionReplay:
    """Replays entries into a scratch in-memory database, then compares it with the live tables.

    Fed chunk by chunk during the audit's single pass over the log, so verify reads and
    parses every entry once.
    """

    def __init__(self) -> None:
        self._scratch = create_engine("sqlite://")
        metadata.create_all(self._scratch, tables=list(PROJECTION_TABLES))
        self._conn = self._scratch.connect()
        self._transaction = self._conn.begin()
        # the scratch database holds no entries: those an allocation is recomputed from
        # stay in memory (a few per revenue, not the usage that makes up most logs)
        self._kept: dict[int, SignedEntry] = {}

    def feed(self, start: int, entries: Sequence[SignedEntry]) -> None:
        writer = ProjectionWriter(self._conn, kept=self._kept, logged=False)
        prefetch(writer, entries)
        for index, entry in enumerate(entries, start):
            replay_entry(writer, entry, index)
        writer.flush()

    def compare(self, live: LogSnapshot) -> None:
        """Raise VerificationError at the first live projection row that differs from the replay.

        `live` must be the snapshot the replayed entries were read from: the live tables are
        read in that same transaction, so rows of entries appended since are not in them.
        """
        self._transaction.commit()
        for table in PROJECTION_TABLES:
            _compare_table(table, live.connection, self._conn)

    def close(self) -> None:
        self._conn.close()
        self._scratch.dispose()

    def __enter__(self) -> ProjectionReplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _compare_table(table: Table, live: Connection, replayed: Connection) -> None:
    order = list(table.primary_key.columns)
    live_rows = iter(live.execute(select(table).order_by(*order)))
    replay_rows = iter(replayed.execute(select(table).order_by(*order)))
    position = 0
    while True:
        live_row, replay_row = next(live_rows, None), next(replay_rows, None)
        if live_row is None and replay_row is None:
            return
        live_values = None if live_row is None else tuple(_plain(v) for v in live_row)
        replay_values = None if replay_row is None else tuple(_plain(v) for v in replay_row)
        if live_values != replay_values:
            raise VerificationError(
                f"projection {table.name!r} row {position}: the database holds {live_values}, "
                f"a replay of the log gives {replay_values}",
                hint="the table was changed behind the log's back; `quotepart rebuild` restores it",
            )
        position += 1


def _plain(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


def _read_interior(conn: Connection, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Stored interior nodes among `nodes` (absent ones are simply not in the result)."""
    flats = sorted(node.flat for node in nodes)
    found: dict[NodeId, bytes] = {}
    for start in range(0, len(flats), _IN_CHUNK):
        rows = conn.execute(
            select(tree_nodes.c.node_id, tree_nodes.c.hash).where(
                tree_nodes.c.node_id.in_(flats[start : start + _IN_CHUNK])
            )
        )
        found.update((NodeId.from_flat(int(flat)), bytes(h)) for flat, h in rows)
    return found


def _read_nodes(conn: Connection, wanted: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Read perfect-subtree hashes (two primary-key IN queries): leaves, then interior nodes."""
    wanted = set(wanted)
    leaves = sorted(node.index for node in wanted if node.level == 0)
    found: dict[NodeId, bytes] = {}
    for start in range(0, len(leaves), _IN_CHUNK):
        rows = conn.execute(
            select(log_entries.c.leaf_index, log_entries.c.leaf_hash).where(
                log_entries.c.leaf_index.in_(leaves[start : start + _IN_CHUNK])
            )
        )
        found.update((NodeId(0, int(i)), bytes(h)) for i, h in rows)
    found.update(_read_interior(conn, (node for node in wanted if node.level > 0)))
    missing = wanted - set(found)
    if missing:
        node = min(missing)
        raise VerificationError(
            f"tree node level {node.level} index {node.index} is missing from the database",
            hint="run `quotepart verify` to see what else is damaged",
        )
    return found
