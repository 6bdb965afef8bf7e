"""RFC 9162 tree: the stored-node plans against the RFC's recursive definitions, and tampering."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotepart.errors import OutOfRangeError, VerificationError
from quotepart.log import merkle
from quotepart.log.merkle import NodeId


def rfc_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), literally."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if index < k:
        return [*rfc_path(index, leaves[:k]), merkle.reference_root(leaves[k:])]
    return [*rfc_path(index - k, leaves[k:]), merkle.reference_root(leaves[:k])]


def rfc_subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b), literally."""
    n = len(leaves)
    if m == n:
        return [] if complete else [merkle.reference_root(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], complete), merkle.reference_root(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), merkle.reference_root(leaves[:k])]


def build(leaves: Sequence[bytes]) -> tuple[dict[NodeId, bytes], merkle.CompactRange]:
    """What the store keeps: leaf hashes at level 0 and the interior nodes appends create."""
    nodes: dict[NodeId, bytes] = {}
    tree = merkle.CompactRange()
    for index, leaf in enumerate(leaves):
        value = merkle.leaf_hash(leaf)
        nodes[NodeId(0, index)] = value
        nodes.update(tree.append(value))
    return nodes, tree


LEAVES = [f"entry {i}".encode() for i in range(300)]
NODES, _ = build(LEAVES)


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert (
        merkle.EMPTY_ROOT.hex()
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.CompactRange().root() == merkle.EMPTY_ROOT


def test_interior_nodes_stored_are_exactly_n_minus_popcount() -> None:
    interior = [node for node in NODES if node.level > 0]
    assert len(interior) == len(LEAVES) - len(LEAVES).bit_count()


@given(size=st.integers(1, 300))
def test_compact_range_and_stored_nodes_give_the_rfc_root(size: int) -> None:
    _, tree = build(LEAVES[:size])
    expected = merkle.reference_root(LEAVES[:size])
    assert tree.root() == expected
    assert merkle.fold([NODES[node] for node in merkle.root_plan(size)]) == expected


@settings(max_examples=300)
@given(data=st.data())
def test_every_inclusion_proof_matches_the_rfc_and_verifies(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.assemble(merkle.inclusion_plan(index, size), NODES)
    assert proof == rfc_path(index, LEAVES[:size])
    assert len(proof) <= max(1, (size - 1).bit_length())
    merkle.verify_inclusion(
        merkle.leaf_hash(LEAVES[index]), index, size, proof, merkle.reference_root(LEAVES[:size])
    )


@settings(max_examples=300)
@given(data=st.data())
def test_every_consistency_proof_matches_the_rfc_and_verifies(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, 300))
    old = data.draw(st.integers(1, new))
    proof = merkle.assemble(merkle.consistency_plan(old, new), NODES)
    assert proof == (rfc_subproof(old, LEAVES[:new], True) if old < new else [])
    merkle.verify_consistency(
        old, new, merkle.reference_root(LEAVES[:old]), merkle.reference_root(LEAVES[:new]), proof
    )


def test_every_proof_for_every_size_up_to_64_verifies_exhaustively() -> None:
    for size in range(1, 65):
        root = merkle.reference_root(LEAVES[:size])
        for index in range(size):
            proof = merkle.assemble(merkle.inclusion_plan(index, size), NODES)
            merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, root)
        for old in range(1, size + 1):
            proof = merkle.assemble(merkle.consistency_plan(old, size), NODES)
            merkle.verify_consistency(old, size, merkle.reference_root(LEAVES[:old]), root, proof)


def flip(data: bytes, position: int, bit: int) -> bytes:
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :]


@settings(max_examples=200)
@given(data=st.data())
def test_any_altered_byte_of_an_inclusion_proof_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 300))
    index = data.draw(st.integers(0, size - 1))
    root = merkle.reference_root(LEAVES[:size])
    proof = merkle.assemble(merkle.inclusion_plan(index, size), NODES)
    leaf = merkle.leaf_hash(LEAVES[index])
    target = data.draw(st.sampled_from(["leaf", "root", "proof", "index", "truncate", "extend"]))
    position, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
    if target == "leaf":
        leaf = flip(leaf, position, bit)
    elif target == "root":
        root = flip(root, position, bit)
    elif target == "proof":
        which = data.draw(st.integers(0, len(proof) - 1))
        proof[which] = flip(proof[which], position, bit)
    elif target == "index":
        index = (index + data.draw(st.integers(1, size - 1))) % size
    elif target == "truncate":
        proof = proof[:-1]
    else:
        proof = [*proof, merkle.EMPTY_ROOT]
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=200)
@given(data=st.data())
def test_any_altered_byte_of_a_consistency_proof_fails(data: st.DataObject) -> None:
    new = data.draw(st.integers(2, 300))
    old = data.draw(st.integers(1, new - 1))
    old_root, new_root = merkle.reference_root(LEAVES[:old]), merkle.reference_root(LEAVES[:new])
    proof = merkle.assemble(merkle.consistency_plan(old, new), NODES)
    target = data.draw(st.sampled_from(["old_root", "new_root", "proof", "truncate", "extend"]))
    position, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
    if target == "old_root":
        old_root = flip(old_root, position, bit)
    elif target == "new_root":
        new_root = flip(new_root, position, bit)
    elif target == "proof":
        which = data.draw(st.integers(0, len(proof) - 1))
        proof[which] = flip(proof[which], position, bit)
    elif target == "truncate":
        proof = proof[:-1]
    else:
        proof = [*proof, merkle.EMPTY_ROOT]
    with pytest.raises(VerificationError):
        merkle.verify_consistency(old, new, old_root, new_root, proof)


def test_a_rewritten_history_is_not_consistent() -> None:
    forked = [*LEAVES[:10], b"rewritten", *LEAVES[11:40]]
    fork_nodes, _ = build(forked)
    proof = merkle.assemble(merkle.consistency_plan(20, 40), fork_nodes)
    with pytest.raises(VerificationError, match="old root"):
        merkle.verify_consistency(
            20, 40, merkle.reference_root(LEAVES[:20]), merkle.reference_root(forked), proof
        )


def test_plans_refuse_impossible_positions() -> None:
    with pytest.raises(OutOfRangeError):
        merkle.inclusion_plan(5, 5)
    with pytest.raises(OutOfRangeError):
        merkle.consistency_plan(6, 5)
    assert merkle.consistency_plan(0, 5) == []
    assert merkle.consistency_plan(5, 5) == []


def test_proof_plans_read_only_logarithmically_many_nodes() -> None:
    size = 10_000_019
    for index in (0, 1, size // 2, size - 1):
        assert len(merkle.plan_nodes(merkle.inclusion_plan(index, size))) <= 2 * size.bit_length()
    for old in (1, 7, size // 3, size - 1):
        assert len(merkle.plan_nodes(merkle.consistency_plan(old, size))) <= 2 * size.bit_length()


@given(level=st.integers(0, 40), index=st.integers(0, 2**40))
def test_flat_node_numbering_round_trips(level: int, index: int) -> None:
    node = NodeId(level, index)
    assert NodeId.from_flat(node.flat) == node
    assert node.flat % 2 == (level > 0)
