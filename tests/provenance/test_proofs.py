"""Record proofs: built from a workspace, checked offline, refused when any part is altered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from quotepart.errors import InputError, NotFoundError, SignatureError, VerificationError
from quotepart.ids import Digest
from quotepart.provenance import (
    RECORD_PROOF_FORMAT,
    MemberProof,
    VerifiedRecord,
    record_proof,
    verify_record_proof,
)
from quotepart.provenance.overlap import OverlapWarning
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "record_proof_v1.json").read_text())
ROWS = pd.DataFrame({"age": [34, 51, 67, 45], "ward": ["a", "b", "a", "c"]})


@pytest.fixture
def ws(tmp_path: Path, clock: FakeClock) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", clock=clock) as workspace:
        yield workspace


def _flip(hex_text: str) -> str:
    data = bytearray(bytes.fromhex(hex_text))
    data[-1] ^= 1
    return data.hex()


def test_a_proof_written_before_the_move_still_verifies() -> None:
    verified = verify_record_proof(VECTOR["proof"], trusted_key=VECTOR["trusted_key"])
    assert verified == VerifiedRecord(
        Digest.parse(VECTOR["proof"]["asset"]),
        2,
        4,
        1,
        3,
        "quotepart.local/01m91f8h38h6fnxfajyhvmaphd",
        VECTOR["trusted_key"],
    )
    assert verify_record_proof(VECTOR["proof"]) == verified  # the file's own key: the same


def test_a_proof_from_a_workspace_has_the_v1_fields_and_verifies(ws: Workspace) -> None:
    clinic = ws.register_party("Clinic")
    cohort = ws.register_data(ROWS, name="cohort", by=clinic, asset_kind="cohort")
    ws.register_party("Someone later")  # the proof is for the log's current size
    document = record_proof(ws.store, ws.prove_record(cohort, ROWS, 3), cohort, ws.verifier)
    assert set(document) == set(VECTOR["proof"])
    assert document["format"] == RECORD_PROOF_FORMAT
    assert json.loads(json.dumps(document)) == document  # plain JSON
    verified = verify_record_proof(document, trusted_key=str(ws.verifier))
    assert (verified.record_index, verified.record_count) == (3, 4)
    assert (verified.leaf_index, verified.tree_size) == (1, ws.store.tree_size())


def test_a_proof_is_not_built_for_a_record_of_another_asset_or_an_unknown_one(
    ws: Workspace,
) -> None:
    clinic = ws.register_party("Clinic")
    cohort = ws.register_data(ROWS, name="cohort", by=clinic, asset_kind="cohort")
    with pytest.warns(OverlapWarning, match="3 of 3 records"):
        other = ws.register_data(ROWS.head(3), name="other", by=clinic, asset_kind="cohort")
    member = ws.prove_record(other, ROWS.head(3), 0)
    with pytest.raises(VerificationError, match=r"record 0 of 3 is not in .*expected"):
        record_proof(ws.store, member, cohort, ws.verifier)
    unknown = Digest.of_bytes(b"never registered")
    with pytest.raises(NotFoundError, match="unknown asset"):
        record_proof(ws.store, MemberProof(b"x", 0, 1, ()), unknown, ws.verifier)


ALTERATIONS: list[tuple[str, Any, type[Exception], str]] = [
    ("record", _flip(VECTOR["proof"]["record"]), VerificationError, "record 2 of 4 is not in"),
    ("record_index", 1, VerificationError, "record 1 of 4 is not in"),
    ("record_count", 5, VerificationError, "is not in"),
    ("record_path", [_flip(h) for h in VECTOR["proof"]["record_path"]], VerificationError, "gives"),
    ("record_path", VECTOR["proof"]["record_path"][:1], VerificationError, "too short"),
    ("asset", "sha256:" + "0" * 64, VerificationError, "is not in sha256:000"),
    ("leaf_index", 0, VerificationError, "is not at 0 in the signed log"),
    ("tree_size", 4, VerificationError, "tree of size 4, the checkpoint signs size 3"),
    ("inclusion_path", [], VerificationError, "is not at 1 in the signed log"),
    (
        "checkpoint",
        VECTOR["proof"]["checkpoint"].replace("\n3\n", "\n2\n"),
        SignatureError,
        "signature",
    ),
    (
        "entry",
        VECTOR["proof"]["entry"].replace("cohort", "cohorts"),
        VerificationError,
        "does not parse",
    ),
    ("format", "quotepart/record-proof/v0", InputError, "format is"),
    ("record", "not hex", InputError, "malformed"),
    ("record_path", None, InputError, "malformed"),
    ("checkpoint", 3, InputError, "malformed"),
]


@pytest.mark.parametrize(("field", "value", "error", "fragment"), ALTERATIONS)
def test_an_altered_proof_is_refused_saying_what_did_not_check_out(
    field: str, value: Any, error: type[Exception], fragment: str
) -> None:
    altered = {**VECTOR["proof"], field: value}
    with pytest.raises(error, match=fragment):
        verify_record_proof(altered, trusted_key=VECTOR["trusted_key"])


def test_a_missing_part_is_a_malformed_file() -> None:
    for field in VECTOR["proof"]:
        partial = {k: v for k, v in VECTOR["proof"].items() if k != field}
        with pytest.raises(InputError, match="malformed"):
            verify_record_proof(partial)


def test_a_key_other_than_the_trusted_one_is_refused(ws: Workspace) -> None:
    with pytest.raises(VerificationError):
        verify_record_proof(VECTOR["proof"], trusted_key=str(ws.verifier))


def test_another_entry_naming_the_asset_does_not_stand_in_for_its_registration(
    ws: Workspace,
) -> None:
    """A contribution entry also names the asset; only the asset.registered entry proves it."""
    clinic = ws.register_party("Clinic")
    cohort = ws.register_data(ROWS, name="cohort", by=clinic, asset_kind="cohort")
    [contribution] = ws.contribute(cohort, {clinic: 1}, role="data", by=clinic)
    document = record_proof(ws.store, ws.prove_record(cohort, ROWS, 0), cohort, ws.verifier)
    inclusion = ws.store.inclusion_proof(contribution)
    forged = {
        **document,
        "entry": ws.store.entry(contribution)[1].decode(),
        "leaf_index": contribution,
        "inclusion_path": [node.hex() for node in inclusion.proof],
    }
    with pytest.raises(VerificationError, match=r"should register .*; it is a contribution"):
        verify_record_proof(forged, trusted_key=str(ws.verifier))
