"""RFC 9162 Merkle tree hashing, proofs and verification: pure functions over bytes.

Storage never recomputes the tree. It keeps every *perfect* subtree hash, addressed as
`NodeId(level, index)` (the node covering leaves [index·2^level, (index+1)·2^level)).
Any RFC 9162 range hash — a root, a proof element — is a right fold over at most
log2(n) perfect subtrees (`perfect_cover`), so a proof is a *plan* of node ids that the
store reads in one query, then `fold` turns into hashes. Appends extend a `CompactRange`
(the perfect subtrees on the right edge), which yields the new interior nodes to store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from quotepart.errors import OutOfRangeError, VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = HASH()


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d0}) = HASH(0x00 || d0)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: HASH(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    """The perfect subtree covering leaves [index * 2^level, (index + 1) * 2^level)."""

    level: int
    index: int

    @property
    def flat(self) -> int:
        """In-order position in the complete binary tree: leaves are even, interior nodes odd.

        New nodes get numbers just behind twice the tree size, so storing them by this
        one integer key appends near the end of a B-tree instead of all over it.
        """
        return (self.index << (self.level + 1)) + (1 << self.level) - 1

    @classmethod
    def from_flat(cls, flat: int) -> NodeId:
        level = ((flat + 1) & -(flat + 1)).bit_length() - 1  # trailing one bits of `flat`
        return cls(level, flat >> (level + 1))


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (RFC 9162's split point), for n >= 2."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_cover(start: int, end: int) -> list[NodeId]:
    """Perfect subtrees, left to right, whose right fold is MTH(D[start:end]).

    Valid for the ranges RFC 9162's recursion produces: `start` is a multiple of the
    largest power of two not above `end - start`.
    """
    cover = []
    while start < end:
        size = end - start
        width = 1 << (size.bit_length() - 1)  # largest power of two <= size
        level = width.bit_length() - 1
        cover.append(NodeId(level, start >> level))
        start += width
    return cover


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its perfect cover: h1 ∘ (h2 ∘ (… ∘ hk))."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


ProofPlan = list[list[NodeId]]
"""One perfect cover per proof element, in proof order."""


def root_plan(tree_size: int) -> list[NodeId]:
    return perfect_cover(0, tree_size)


def inclusion_plan(leaf_index: int, tree_size: int) -> ProofPlan:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]) as covers, leaf's sibling first."""
    if not 0 <= leaf_index < tree_size:
        raise OutOfRangeError(
            f"leaf index {leaf_index} is not in a tree of size {tree_size}",
            hint=f"use an index from 0 to {tree_size - 1}" if tree_size else "the log is empty",
        )
    plan: ProofPlan = []
    start, end, m = 0, tree_size, leaf_index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            plan.append(perfect_cover(start + k, end))
            end = start + k
        else:
            plan.append(perfect_cover(start, start + k))
            start, m = start + k, m - k
    plan.reverse()
    return plan


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true), as covers."""
    if not 0 <= old_size <= new_size:
        raise OutOfRangeError(
            f"no consistency proof from size {old_size} to size {new_size}",
            hint="the old size must be between 0 and the new size",
        )
    if old_size in (0, new_size):
        return []
    plan: ProofPlan = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                plan.append(perfect_cover(start, end))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            plan.append(perfect_cover(start + k, end))
            end = start + k
        else:
            plan.append(perfect_cover(start, start + k))
            start, m, complete = start + k, m - k, False
    plan.reverse()
    return plan


def plan_nodes(plan: ProofPlan) -> set[NodeId]:
    return {node for cover in plan for node in cover}


def assemble(plan: ProofPlan, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    return [fold([nodes[node] for node in cover]) for cover in plan]


def _path_steps(
    fn: int, sn: int, proof: Iterable[bytes], what: str
) -> Iterator[tuple[bytes, bool]]:
    """Each proof node with whether it is a left sibling, walking node `fn` up to the root.

    The walk shared by RFC 9162 §2.1.3.2 and §2.1.4.2 (`fn` the node's index, `sn` the
    tree's last index at that level). Raise VerificationError, naming `what`, when the
    proof has more or fewer nodes than that path.
    """
    for node in proof:
        if sn == 0:
            raise VerificationError(f"{what} is too long")
        left = bool(fn & 1) or fn == sn
        if left and not fn & 1:  # RFC 9162: shift right until LSB(fn) is set or fn is 0
            while True:
                fn, sn = fn >> 1, sn >> 1
                if fn & 1 or fn == 0:
                    break
        yield node, left
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(f"{what} is too short")


def verify_inclusion(
    leaf: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise VerificationError unless `leaf` (a leaf hash) is at `leaf_index` (RFC 9162 §2.1.3.2)."""
    if not 0 <= leaf_index < tree_size:
        raise VerificationError(f"leaf index {leaf_index} is not in a tree of size {tree_size}")
    r = leaf
    what = f"inclusion proof for leaf {leaf_index}/{tree_size}"
    for p, left in _path_steps(leaf_index, tree_size - 1, proof, what):
        r = node_hash(p, r) if left else node_hash(r, p)
    if r != root:
        raise VerificationError(
            f"leaf {leaf_index}/{tree_size}: proof gives root {r.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise VerificationError unless the tree of `old_size` is a prefix of `new_size` (§2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        raise VerificationError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        if proof:
            raise VerificationError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise VerificationError(
                f"same size {old_size} but different roots {old_root.hex()} and {new_root.hex()}"
            )
        return
    if old_size == 0:
        if proof:
            raise VerificationError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise VerificationError(f"empty consistency proof from {old_size} to {new_size}")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c, left in _path_steps(fn, sn, path[1:], f"consistency proof {old_size}->{new_size}"):
        if left:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    if fr != old_root:
        raise VerificationError(
            f"consistency proof {old_size}->{new_size} gives old root {fr.hex()}, expected {old_root.hex()}"
        )
    if sr != new_root:
        raise VerificationError(
            f"consistency proof {old_size}->{new_size} gives new root {sr.hex()}, expected {new_root.hex()}"
        )


class CompactRange:
    """The perfect subtrees on the right edge of a tree: enough to append and to take the root.

    `append` returns the interior nodes it completed, which is all storage must write:
    one leaf costs on average one interior node and O(log n) hashing in the worst case.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} has {size.bit_count()} hashes")
        self.size = size
        self._hashes = list(hashes)

    @staticmethod
    def plan(size: int) -> list[NodeId]:
        """The node ids to read to resume appending at `size` (its root cover)."""
        return perfect_cover(0, size)

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        """Add a leaf hash; return the completed interior nodes (level >= 1)."""
        created = []
        h, level, index = leaf, 0, self.size
        self.size += 1
        while index & 1:
            h = node_hash(self._hashes.pop(), h)
            level, index = level + 1, index >> 1
            created.append((NodeId(level, index), h))
        self._hashes.append(h)
        return created

    def root(self) -> bytes:
        return fold(self._hashes)

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self._hashes)


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from RFC 9162's recursive definition; for tests and cross-checks."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = _largest_power_of_two_below(n)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def tree_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 9162 tree over `leaf_hashes` (level 0 = the leaf hashes),
    built bottom-up: pairs are hashed, and a last node without a partner rises unchanged,
    which gives MTH's tree (the left subtree is always the largest power of two).

    For small trees held whole in memory (a usage batch's events): one pass, no node ids.
    """
    if not leaf_hashes:
        return [[]]
    sha = hashlib.sha256
    levels = [list(leaf_hashes)]
    level = levels[0]
    while len(level) > 1:
        upper = [
            sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            upper.append(level[-1])
        levels.append(upper)
        level = upper
    return levels


def root_of_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a tree given its leaf hashes (`tree_levels`' top)."""
    return tree_levels(leaf_hashes)[-1][0] if leaf_hashes else EMPTY_ROOT


def inclusion_path(levels: Sequence[Sequence[bytes]], leaf_index: int) -> list[bytes]:
    """RFC 9162 inclusion proof of `leaf_index` from `tree_levels` (checked by
    `verify_inclusion`): each level's sibling, skipping levels where the node rises alone."""
    proof = []
    index = leaf_index
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index >>= 1
    return proof
