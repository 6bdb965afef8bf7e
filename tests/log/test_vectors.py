"""Published known answers: transparency-dev/merkle's RFC 9162 vectors, a real CT log, Go's signed notes.

The vector files in tests/vectors/ name their sources and commits. Negative vectors run too.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from quotepart.errors import InputError, VerificationError
from quotepart.log import merkle
from quotepart.log.checkpoint import Checkpoint, NoteVerifier, open_note, sign_note
from quotepart.log.keys import SigningKey
from quotepart.log.merkle import NodeId

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
TREE: dict[str, Any] = json.loads((VECTORS / "rfc9162_merkle.json").read_text())
NOTES: dict[str, Any] = json.loads((VECTORS / "c2sp_signed_note.json").read_text())
LEAVES = [bytes.fromhex(h) for h in TREE["leaves_hex"]]


def hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def stored_nodes() -> dict[NodeId, bytes]:
    nodes: dict[NodeId, bytes] = {}
    tree = merkle.CompactRange()
    for index, leaf in enumerate(LEAVES):
        nodes[NodeId(0, index)] = merkle.leaf_hash(leaf)
        nodes.update(tree.append(merkle.leaf_hash(leaf)))
    return nodes


NODES = stored_nodes()


def test_leaf_and_node_hashes() -> None:
    assert [merkle.leaf_hash(leaf).hex() for leaf in LEAVES] == TREE["leaf_hashes_hex"]
    for level, hashes in enumerate(TREE["node_hashes_hex"]):
        for index, value in enumerate(hashes):
            assert NODES[NodeId(level, index)].hex() == value


@pytest.mark.parametrize("root", TREE["roots"], ids=lambda r: f"size{r['tree_size']}")
def test_roots(root: dict[str, Any]) -> None:
    size = root["tree_size"]
    assert merkle.reference_root(LEAVES[:size]).hex() == root["root_hex"]
    assert merkle.fold([NODES[node] for node in merkle.root_plan(size)]).hex() == root["root_hex"]
    tree = merkle.CompactRange()
    for leaf in LEAVES[:size]:
        tree.append(merkle.leaf_hash(leaf))
    assert tree.root().hex() == root["root_hex"]


def root_of(size: int) -> bytes:
    return bytes.fromhex(TREE["roots"][size]["root_hex"])


@pytest.mark.parametrize(
    "case", TREE["inclusion_proofs"], ids=lambda c: f"{c['leaf_index']}of{c['tree_size']}"
)
def test_inclusion_proofs(case: dict[str, Any]) -> None:
    index, size = case["leaf_index"], case["tree_size"]
    proof = merkle.assemble(merkle.inclusion_plan(index, size), NODES)
    assert [p.hex() for p in proof] == case["proof_hex"]
    merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, root_of(size))


@pytest.mark.parametrize(
    "case", TREE["consistency_proofs"], ids=lambda c: f"{c['old_size']}to{c['new_size']}"
)
def test_consistency_proofs(case: dict[str, Any]) -> None:
    old, new = case["old_size"], case["new_size"]
    proof = merkle.assemble(merkle.consistency_plan(old, new), NODES)
    assert [p.hex() for p in proof] == case["proof_hex"]
    merkle.verify_consistency(old, new, root_of(old), root_of(new), proof)


@pytest.mark.parametrize("case", TREE["invalid_inclusion_proofs"], ids=lambda c: c["why"][:40])
def test_invalid_inclusion_proofs_fail(case: dict[str, Any]) -> None:
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(
            bytes.fromhex(case["leaf_hash_hex"]),
            case["leaf_index"],
            case["tree_size"],
            hexes(case["proof_hex"]),
            bytes.fromhex(case["root_hex"]),
        )


@pytest.mark.parametrize("case", TREE["invalid_consistency_proofs"], ids=lambda c: c["why"][:40])
def test_invalid_consistency_proofs_fail(case: dict[str, Any]) -> None:
    with pytest.raises(VerificationError):
        merkle.verify_consistency(
            case["old_size"],
            case["new_size"],
            bytes.fromhex(case["old_root_hex"]),
            bytes.fromhex(case["new_root_hex"]),
            hexes(case["proof_hex"]),
        )


def check(expect_valid: bool, call: Any) -> None:
    if expect_valid:
        call()
    else:
        with pytest.raises(VerificationError):
            call()


@pytest.mark.parametrize("case", TREE["inclusion_edge_cases"], ids=lambda c: c["why"][:40])
def test_inclusion_edge_cases(case: dict[str, Any]) -> None:
    check(
        case["expect_valid"],
        lambda: merkle.verify_inclusion(
            bytes.fromhex(case["leaf_hash_hex"]),
            case["leaf_index"],
            case["tree_size"],
            hexes(case["proof_hex"]),
            bytes.fromhex(case["root_hex"]),
        ),
    )


@pytest.mark.parametrize("case", TREE["consistency_edge_cases"], ids=lambda c: c["why"][:40])
def test_consistency_edge_cases(case: dict[str, Any]) -> None:
    check(
        case["expect_valid"],
        lambda: merkle.verify_consistency(
            case["old_size"],
            case["new_size"],
            bytes.fromhex(case["old_root_hex"]),
            bytes.fromhex(case["new_root_hex"]),
            hexes(case["proof_hex"]),
        ),
    )


def test_a_real_certificate_transparency_log() -> None:
    """Google's Argon 2020 log: a leaf in a tree of 961,984,013 entries and a consistency proof."""
    argon = TREE["ct_argon2020"]
    root = base64.b64decode(argon["sth"]["sha256_root_hash_b64"])
    size = argon["sth"]["tree_size"]
    entry = argon["entry"]
    leaf = merkle.leaf_hash(base64.b64decode(entry["leaf_input_b64"]))
    path = [base64.b64decode(p) for p in argon["inclusion_proof"]["audit_path_b64"]]
    merkle.verify_inclusion(leaf, entry["leaf_index"], size, path, root)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(leaf, entry["leaf_index"] + 1, size, path, root)
    consistency = argon["consistency_proof"]
    merkle.verify_consistency(
        consistency["old_size"],
        size,
        base64.b64decode(consistency["old_root_b64"]),
        root,
        [base64.b64decode(p) for p in consistency["consistency_b64"]],
    )
    assert len(merkle.inclusion_plan(entry["leaf_index"], size)) == len(path)
    assert len(merkle.consistency_plan(consistency["old_size"], size)) == len(
        consistency["consistency_b64"]
    )


def private_key(text: str) -> tuple[str, SigningKey]:
    """Go's `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>`."""
    _, _, name, _, encoded = text.split("+", 4)
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01
    return name, SigningKey.from_seed(raw[1:])


def test_go_note_vector_signs_byte_for_byte() -> None:
    verifier = NoteVerifier.parse(NOTES["verifier_key"])
    name, key = private_key(NOTES["private_key"])
    assert key.public == verifier.public
    assert str(verifier) == NOTES["verifier_key"]
    assert sign_note(NOTES["text"], name, key) == NOTES["signed_note"]
    assert open_note(NOTES["signed_note"], verifier) == NOTES["text"]


@pytest.mark.parametrize("case", NOTES["valid_notes"], ids=lambda c: c["why"][:40])
def test_valid_notes_with_several_signatures(case: dict[str, Any]) -> None:
    for key in case["verifier_keys"]:
        assert open_note(case["note"], NoteVerifier.parse(key)).endswith("\n")


@pytest.mark.parametrize("case", NOTES["invalid_notes"], ids=lambda c: c["why"][:40])
def test_invalid_notes_are_refused(case: dict[str, Any]) -> None:
    note = base64.b64decode(case["note_b64"])
    with pytest.raises(VerificationError):
        open_note(note, NoteVerifier.parse(NOTES["verifier_key"]))


@pytest.mark.parametrize("case", NOTES["invalid_verifier_keys"], ids=lambda c: c["why"][:40])
def test_invalid_verifier_keys_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        NoteVerifier.parse(case["verifier_key"])


def test_unterminated_text_cannot_be_signed() -> None:
    _, key = private_key(NOTES["private_key"])
    with pytest.raises(InputError):
        sign_note(NOTES["invalid_sign_inputs"][0]["text"], "PeterNeumann", key)


@pytest.mark.parametrize("case", NOTES["checkpoints"], ids=lambda c: c["source"][:50])
def test_published_checkpoints_verify(case: dict[str, Any]) -> None:
    text = open_note(case["note"], NoteVerifier.parse(case["verifier_key"]))
    checkpoint = Checkpoint.parse_text(text)
    assert checkpoint.origin == case["origin"]
    assert checkpoint.tree_size == int(case["tree_size"])
    assert checkpoint.root_hash == base64.b64decode(case["root_hash_b64"])
    for key in case.get("cosigner_verifier_keys", []):
        open_note(case["note"], NoteVerifier.parse(key))
    if "private_key" in case:
        name, signing_key = private_key(case["private_key"])
        assert sign_note(text, name, signing_key) == case["note"]
