"""Content digests of assets: one blob, a folder of files, a set of records.

A single blob is identified by its SHA-256. Folders and record sets are identified by
an RFC 9162 Merkle root over their members (the same hashing as the log), so that a
contributor can later prove that *their* file or record is in a cohort a run used
without revealing anyone else's: the proof is O(log n) hashes.

Member leaves:
* a record is its bytes as given (serialise records canonically before hashing them);
* a file of a folder is `<relative POSIX path> NUL <hex SHA-256 of its bytes>`, in
  code-point order of the paths, so renaming or moving a file changes the root.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from quotepart.errors import InputError
from quotepart.ids import Digest
from quotepart.log.merkle import (
    CompactRange,
    NodeId,
    assemble,
    inclusion_plan,
    leaf_hash,
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
            raise InputError(
                f"record {position} is {type(record).__name__}, not bytes",
                hint="serialise each record (e.g. canonical JSON) before hashing",
            )
        tree.append(leaf_hash(bytes(record)))
    if tree.size == 0:
        raise InputError("a record set needs at least one record", hint="register non-empty data")
    return Digest("sha256", tree.root().hex())


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


__all__ = [
    "MemberProof",
    "digest_file",
    "digest_folder",
    "digest_records",
    "folder_members",
    "prove_member",
]
