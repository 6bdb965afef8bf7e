"""Issue 15, item 5: every entry names, inside what is signed, the log it is meant for.

An entry signed for log A is refused by log B (SDK, store, `quotepart log append`), and
named by `verify` if it is put into B behind the store's back; a party whose key works
in two logs signs once per log. Envelope 1 entries (no origin) still parse and verify in
the logs that hold them, and so do statement files made of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.errors import (
    MalformedEntryError,
    SignatureError,
    VerificationError,
    WrongLogError,
)
from quotepart.ids import Clock, Digest, PartyId, format_timestamp, utc_now
from quotepart.log import SignedEntry, SigningKey, VerifyKey, parse_entry, sign_entry
from quotepart.log.entry import LEGACY_SIGNING_CONTEXT, signed_message
from quotepart.log.kinds import AssetRegistered, EntryBody, PartyRegistered
from quotepart.sharing import verify_statement
from quotepart.store.log_store import LogStore
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.sharing.test_workspace_sharing import Scene

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "entry_envelopes.json").read_text())


@pytest.fixture
def other(tmp_path: Path) -> Iterator[Workspace]:
    """Log A, on SQLite, beside the `ws` fixture's log B (each backend)."""
    with init_workspace(tmp_path / "a", origin="a.example/log", clock=FakeClock()) as workspace:
        yield workspace


def asset(name: str) -> AssetRegistered:
    return AssetRegistered(Digest.of_bytes(name.encode()), "dataset", name)


def registration(party: PartyId, key: SigningKey, origin: str) -> SignedEntry:
    body = PartyRegistered(party, "Shared", ("contributor",), key.public)
    return sign_entry(body, author=party, key=key, origin=origin)


def legacy_entry(
    body: EntryBody, *, author: PartyId, key: SigningKey, origin: str, clock: Clock = utc_now
) -> SignedEntry:
    """An envelope 1 entry, as quotepart signed before issue 15 (`origin` is ignored)."""
    raw = body.to_body()
    message = signed_message(
        body.KIND, body.VERSION, format_timestamp(clock()), author, raw, origin=None
    )
    unsigned = message[len(LEGACY_SIGNING_CONTEXT) :]
    position = unsigned.rindex(b',"ts":"')
    signature = base64.b64encode(key.sign(message))
    return parse_entry(unsigned[:position] + b',"sig":"' + signature + b'"' + unsigned[position:])


def behind_the_stores_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let `LogStore.append` write entries of any origin, as a tampering operator could."""
    monkeypatch.setattr(LogStore, "_check_origin", lambda self, entry: None)


def test_an_entry_signed_for_another_log_is_refused_at_append(
    ws: Workspace, other: Workspace
) -> None:
    party = other.register_party("Alice")
    key = other.signing_key(party)
    assert registration(party, key, ws.origin).origin == ws.origin
    ws.append_signed([registration(party, key, ws.origin)])  # Alice, registered in B too
    size = ws.store.tree_size()
    for_a = sign_entry(asset("a"), author=party, key=key, origin=other.origin)
    with pytest.raises(WrongLogError) as caught:
        ws.append_signed([for_a.canonical])
    assert "meant for log 'a.example/log'" in caught.value.message
    assert repr(ws.origin) in caught.value.message
    with pytest.raises(WrongLogError):
        ws.store.append([sign_entry(asset("b"), author=party, key=key, origin=ws.origin), for_a])
    assert ws.store.tree_size() == size  # nothing written, not even the good entry before it
    ws.verify()


def test_quotepart_log_append_refuses_an_entry_of_another_log(
    ws: Workspace, other: Workspace
) -> None:
    party = ws.register_party("Alice")
    key = ws.signing_key(party)
    size = ws.store.tree_size()
    for_a = sign_entry(asset("a"), author=party, key=key, origin=other.origin)
    result = CliRunner().invoke(
        cli,
        ["log", "append", "-", "--workspace", str(ws.path)],
        input=for_a.canonical.decode() + "\n",
    )
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "meant for log 'a.example/log'" in result.stderr
    assert ws.store.tree_size() == size


def test_an_entry_of_another_log_put_in_behind_the_stores_back_is_named_by_verify(
    ws: Workspace, other: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    party = ws.register_party("Alice")
    for_a = sign_entry(asset("a"), author=party, key=ws.signing_key(party), origin=other.origin)
    behind_the_stores_back(monkeypatch)
    [index] = ws.append_signed([for_a])  # leaf, nodes and checkpoint all consistent
    with pytest.raises(VerificationError) as caught:
        ws.verify()
    assert caught.value.message.startswith(
        f"entry {index}: meant for log 'a.example/log', not {ws.origin!r}"
    )


def test_one_party_key_signs_for_two_logs_and_each_log_takes_only_its_own(
    ws: Workspace, other: Workspace
) -> None:
    key, party = SigningKey.generate(), PartyId.new()
    in_a, in_b = registration(party, key, other.origin), registration(party, key, ws.origin)
    assert in_a.leaf_hash != in_b.leaf_hash  # one registration per log, not one for both
    with pytest.raises(WrongLogError):
        ws.append_signed([in_a])
    with pytest.raises(WrongLogError):
        other.append_signed([in_b])
    assert other.append_signed([in_a]) == [0]
    assert ws.append_signed([in_b]) == [0]
    for_a = sign_entry(asset("a"), author=party, key=key, origin=other.origin)
    for_b = sign_entry(asset("b"), author=party, key=key, origin=ws.origin)
    with pytest.raises(WrongLogError):
        ws.append_signed([for_a])
    with pytest.raises(WrongLogError):
        other.append_signed([for_b])
    assert other.append_signed([for_a]) == [1]
    assert ws.append_signed([for_b]) == [1]
    ws.verify()
    other.verify()


def test_the_origin_is_inside_what_is_signed() -> None:
    key, party = SigningKey.generate(), PartyId.new()
    entry = sign_entry(asset("a"), author=party, key=key, origin="a.example/log")
    assert b',"origin":"a.example/log",' in entry.canonical
    assert entry.signed_message.startswith(b"quotepart/entry/v2\n")
    moved = parse_entry(entry.canonical.replace(b"a.example/log", b"b.example/log"))
    with pytest.raises(SignatureError):
        moved.verify(key.public)
    stripped = parse_entry(entry.canonical.replace(b',"origin":"a.example/log"', b""))
    assert stripped.origin is None
    assert stripped.envelope == 1
    with pytest.raises(SignatureError):  # not downgraded to an unbound envelope 1 entry
        stripped.verify(key.public)
    for bad in (b'""', b"null", b'"a log"', b"7"):
        with pytest.raises(MalformedEntryError, match="origin"):
            parse_entry(entry.canonical.replace(b'"a.example/log"', bad))
    with pytest.raises(MalformedEntryError, match="origin"):
        sign_entry(asset("a"), author=party, key=key, origin="")


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: f"envelope-{v['envelope']}")
def test_envelope_vectors_parse_verify_and_keep_their_leaf_hash(vector: dict[str, Any]) -> None:
    entry = parse_entry(vector["entry"].encode())
    assert entry.envelope == vector["envelope"]
    assert entry.origin == vector["origin"]
    assert entry.leaf_hash.hex() == vector["leaf_hash"]
    entry.verify(VerifyKey(bytes.fromhex(VECTORS["public_key"])))
    if vector["origin"] is not None:  # signing is deterministic: the bytes are pinned
        again = sign_entry(
            entry.body(),
            author=entry.author,
            key=SigningKey.from_seed(bytes(range(32))),
            origin=vector["origin"],
            clock=lambda: datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
        )
        assert again.canonical == entry.canonical


def test_a_new_entry_without_an_origin_is_refused_at_append(ws: Workspace) -> None:
    party = ws.register_party("Alice")
    unbound = legacy_entry(asset("a"), author=party, key=ws.signing_key(party), origin="")
    unbound.verify(ws.signing_key(party).public)  # a well-signed envelope 1 entry
    with pytest.raises(WrongLogError, match="names no log"):
        ws.append_signed([unbound])


def test_an_older_log_of_envelope_1_entries_still_verifies_and_so_does_its_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with init_workspace(tmp_path / "old", clock=FakeClock()) as ws:
        with monkeypatch.context() as old_quotepart:
            behind_the_stores_back(old_quotepart)
            old_quotepart.setattr("quotepart.store.ledger.sign_entry", legacy_entry)
            old_quotepart.setattr("quotepart.provenance.service.sign_entry", legacy_entry)
            scene = Scene(ws)
        legacy = ws.store.tree_size()
        assert {ws.entry_at(i).envelope for i in range(legacy)} == {1}
        ws.share(
            ws.record_revenue(
                scene.service, "300.00", "EUR", period="2026-01", source="x", by=scene.lab
            )
        )
        assert {ws.entry_at(i).origin for i in range(legacy, ws.store.tree_size())} == {ws.origin}
        ws.verify()
        proof = json.loads(json.dumps(ws.statement_proof(scene.hospital_b, "2026-Q1")))
        envelopes = {parse_entry(base64.b64decode(e)).envelope for e in proof["entries"].values()}
        assert envelopes == {1, 2}
        verified = verify_statement(proof, trusted_key=str(ws.verifier))
        assert verified.totals == {"EUR": 1125}


def test_a_statement_file_verifies_offline_and_its_entries_name_its_log(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
        ws.share(
            ws.record_revenue(
                scene.service, "300.00", "EUR", period="2026-01", source="x", by=scene.lab
            )
        )
        proof = json.loads(json.dumps(ws.statement_proof(scene.hospital_b, "2026-Q1")))
        origin, verifier = ws.origin, str(ws.verifier)
    origins = {parse_entry(base64.b64decode(e)).origin for e in proof["entries"].values()}
    assert origins == {origin}
    verified = verify_statement(proof, trusted_key=verifier)
    assert (verified.origin, verified.totals) == (origin, {"EUR": 1125})
