"""The auditor's path: re-derive everything the log claims from its raw bytes.

It needs only a `LogSource` (the store implements one; an auditor with an export
could write another) and the log's note verifier key. It checks, in one streaming
pass over the leaves:

* every entry parses as canonical JSON of a known kind and version, and is meant for
  this log (its origin, when it names one, is the checkpoints' origin);
* every stored leaf hash equals SHA-256(0x00 ‖ entry);
* every signature verifies under the author's key, and every author was registered
  before (or, for `party.registered`, by) the entry;
* every stored interior tree node equals the recomputed one, and none is missing or extra;
* every stored checkpoint is signed by the log key and names the recomputed root at
  its size, and the newest covers the whole log.

Signature checks dominate (≈ 7k/s per core), so they are batched and fanned out over
processes; everything else is one sequential read of the tables.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from quotepart.errors import QuotepartError, VerificationError
from quotepart.ids import PartyId
from quotepart.log.checkpoint import Checkpoint, NoteVerifier
from quotepart.log.entry import SignedEntry, parse_entry
from quotepart.log.keys import VerifyKey, verify_batch
from quotepart.log.kinds import PartyRegistered
from quotepart.log.merkle import CompactRange, NodeId, leaf_hash

CHUNK_SIZE = 4096


class LogSource(Protocol):
    """Read access to a stored log, in the shapes the auditor needs.

    Every read must see the same state of the log: a source over a database that others
    append to reads through one snapshot (the store's `LogStore.snapshot()`), or the
    audit compares counts and checkpoints of different tree sizes and reports tampering.
    """

    def tree_size(self) -> int: ...

    def leaves(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        """(leaf index, stored leaf hash, canonical entry bytes) for start <= index < end, in order."""
        ...

    def interior_nodes(self, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
        """The stored hashes of those of `nodes` that are stored."""
        ...

    def leaf_count(self) -> int: ...

    def interior_node_count(self) -> int: ...

    def checkpoint_notes(self) -> list[tuple[int, bytes, str]]:
        """(tree size, stored root hash, signed note) of every stored checkpoint."""
        ...


@dataclass
class AuditReport:
    tree_size: int = 0
    root_hash: bytes = b""
    signatures_checked: int = 0
    interior_nodes_checked: int = 0
    checkpoints_checked: int = 0
    parties: dict[PartyId, VerifyKey] = field(default_factory=dict)
    # filled in by the workspace, which recomputes usage batches from their events
    usage_batches_checked: int = 0
    usage_events_checked: int = 0
    usage_bills_checked: int = 0


def audit(
    source: LogSource,
    verifier: NoteVerifier,
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    observe: Callable[[int, Sequence[SignedEntry]], None] | None = None,
) -> AuditReport:
    """Verify the whole log; return what was checked, or raise VerificationError at the first fault.

    `observe(start, entries)` sees each checked chunk of parsed entries, in order, so a
    caller can replay them (into projections) without reading the log a second time.
    """
    size = source.tree_size()
    stored_leaves = source.leaf_count()
    if stored_leaves > size:
        raise VerificationError(
            f"the log holds {stored_leaves} entries but its head says {size}: "
            f"entry {size} was added behind the log's back"
        )
    checkpoints = _open_checkpoints(source, verifier, size)
    wanted_roots = {checkpoint.tree_size for checkpoint in checkpoints}
    report = AuditReport(tree_size=size)
    tree = CompactRange()
    roots = {0: tree.root()} if 0 in wanted_roots else {}
    workers = workers or min(os.cpu_count() or 1, 8)
    executor: Executor | None = (
        ProcessPoolExecutor(workers) if workers > 1 and size > CHUNK_SIZE else None
    )
    signatures = _SignatureQueue(executor, workers, report)
    try:
        for start in range(0, size, CHUNK_SIZE):
            end = min(start + CHUNK_SIZE, size)
            entries = _check_leaves(source, start, end, verifier.name)
            signatures.submit(start, entries, _signature_batch(entries, start, report))
            recomputed: dict[NodeId, bytes] = {}
            for index, entry in enumerate(entries, start):
                recomputed.update(tree.append(entry.leaf_hash))
                if index + 1 in wanted_roots:
                    roots[index + 1] = tree.root()
            _check_nodes(source.interior_nodes(recomputed), recomputed)
            report.interior_nodes_checked += len(recomputed)
            if observe is not None:
                observe(start, entries)
            if progress:
                progress(end, size)
        signatures.drain()
    except VerificationError:
        signatures.drain()  # a bad signature in an earlier chunk is the first fault
        raise
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    stored_nodes = source.interior_node_count()
    if stored_nodes != report.interior_nodes_checked:
        raise VerificationError(
            f"the tree table holds {stored_nodes} interior nodes, a log of {size} entries has "
            f"{report.interior_nodes_checked}: nodes were added behind the log's back"
        )
    for checkpoint in checkpoints:
        if roots[checkpoint.tree_size] != checkpoint.root_hash:
            raise VerificationError(
                f"checkpoint at tree size {checkpoint.tree_size} signs root "
                f"{checkpoint.root_hash.hex()}, but the entries give {roots[checkpoint.tree_size].hex()}"
            )
        report.checkpoints_checked += 1
    report.root_hash = tree.root()
    return report


def _open_checkpoints(source: LogSource, verifier: NoteVerifier, size: int) -> list[Checkpoint]:
    opened = []
    notes = source.checkpoint_notes()
    for stored_size, stored_root, note in notes:
        try:
            checkpoint = Checkpoint.open(note, verifier)
        except QuotepartError as exc:
            raise VerificationError(f"checkpoint at tree size {stored_size}: {exc}") from exc
        if (checkpoint.tree_size, checkpoint.root_hash) != (stored_size, stored_root):
            raise VerificationError(
                f"checkpoint row for tree size {stored_size} does not match its signed note "
                f"(note says size {checkpoint.tree_size}, root {checkpoint.root_hash.hex()})"
            )
        if checkpoint.tree_size > size:
            raise VerificationError(
                f"checkpoint signs tree size {checkpoint.tree_size}, but the log has only {size} "
                "entries: entries were deleted"
            )
        opened.append(checkpoint)
    if size and (not opened or max(c.tree_size for c in opened) != size):
        raise VerificationError(
            f"no signed checkpoint covers the whole log of {size} entries: "
            "entries were added behind the log's back"
        )
    return opened


def _check_leaves(source: LogSource, start: int, end: int, origin: str) -> list[SignedEntry]:
    entries = []
    expected_index = start
    for index, stored_hash, data in source.leaves(start, end):
        if index != expected_index:
            raise VerificationError(f"entry {expected_index} is missing from the log")
        try:
            entry = parse_entry(data)
        except QuotepartError as exc:
            raise VerificationError(f"entry {index}: {exc}") from exc
        if leaf_hash(data) != stored_hash:
            raise VerificationError(
                f"entry {index}: stored leaf hash {stored_hash.hex()} is not the hash of its bytes "
                f"({leaf_hash(data).hex()}): the entry was changed"
            )
        if entry.origin is not None and entry.origin != origin:
            raise VerificationError(
                f"entry {index}: meant for log {entry.origin!r}, not {origin!r}",
                hint="it was signed for another log and put into this one behind its back",
            )
        entries.append(entry)
        expected_index += 1
    if expected_index != end:
        raise VerificationError(f"entry {expected_index} is missing from the log")
    return entries


def _signature_batch(
    entries: Sequence[SignedEntry], start: int, report: AuditReport
) -> list[tuple[bytes, bytes, bytes]]:
    """(public key, signature, message) per entry; authors must be registered before they sign."""
    batch: list[tuple[bytes, bytes, bytes]] = []
    for index, entry in enumerate(entries, start):
        if entry.kind == PartyRegistered.KIND:
            body = entry.body_as(PartyRegistered)
            if body.party != entry.author:
                raise VerificationError(
                    f"entry {index}: {body.party} must be registered by itself, not by {entry.author}"
                )
            if body.party in report.parties:
                raise VerificationError(f"entry {index}: {body.party} is registered twice")
            report.parties[body.party] = body.public_key
        key = report.parties.get(entry.author)
        if key is None:
            raise VerificationError(f"entry {index}: author {entry.author} was never registered")
        batch.append((key.raw, entry.signature, entry.signed_message))
    return batch


class _SignatureQueue:
    """Signature checks run in worker processes while this one reads and parses the next
    chunks; results are taken in log order, so the first bad entry is still the one named."""

    def __init__(self, executor: Executor | None, workers: int, report: AuditReport) -> None:
        self._executor = executor
        self._workers = workers
        self._report = report
        self._pending: deque[
            tuple[int, Sequence[SignedEntry], list[tuple[int, Future[list[int]]]]]
        ] = deque()

    def submit(
        self, start: int, entries: Sequence[SignedEntry], batch: list[tuple[bytes, bytes, bytes]]
    ) -> None:
        if self._executor is None:
            self._raise_first(start, entries, verify_batch(batch))
            self._report.signatures_checked += len(batch)
            return
        step = max(1, -(-len(batch) // self._workers))
        futures = [
            (offset, self._executor.submit(verify_batch, batch[offset : offset + step]))
            for offset in range(0, len(batch), step)
        ]
        self._pending.append((start, entries, futures))
        while len(self._pending) > 2:
            self._resolve_oldest()

    def drain(self) -> None:
        while self._pending:
            self._resolve_oldest()

    def _resolve_oldest(self) -> None:
        start, entries, futures = self._pending.popleft()
        failed = [offset + position for offset, future in futures for position in future.result()]
        self._raise_first(start, entries, failed)
        self._report.signatures_checked += len(entries)

    @staticmethod
    def _raise_first(start: int, entries: Sequence[SignedEntry], failed: list[int]) -> None:
        if failed:
            position = min(failed)
            raise VerificationError(
                f"entry {start + position}: signature does not verify under the key of "
                f"{entries[position].author}"
            )


def _check_nodes(stored: dict[NodeId, bytes], recomputed: dict[NodeId, bytes]) -> None:
    """Every recomputed node must be stored as is; extra stored nodes are caught by the count."""
    for node, expected in sorted(recomputed.items()):
        found = stored.get(node)
        if found != expected:
            what = "missing" if found is None else f"{found.hex()} instead of {expected.hex()}"
            first, last = node.index << node.level, ((node.index + 1) << node.level) - 1
            raise VerificationError(
                f"tree node level {node.level} index {node.index} (leaves {first}-{last}) is {what}: "
                "entries in that range were reordered or replaced, or the tree table was altered"
            )
