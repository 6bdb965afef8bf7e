"""Content digests: files, folders and record sets, and proofs that a member is in one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotepart.errors import InputError, OutOfRangeError, VerificationError
from quotepart.log.merkle import reference_root
from quotepart.provenance import (
    digest_file,
    digest_folder,
    digest_records,
    folder_members,
    prove_member,
)


def test_a_file_digest_is_its_sha256(tmp_path: Path) -> None:
    (tmp_path / "abc").write_bytes(b"abc")  # FIPS 180-2 test vector
    assert digest_file(tmp_path / "abc").hex == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    big = bytes(range(256)) * 20_000
    (tmp_path / "big").write_bytes(big)
    assert digest_file(tmp_path / "big").hex == hashlib.sha256(big).hexdigest()


def test_unreadable_or_vanished_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        digest_file(tmp_path / "gone.csv")
    with pytest.raises(InputError, match="is a folder"):
        digest_file(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        digest_folder(tmp_path / "gone")
    with pytest.raises(InputError, match="holds no files"):
        digest_folder(tmp_path)


@given(records=st.lists(st.binary(max_size=40), min_size=1, max_size=80), data=st.data())
def test_every_record_proves_its_membership(records: list[bytes], data: st.DataObject) -> None:
    root = digest_records(records)
    assert root.hex == reference_root(records).hex()
    index = data.draw(st.integers(0, len(records) - 1))
    proof = prove_member(records, index)
    proof.verify(root)
    forged = type(proof)(proof.member + b"x", proof.index, proof.count, proof.proof)
    with pytest.raises(VerificationError):
        forged.verify(root)


def test_record_sets_refuse_bad_input() -> None:
    with pytest.raises(InputError, match="at least one record"):
        digest_records([])
    with pytest.raises(InputError, match="record 1 is str"):
        digest_records([b"a", "b"])  # type: ignore[list-item]
    with pytest.raises(OutOfRangeError):
        prove_member([b"a"], 1)


def test_a_folder_root_covers_names_and_contents(tmp_path: Path) -> None:
    folder = tmp_path / "cohort"
    (folder / "ward3").mkdir(parents=True)
    (folder / "ward3" / "p1.json").write_bytes(b'{"age":61}')
    (folder / "p2.json").write_bytes(b'{"age":47}')
    first = digest_folder(folder)
    members = folder_members(folder)
    assert members[1].startswith(b"ward3/p1.json\0")
    prove_member(members, 1).verify(first)
    (folder / "ward3" / "p1.json").rename(folder / "ward3" / "p9.json")
    renamed = digest_folder(folder)
    assert renamed != first
    (folder / "p2.json").write_bytes(b'{"age":48}')
    assert digest_folder(folder) not in (first, renamed)
