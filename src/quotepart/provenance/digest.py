"""Content digests of assets: one blob, a folder of files, a set of records.

A single blob is identified by its SHA-256. Folders and record sets are identified by
an RFC 9162 Merkle root over their members (the same hashing as the log), so that a
contributor can later prove that *their* file or record is in a cohort a run used
without revealing anyone else's: the proof is O(log n) hashes.

Member leaves:
* a record is its bytes as given (serialise records canonically before hashing them);
* a file of a folder is `<relative POSIX path> NUL <hex SHA-256 of its bytes>`, in
  code-point order of the paths, so renaming or moving a file changes the root.

Large record sets (millions of rows of a table) go through `PackedRecords`: one buffer
plus offsets, hashed level by level with numpy building the inputs and, above a size
threshold, in worker processes that each hash a perfect subtree (see
`merkle_root_packed`). The roots are the same as `digest_records`'.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TYPE_CHECKING

from quotepart.errors import InputError, OutOfRangeError
from quotepart.ids import Digest
from quotepart.log.merkle import (
    HASH_SIZE,
    CompactRange,
    NodeId,
    assemble,
    fold,
    inclusion_plan,
    leaf_hash,
    perfect_cover,
    verify_inclusion,
)


def _unreadable(path: Path, exc: OSError) -> InputError:
    return InputError(
        f"cannot read {path}: {exc.strerror or exc}",
        hint="check that the file exists and is readable, then register it again",
    )


def digest_file(path: str | os.PathLike[str]) -> Digest:
    """SHA-256 of a file's bytes, streamed (constant memory, C speed via hashlib.file_digest).

    Raises:
        InputError: the file is missing, unreadable or a folder.
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target} is a folder", hint="use digest_folder for folders")
    try:
        with target.open("rb", buffering=0) as handle:
            return Digest("sha256", hashlib.file_digest(handle, "sha256").hexdigest())
    except OSError as exc:
        raise _unreadable(target, exc) from exc


def digest_records(records: Iterable[bytes]) -> Digest:
    """RFC 9162 Merkle root over records (each record one leaf), as a `sha256:` digest.

    Raises:
        InputError: no records, or a record that is not bytes.
    """
    tree = CompactRange()
    for position, record in enumerate(records):
        if not isinstance(record, bytes | bytearray | memoryview):
            raise _not_bytes(position, record)
        tree.append(leaf_hash(bytes(record)))
    if tree.size == 0:
        raise _no_records()
    return Digest("sha256", tree.root().hex())


def _no_records() -> InputError:
    return InputError("a record set needs at least one record", hint="register non-empty data")


def _not_bytes(position: int, record: object) -> InputError:
    return InputError(
        f"record {position} is {type(record).__name__}, not bytes",
        hint="serialise each record (e.g. canonical JSON) before hashing",
    )


def folder_members(path: str | os.PathLike[str]) -> list[bytes]:
    """The leaves of a folder's tree: `path NUL sha256-hex` per regular file, sorted by path."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder", hint="pass the folder that holds the files")
    members = []
    for file in sorted(
        (p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()
    ):
        relative = file.relative_to(root).as_posix()
        members.append(relative.encode() + b"\0" + digest_file(file).hex.encode())
    if not members:
        raise InputError(f"{root} holds no files", hint="register a folder with at least one file")
    return members


def digest_folder(path: str | os.PathLike[str]) -> Digest:
    """Merkle root over a folder's files (see `folder_members`)."""
    return digest_records(folder_members(path))


@dataclass(frozen=True, slots=True)
class MemberProof:
    """Proof that one member (record or file leaf) is in a record set or folder."""

    member: bytes
    index: int
    count: int
    proof: tuple[bytes, ...]

    def verify(self, root: Digest) -> None:
        """Raise VerificationError unless the member is at `index` of the set with `root`."""
        verify_inclusion(
            leaf_hash(self.member), self.index, self.count, self.proof, bytes.fromhex(root.hex)
        )


def prove_member(members: Sequence[bytes], index: int) -> MemberProof:
    """Inclusion proof of `members[index]`, computed from the members (O(n) hashing, once).

    Raises:
        OutOfRangeError: `index` is not a member position.
    """
    plan = inclusion_plan(index, len(members))
    nodes: dict[NodeId, bytes] = {}
    tree = CompactRange()
    for position, member in enumerate(members):
        value = leaf_hash(member)
        nodes[NodeId(0, position)] = value
        nodes.update(tree.append(value))
    return MemberProof(bytes(members[index]), index, len(members), tuple(assemble(plan, nodes)))


# --- Packed record sets: the same roots, without a Python object per record ---------------

# numpy is imported by the functions that pack and hash records: opening a workspace
# (which imports this module) then costs no numpy.
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    _Bytes = npt.NDArray[np.uint8]
    _Offsets = npt.NDArray[np.int64]

_SHA256 = hashlib.sha256
_DIGEST = type(hashlib.sha256()).digest  # unbound, so map() calls it without Python frames
_LEAF_PREFIX = b"\x00"

_BLOCK = 1 << 12
"""Leaves hashed per batch: big enough that numpy's per-call cost vanishes (~2 %), small
enough that a batch of 248-byte records (1 MB) stays near one core's L2 between the copy
and the hashing (8192 measured ~20 % slower than 2048-4096 with two workers on 248 B)."""

_MAX_LENGTHS_PER_BLOCK_SHARE = 32
"""Records are grouped by length when a block holds at most 1/32 as many lengths as
records; with more lengths, per-group numpy calls cost more than slicing record by record."""

_CHUNK_MAX = 1 << 18
"""Largest perfect subtree one worker task hashes: tens of tasks for 10M records, so that
two or more workers finish together and progress moves."""

PARALLEL_ABOVE = 131_072
"""Record count above which `merkle_root_packed` uses worker processes (measured on 2
cores: starting and stopping two workers costs about as much as hashing 50-100k records)."""


@dataclass(frozen=True, slots=True, eq=False)
class PackedRecords:
    """Records as one buffer plus offsets: record i is `buffer[offsets[i]:offsets[i + 1]]`.

    A table of 10 million rows as 10 million `bytes` objects costs ~0.5 GB of headers and a
    Python loop per record; packed, it is one allocation that numpy and worker processes can
    slice. `offsets` is stored as a read-only int64 copy (unless it already is one), and
    two instances compare by identity: comparing gigabytes is rarely what `==` should do.

        PackedRecords.fixed_width(table.tobytes(), width=table.dtype.itemsize)

    Raises:
        InputError: the buffer is not bytes, or offsets are not n + 1 non-decreasing
            integers from 0 to len(buffer).
    """

    buffer: bytes
    offsets: _Offsets

    def __post_init__(self) -> None:
        import numpy as np

        if not isinstance(self.buffer, bytes):
            raise InputError(
                f"packed records need a bytes buffer, not {type(self.buffer).__name__}",
                hint="pass bytes(...) or array.tobytes()",
            )
        offsets = np.asarray(self.offsets)
        if offsets.ndim != 1 or offsets.size == 0 or offsets.dtype.kind not in "iu":
            raise InputError(
                f"offsets must be a 1-D integer array of n + 1 positions, got {offsets.dtype} "
                f"with shape {offsets.shape}",
                hint="offsets[i] is where record i starts; the last one is len(buffer)",
            )
        if offsets.dtype != np.int64 or offsets.flags.writeable:
            offsets = offsets.astype(np.int64)  # a private copy, so nobody can change it later
            offsets.flags.writeable = False
        if offsets[0] != 0 or offsets[-1] != len(self.buffer):
            raise InputError(
                f"offsets run from {offsets[0]} to {offsets[-1]}, expected 0 to {len(self.buffer)}",
                hint="the first offset is 0 and the last is the buffer's length",
            )
        steps = np.diff(offsets)
        if steps.size and int(steps.min()) < 0:
            first = int(np.argmax(steps < 0))
            raise InputError(
                f"offsets decrease at record {first}: {offsets[first]} then {offsets[first + 1]}",
                hint="records are stored in order; offsets never decrease",
            )
        object.__setattr__(self, "offsets", offsets)

    @classmethod
    def fixed_width(cls, buffer: bytes, width: int) -> PackedRecords:
        """Records of `width` bytes each, back to back (a packed table of fixed-size rows).

        Raises:
            InputError: `width` < 1, or the buffer is not a whole number of records.
        """
        import numpy as np

        if width < 1 or len(buffer) % width:
            raise InputError(
                f"{len(buffer)} bytes are not a whole number of {width}-byte records",
                hint="width is the size of one record in bytes, at least 1",
            )
        offsets = np.arange(0, len(buffer) + 1, width, dtype=np.int64)
        offsets.flags.writeable = False
        return cls(buffer, offsets)

    @classmethod
    def from_records(cls, records: Iterable[bytes]) -> PackedRecords:
        """Pack records given one by one (copies them once).

        Raises:
            InputError: a record that is not bytes.
        """
        import numpy as np

        parts = []
        for position, record in enumerate(records):
            if not isinstance(record, bytes | bytearray | memoryview):
                raise _not_bytes(position, record)
            parts.append(record)
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([memoryview(part).nbytes for part in parts], out=offsets[1:])
        offsets.flags.writeable = False
        return cls(b"".join(parts), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def record(self, index: int) -> bytes:
        """Record `index` (0-based) as bytes.

        Raises:
            OutOfRangeError: no record at `index`.
        """
        _check_index(index, len(self))
        return self.buffer[int(self.offsets[index]) : int(self.offsets[index + 1])]


def _check_index(index: int, count: int) -> None:
    if not 0 <= index < count:
        raise OutOfRangeError(
            f"record index {index} is not in a set of {count} records",
            hint=f"use an index from 0 to {count - 1}" if count else "the record set is empty",
        )


def _hash_rows(rows: _Bytes) -> bytes:
    """SHA-256 of every row of a C-contiguous 2-D uint8 array, digests concatenated.

    A void-dtype view turns the rows into `bytes` objects in one C call, and `map` keeps
    the per-hash work in C: what remains is hashlib's own cost per call.
    """
    items = rows.view(f"V{rows.shape[1]}").ravel().tolist()
    return b"".join(map(_DIGEST, map(_SHA256, items)))


def _prefixed(rows: _Bytes, prefix: int) -> _Bytes:
    import numpy as np

    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = prefix
    out[:, 1:] = rows
    return out


def _leaf_hashes(data: _Bytes, offsets: _Offsets, lo: int, hi: int) -> bytes:
    """RFC 9162 leaf hashes of records [lo, hi), concatenated (32 bytes each)."""
    import numpy as np

    bounds = offsets[lo : hi + 1]
    lengths = np.diff(bounds)
    width = int(lengths[0])
    if bool((lengths == width).all()):
        rows = data[int(bounds[0]) : int(bounds[-1])].reshape(hi - lo, width)
        return _hash_rows(_prefixed(rows, 0))
    order = np.argsort(lengths, kind="stable")
    cuts = np.flatnonzero(np.diff(lengths[order])) + 1
    if (cuts.size + 1) * _MAX_LENGTHS_PER_BLOCK_SHARE > hi - lo:
        return _leaf_hashes_one_by_one(data, bounds)
    return _leaf_hashes_by_length(data, bounds, lengths, np.split(order, cuts))


def _leaf_hashes_by_length(
    data: _Bytes, bounds: _Offsets, lengths: _Offsets, groups: list[npt.NDArray[np.intp]]
) -> bytes:
    """Leaf hashes of records of a few distinct lengths: each length hashed as one batch."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    hashes = np.empty((len(lengths), HASH_SIZE), dtype=np.uint8)
    starts = bounds[:-1]
    for group in groups:
        width = int(lengths[group[0]])
        if width:
            rows = sliding_window_view(data, width)[starts[group]]  # copies only these rows
        else:
            rows = np.empty((len(group), 0), dtype=np.uint8)
        digests = _hash_rows(_prefixed(rows, 0))
        hashes[group] = np.frombuffer(digests, dtype=np.uint8).reshape(-1, HASH_SIZE)
    return hashes.tobytes()


def _leaf_hashes_one_by_one(data: _Bytes, bounds: _Offsets) -> bytes:
    """Leaf hashes of records of many lengths: one slice each (slower, still no Python loop)."""
    view = data.data  # a memoryview: slicing it copies nothing
    slices = map(slice, bounds[:-1].tolist(), bounds[1:].tolist())
    leaves = map(_LEAF_PREFIX.__add__, map(view.__getitem__, slices))
    return b"".join(map(_DIGEST, map(_SHA256, leaves)))


def _reduce(hashes: bytes) -> bytes:
    """Root of a perfect subtree from its 2^k node hashes (concatenated), a level at a time."""
    import numpy as np

    while len(hashes) > HASH_SIZE:
        pairs = np.frombuffer(hashes, dtype=np.uint8).reshape(-1, 2 * HASH_SIZE)
        hashes = _hash_rows(_prefixed(pairs, 1))
    return hashes


def _perfect_root(
    data: _Bytes,
    offsets: _Offsets,
    start: int,
    size: int,
    done: Callable[[int], None] | None,
    leaves: list[bytes] | None = None,
) -> bytes:
    """Root of the perfect subtree over records [start, start + size), size a power of two.

    With `leaves`, the leaf hashes (32 bytes per record, in order) are appended to it too.
    """
    roots = []
    for block in range(start, start + size, _BLOCK):
        width = min(_BLOCK, size)
        hashes = _leaf_hashes(data, offsets, block, block + width)
        if leaves is not None:
            leaves.append(hashes)
        roots.append(_reduce(hashes))
        if done is not None:
            done(width)
    return roots[0] if len(roots) == 1 else _reduce(b"".join(roots))


def _as_array(records: PackedRecords) -> _Bytes:
    import numpy as np

    return np.frombuffer(records.buffer, dtype=np.uint8)


_inherited: PackedRecords | None = None
"""The records a forked worker inherited from its parent (set in the worker only)."""


def _adopt(records: PackedRecords) -> None:
    global _inherited
    _inherited = records


def _inherited_root(start: int, size: int, keep: bool) -> tuple[bytes, bytes]:
    """Worker task when forked: the records are already in this process's memory.
    Returns the subtree's root and, when `keep`, its leaf hashes (else b"")."""
    assert _inherited is not None, "worker started without records"
    leaves: list[bytes] | None = [] if keep else None
    root = _perfect_root(_as_array(_inherited), _inherited.offsets, start, size, None, leaves)
    return root, b"".join(leaves or ())


def _sliced_root(buffer: bytes, offsets: _Offsets, keep: bool) -> tuple[bytes, bytes]:
    """Worker task when not forked: this task's records arrive with the task (rebased)."""
    import numpy as np

    leaves: list[bytes] | None = [] if keep else None
    data = np.frombuffer(buffer, dtype=np.uint8)
    root = _perfect_root(data, offsets, 0, len(offsets) - 1, None, leaves)
    return root, b"".join(leaves or ())


def _pool_context() -> tuple[BaseContext, bool]:
    """A start method for the workers, and whether they inherit the records.

    fork shares the (gigabytes of) records copy-on-write for free, but forking a process
    that runs other threads can deadlock the child; then the workers start clean
    (forkserver, or spawn where that is missing) and each task carries its slice.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork"), True
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn"), False


def _tasks(nodes: Sequence[NodeId], workers: int, total: int) -> list[tuple[int, int, int]]:
    """(node position, first record, size): every node cut into aligned perfect chunks."""
    target = max(_BLOCK, total // (workers * 8))
    chunk = min(_CHUNK_MAX, 1 << (target.bit_length() - 1))
    tasks: list[tuple[int, int, int]] = []
    for position, node in enumerate(nodes):
        start, size = node.index << node.level, 1 << node.level
        step = min(size, chunk)
        tasks.extend((position, first, step) for first in range(start, start + size, step))
    return tasks


def _parallel_roots(
    records: PackedRecords,
    nodes: Sequence[NodeId],
    workers: int,
    report: Callable[[int], None],
    leaves: list[bytes] | None,
) -> list[bytes]:
    """Roots of `nodes`, hashed by worker processes in chunks, then combined here (and
    their leaf hashes, in record order, appended to `leaves` unless it is None)."""
    total = sum(1 << node.level for node in nodes)
    tasks = _tasks(nodes, workers, total)
    context, inherit = _pool_context()
    pieces: dict[int, tuple[bytes, bytes]] = {}
    running: dict[Future[tuple[bytes, bytes]], int] = {}
    keep = leaves is not None
    processes = min(workers, len(tasks))
    if inherit:
        pool = ProcessPoolExecutor(processes, context, initializer=_adopt, initargs=(records,))
    else:
        pool = ProcessPoolExecutor(processes, context)
    with pool:

        def collect(finished: set[Future[tuple[bytes, bytes]]]) -> None:
            for future in finished:
                number = running.pop(future)
                pieces[number] = future.result()
                report(tasks[number][2])

        for number, (_, first, size) in enumerate(tasks):
            if len(running) >= 2 * workers:  # bounds the slices waiting in memory
                collect(wait(running, return_when=FIRST_COMPLETED).done)
            if inherit:
                future = pool.submit(_inherited_root, first, size, keep)
            else:
                lo, hi = int(records.offsets[first]), int(records.offsets[first + size])
                rebased = records.offsets[first : first + size + 1] - lo
                future = pool.submit(_sliced_root, records.buffer[lo:hi], rebased, keep)
            running[future] = number
        while running:
            collect(wait(running, return_when=FIRST_COMPLETED).done)
    per_node: list[list[bytes]] = [[] for _ in nodes]
    for number, (position, _, _) in enumerate(tasks):
        per_node[position].append(pieces[number][0])
        if leaves is not None:
            leaves.append(pieces[number][1])
    return [_reduce(b"".join(chunks)) for chunks in per_node]


def _subtree_roots(
    records: PackedRecords,
    nodes: Sequence[NodeId],
    *,
    workers: int | None,
    parallel_above: int,
    progress: Callable[[int, int], None] | None,
    leaves: list[bytes] | None = None,
) -> list[bytes]:
    """Roots of the perfect subtrees `nodes`, in process or in workers (their leaf hashes
    appended to `leaves`, in record order, unless it is None)."""
    count = (os.cpu_count() or 1) if workers is None else workers
    if count < 1:
        raise InputError(f"workers must be at least 1, got {count}", hint="or None: all cores")
    total = sum(1 << node.level for node in nodes)
    done = 0

    def report(records_done: int) -> None:
        nonlocal done
        done += records_done
        if progress is not None:
            progress(done, total)

    if count > 1 and total > parallel_above:
        return _parallel_roots(records, nodes, count, report, leaves)
    data = _as_array(records)
    return [
        _perfect_root(
            data, records.offsets, node.index << node.level, 1 << node.level, report, leaves
        )
        for node in nodes
    ]


def merkle_root_packed(
    records: PackedRecords,
    *,
    workers: int | None = None,
    parallel_above: int = PARALLEL_ABOVE,
    progress: Callable[[int, int], None] | None = None,
) -> Digest:
    """RFC 9162 Merkle root of packed records: equal to `digest_records` over the same records.

    The leaves are cut into the perfect subtrees of RFC 9162's split (powers of two, left
    to right); above `parallel_above` records, `workers` processes (None: every core; 1:
    this process) hash chunks of them, and their roots are folded here. `progress(done,
    total)` is called as records are hashed.

        root = merkle_root_packed(PackedRecords.fixed_width(table.tobytes(), 64))

    Raises:
        InputError: no records, or workers < 1.
    """
    return _root(records, workers, parallel_above, progress, None)


def merkle_root_and_leaves(
    records: PackedRecords,
    *,
    workers: int | None = None,
    parallel_above: int = PARALLEL_ABOVE,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Digest, bytes]:
    """`merkle_root_packed`, and the RFC 9162 leaf hash of every record (32 bytes each,
    concatenated in record order) that the root was built from: hashed once, kept.

    The leaf hashes are the records' exact keys (`quotepart.provenance.overlap`).
    """
    leaves: list[bytes] = []
    root = _root(records, workers, parallel_above, progress, leaves)
    return root, b"".join(leaves)


def _root(
    records: PackedRecords,
    workers: int | None,
    parallel_above: int,
    progress: Callable[[int, int], None] | None,
    leaves: list[bytes] | None,
) -> Digest:
    if len(records) == 0:
        raise _no_records()
    nodes = perfect_cover(0, len(records))
    roots = _subtree_roots(
        records,
        nodes,
        workers=workers,
        parallel_above=parallel_above,
        progress=progress,
        leaves=leaves,
    )
    return Digest("sha256", fold(roots).hex())


def prove_record_packed(
    records: PackedRecords,
    index: int,
    *,
    workers: int | None = None,
    parallel_above: int = PARALLEL_ABOVE,
) -> MemberProof:
    """Inclusion proof of record `index`; verifies with `MemberProof.verify(root)`.

    The proof's sibling subtrees cover every other record, so this hashes them all once,
    through the same fast path (and workers) as `merkle_root_packed`.

    Raises:
        OutOfRangeError: no record at `index`.
    """
    _check_index(index, len(records))
    plan = inclusion_plan(index, len(records))
    nodes = sorted({node for cover in plan for node in cover})
    roots = _subtree_roots(
        records, nodes, workers=workers, parallel_above=parallel_above, progress=None
    )
    proof = assemble(plan, dict(zip(nodes, roots, strict=True)))
    return MemberProof(records.record(index), index, len(records), tuple(proof))


__all__ = [
    "PARALLEL_ABOVE",
    "MemberProof",
    "PackedRecords",
    "digest_file",
    "digest_folder",
    "digest_records",
    "folder_members",
    "merkle_root_and_leaves",
    "merkle_root_packed",
    "prove_member",
    "prove_record_packed",
]
