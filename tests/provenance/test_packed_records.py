"""Packed record sets: the fast root and proofs equal the per-record ones, in and out of process."""

from __future__ import annotations

import json
import multiprocessing
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotepart.errors import InputError, OutOfRangeError, VerificationError
from quotepart.log.merkle import leaf_hash, reference_root
from quotepart.provenance import digest as digest_module
from quotepart.provenance.digest import (
    PackedRecords,
    digest_records,
    merkle_root_packed,
    prove_member,
    prove_record_packed,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
TREE: dict[str, Any] = json.loads((VECTORS / "rfc9162_merkle.json").read_text())
LEAVES = [bytes.fromhex(h) for h in TREE["leaves_hex"]]

record_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=300)
# Sizes where RFC 9162's split changes shape: on, just below and just above powers of two.
edge_sizes = st.sampled_from(
    sorted({n + d for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) for d in (-1, 0, 1) if n + d >= 1})
)


def seeded_records(count: int, seed: int, *, max_size: int = 24) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(max_size + 1)) for _ in range(count)]


@pytest.mark.parametrize("root", TREE["roots"][1:], ids=lambda r: f"size{r['tree_size']}")
def test_rfc9162_vector_roots(root: dict[str, Any]) -> None:
    packed = PackedRecords.from_records(LEAVES[: root["tree_size"]])
    assert merkle_root_packed(packed, workers=1).hex == root["root_hex"]


@pytest.mark.parametrize(
    "case", TREE["inclusion_proofs"], ids=lambda c: f"{c['leaf_index']}of{c['tree_size']}"
)
def test_rfc9162_vector_inclusion_proofs(case: dict[str, Any]) -> None:
    packed = PackedRecords.from_records(LEAVES[: case["tree_size"]])
    proof = prove_record_packed(packed, case["leaf_index"], workers=1)
    assert [p.hex() for p in proof.proof] == case["proof_hex"]


@settings(max_examples=200)
@given(records=record_lists)
def test_root_equals_digest_records_in_process(records: list[bytes]) -> None:
    packed = PackedRecords.from_records(records)
    expected = digest_records(records)
    assert expected.hex == reference_root(records).hex()
    assert merkle_root_packed(packed, workers=1) == expected


@given(count=edge_sizes, seed=st.integers(0, 2**32), width=st.integers(0, 70))
def test_fixed_width_roots_around_powers_of_two(count: int, seed: int, width: int) -> None:
    buffer = random.Random(seed).randbytes(count * width)
    records = [buffer[i * width : (i + 1) * width] for i in range(count)]
    if width == 0:
        packed = PackedRecords(b"", np.zeros(count + 1, dtype=np.int64))
    else:
        packed = PackedRecords.fixed_width(buffer, width)
    assert len(packed) == count
    assert merkle_root_packed(packed, workers=1) == digest_records(records)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=record_lists | edge_sizes.map(lambda n: seeded_records(n, n)))
def test_root_equals_digest_records_in_worker_processes(records: list[bytes]) -> None:
    packed = PackedRecords.from_records(records)
    root = merkle_root_packed(packed, workers=2, parallel_above=0)
    assert root == digest_records(records)


@pytest.mark.parametrize(
    "records",
    [
        [bytes([i % 251]) * 5 for i in range(1000)],  # one length: the contiguous path
        [b"a" * (i % 3) for i in range(1000)],  # three lengths: grouped by length
        seeded_records(1000, 7, max_size=200),  # many lengths: record by record
    ],
    ids=["one-length", "few-lengths", "many-lengths"],
)
def test_each_leaf_strategy_gives_rfc9162_leaf_hashes(records: list[bytes]) -> None:
    packed = PackedRecords.from_records(records)
    data = np.frombuffer(packed.buffer, dtype=np.uint8)
    expected = b"".join(map(leaf_hash, records))
    assert digest_module._leaf_hashes(data, packed.offsets, 0, len(records)) == expected
    assert digest_module._leaf_hashes_one_by_one(data, packed.offsets) == expected


def test_roots_across_many_blocks_and_worker_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_module, "_BLOCK", 4)  # many blocks, and chunks of several blocks
    for count in (3, 4, 5, 31, 32, 33, 100, 1000):
        records = seeded_records(count, count)
        packed = PackedRecords.from_records(records)
        expected = digest_records(records)
        assert merkle_root_packed(packed, workers=1) == expected
        assert merkle_root_packed(packed, workers=2, parallel_above=0) == expected
        index = count // 3
        prove_record_packed(packed, index, workers=1).verify(expected)


def test_workers_that_receive_their_slice_give_the_same_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where forking is unsafe, each task carries its records with rebased offsets."""
    monkeypatch.setattr(
        digest_module, "_pool_context", lambda: (multiprocessing.get_context("fork"), False)
    )
    monkeypatch.setattr(digest_module, "_BLOCK", 8)
    records = seeded_records(300, 3)
    packed = PackedRecords.from_records(records)
    assert merkle_root_packed(packed, workers=2, parallel_above=0) == digest_records(records)


def test_forking_is_avoided_when_threads_are_running(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pinned both ways: earlier tests may leave threads alive (joblib's executor keeps one).
    monkeypatch.setattr(digest_module.threading, "active_count", lambda: 1)
    context, inherit = digest_module._pool_context()
    assert (context.get_start_method(), inherit) == ("fork", True)
    monkeypatch.setattr(digest_module.threading, "active_count", lambda: 3)
    context, inherit = digest_module._pool_context()
    assert context.get_start_method() != "fork"
    assert not inherit


@given(records=record_lists, data=st.data())
def test_every_packed_record_proves_its_membership(
    records: list[bytes], data: st.DataObject
) -> None:
    packed = PackedRecords.from_records(records)
    root = merkle_root_packed(packed, workers=1)
    index = data.draw(st.integers(0, len(records) - 1))
    proof = prove_record_packed(packed, index, workers=1)
    assert proof == prove_member(records, index)
    proof.verify(root)
    forged = type(proof)(proof.member + b"x", proof.index, proof.count, proof.proof)
    with pytest.raises(VerificationError):
        forged.verify(root)
    other = digest_records([*records, b"one more"])
    with pytest.raises(VerificationError):
        proof.verify(other)


def test_proofs_from_worker_processes_verify() -> None:
    records = seeded_records(777, 11)
    packed = PackedRecords.from_records(records)
    root = digest_records(records)
    for index in (0, 1, 511, 512, 776):
        proof = prove_record_packed(packed, index, workers=2, parallel_above=0)
        assert proof == prove_member(records, index)
        proof.verify(root)


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_reaches_the_total(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setattr(digest_module, "_BLOCK", 16)
    packed = PackedRecords.from_records(seeded_records(1000, 5))
    calls: list[tuple[int, int]] = []
    merkle_root_packed(
        packed,
        workers=workers,
        parallel_above=0,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert len(calls) > 1
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (1000, 1000)


def test_records_read_back() -> None:
    records = [b"", b"alpha", b"", b"\x00\x01"]
    packed = PackedRecords.from_records(records)
    assert len(packed) == 4
    assert [packed.record(i) for i in range(4)] == records
    table = PackedRecords.fixed_width(b"abcdef", 2)
    assert [table.record(i) for i in range(len(table))] == [b"ab", b"cd", b"ef"]
    with pytest.raises(OutOfRangeError):
        table.record(3)
    with pytest.raises(OutOfRangeError):
        table.record(-1)


def test_offsets_are_a_private_read_only_copy() -> None:
    offsets = np.array([0, 2, 4], dtype=np.int32)
    packed = PackedRecords(b"abcd", offsets)
    offsets[1] = 3
    assert packed.record(0) == b"ab"
    assert packed.offsets.dtype == np.int64
    assert not packed.offsets.flags.writeable


@pytest.mark.parametrize(
    ("buffer", "offsets", "message"),
    [
        (b"abc", [1, 3], "from 1 to 3"),
        (b"abc", [0, 2], "expected 0 to 3"),
        (b"abc", [0, 2, 1, 3], "decrease at record 1"),
        (b"abc", [], "1-D integer"),
        (b"abc", [[0, 3]], "1-D integer"),
        (b"abc", [0.0, 3.0], "1-D integer"),
        (bytearray(b"abc"), [0, 3], "bytes buffer"),
    ],
)
def test_bad_offsets_are_input_errors(buffer: Any, offsets: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        PackedRecords(buffer, np.asarray(offsets))


def test_bad_packing_and_empty_sets_are_input_errors() -> None:
    with pytest.raises(InputError, match="whole number of 4-byte records"):
        PackedRecords.fixed_width(b"abcdef", 4)
    with pytest.raises(InputError, match="whole number"):
        PackedRecords.fixed_width(b"", 0)
    with pytest.raises(InputError, match="record 1 is str"):
        PackedRecords.from_records([b"a", "b"])  # type: ignore[list-item]
    empty = PackedRecords.from_records([])
    with pytest.raises(InputError, match="at least one record") as raised:
        merkle_root_packed(empty)
    with pytest.raises(InputError) as expected:
        digest_records([])
    assert (raised.value.message, raised.value.hint) == (
        expected.value.message,
        expected.value.hint,
    )
    with pytest.raises(InputError, match="workers must be at least 1"):
        merkle_root_packed(PackedRecords.from_records([b"a"]), workers=0)
    with pytest.raises(OutOfRangeError):
        prove_record_packed(PackedRecords.from_records([b"a"]), 1)
    with pytest.raises(OutOfRangeError):
        prove_record_packed(empty, 0)
