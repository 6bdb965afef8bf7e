"""The command line: JSON shapes, proofs that verify, and bad input as one-line errors."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from quotepart.cli import cli
from quotepart.demo import PERIOD
from quotepart.ids import PartyId
from quotepart.log import (
    Checkpoint,
    NoteVerifier,
    SigningKey,
    canonicalize,
    leaf_hash,
    sign_entry,
    verify_consistency,
    verify_inclusion,
)
from quotepart.sharing import verify_statement
from quotepart.workspace import open_workspace
from tests.cli.conftest import DemoRun
from tests.helpers import asset_body, populate


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    assert run("init", str(folder)).exit_code == 0
    with open_workspace(folder) as ws:
        populate(ws, assets=4)
    return folder


def as_json(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def test_init_makes_a_wal_database_and_a_private_log_key(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "ws"), "--json")
    document = as_json(result)
    assert str(document["verifier_key"]).startswith(str(document["origin"]) + "+")
    key_file = tmp_path / "ws" / "keys" / "log.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with sqlite3.connect(tmp_path / "ws" / "quotepart.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = run("init", str(tmp_path / "ws"))
    assert again.exit_code == 2
    assert "already a quotepart workspace" in again.stderr


def test_checkpoint_and_key_verify_each_other(folder: Path) -> None:
    note = run("log", "checkpoint", "--workspace", str(folder)).stdout
    key = run("log", "key", "--workspace", str(folder)).stdout.strip()
    checkpoint = Checkpoint.open(note, NoteVerifier.parse(key))
    assert checkpoint.tree_size == 10
    assert note.split("\n")[3] == ""
    assert note.split("\n")[4].startswith("— ")
    document = as_json(run("log", "checkpoint", "--workspace", str(folder), "--json"))
    assert document["root_hash"] == checkpoint.root_hash.hex()


def test_entry_and_inclusion_proof_json(folder: Path) -> None:
    entry = as_json(run("log", "entry", "3", "--workspace", str(folder), "--json"))
    assert set(entry) == {"index", "leaf_hash", "entry"}
    data = base64.b64decode(str(entry["entry"]))
    assert leaf_hash(data).hex() == entry["leaf_hash"]
    proof = as_json(
        run("log", "prove-inclusion", "3", "--tree-size", "7", "--workspace", str(folder), "--json")
    )
    assert set(proof) == {"leaf_index", "tree_size", "leaf_hash", "root_hash", "proof"}
    assert proof["tree_size"] == 7
    assert proof["leaf_hash"] == entry["leaf_hash"]
    verify_inclusion(
        leaf_hash(data),
        3,
        7,
        [bytes.fromhex(p) for p in proof["proof"]],
        bytes.fromhex(str(proof["root_hash"])),  # type: ignore[attr-defined]
    )
    with open_workspace(folder) as ws:
        assert ws.store.checkpoint_at(7) is not None
        assert (
            Checkpoint.open(ws.store.checkpoint_at(7) or "", ws.verifier).root_hash.hex()
            == proof["root_hash"]
        )


def test_consistency_proof_json(folder: Path) -> None:
    proof = as_json(
        run("log", "prove-consistency", "3", "10", "--workspace", str(folder), "--json")
    )
    assert set(proof) == {"old_size", "new_size", "old_root", "new_root", "proof"}
    verify_consistency(
        3,
        10,
        bytes.fromhex(str(proof["old_root"])),
        bytes.fromhex(str(proof["new_root"])),
        [bytes.fromhex(p) for p in proof["proof"]],  # type: ignore[attr-defined]
    )


def test_verify_and_rebuild(folder: Path) -> None:
    document = as_json(run("verify", "--workspace", str(folder), "--json"))
    assert document["ok"] is True
    assert document["tree_size"] == 10
    assert document["signatures_checked"] == 10
    assert as_json(run("rebuild", "--workspace", str(folder), "--json")) == {"replayed": 10}
    assert run("verify", "--workspace", str(folder)).stdout.startswith("OK: 10 entries")


def test_workspace_comes_from_quotepart_home(folder: Path) -> None:
    result = CliRunner(env={"QUOTEPART_HOME": str(folder)}).invoke(cli, ["log", "key"])
    assert result.exit_code == 0
    assert result.stdout.count("+") >= 2


def test_append_accepts_entries_signed_elsewhere(folder: Path) -> None:
    with open_workspace(folder) as ws:
        party = ws.parties()[0].party
        key = ws.signing_key(party)
    lines = [
        sign_entry(asset_body(100 + n), origin=ws.origin, author=party, key=key).canonical.decode()
        for n in range(3)
    ]
    result = run(
        "log", "append", "-", "--workspace", str(folder), "--json", input="\n".join(lines) + "\n"
    )
    assert as_json(result) == {"indexes": [10, 11, 12]}


def assert_refused(
    result: Result, exit_code: int, message: str, folder: Path | None = None
) -> None:
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: "), lines
    assert message in lines[0], lines
    assert lines[1].startswith("Hint: "), lines
    assert "Traceback" not in result.output
    if folder is not None:
        with open_workspace(folder) as ws:
            assert ws.store.tree_size() == 10  # nothing written
            ws.verify()


def test_bad_entries_are_refused_whole(folder: Path) -> None:
    with open_workspace(folder) as ws:
        party = ws.parties()[0].party
        key = ws.signing_key(party)
    good = sign_entry(asset_body(200), origin=ws.origin, author=party, key=key).canonical.decode()
    document = json.loads(good)
    cases = [
        ('{"kind": ', 2, "line 1: not JSON"),
        (
            good + "\n" + canonicalize({**document, "kind": "asset.burned"}).decode(),
            2,
            "unknown entry kind",
        ),
        (canonicalize({**document, "v": 9}).decode(), 2, "unknown version 9"),
        (
            sign_entry(
                asset_body(201), origin=ws.origin, author=party, key=SigningKey.generate()
            ).canonical.decode(),
            3,
            "signature is not by",
        ),
        (
            sign_entry(
                asset_body(202), origin=ws.origin, author=PartyId.new(), key=SigningKey.generate()
            ).canonical.decode(),
            2,
            "not registered",
        ),
        ("", 2, "no entries to append"),
    ]
    for text, exit_code, message in cases:
        result = run("log", "append", "-", "--workspace", str(folder), input=text)
        assert_refused(result, exit_code, message, folder)


def test_out_of_range_requests(folder: Path) -> None:
    assert_refused(
        run("log", "entry", "10", "--workspace", str(folder)), 2, "beyond the log", folder
    )
    assert_refused(
        run("log", "prove-inclusion", "12", "--workspace", str(folder)), 2, "not in a tree"
    )
    assert_refused(
        run("log", "prove-inclusion", "1", "--tree-size", "11", "--workspace", str(folder)),
        2,
        "larger than the log",
    )
    assert_refused(
        run("log", "prove-consistency", "3", "99", "--workspace", str(folder)),
        2,
        "larger than the log",
    )
    assert_refused(
        run("log", "prove-consistency", "9", "3", "--workspace", str(folder)), 2, "between 0 and"
    )


def test_missing_or_foreign_workspaces(tmp_path: Path) -> None:
    assert_refused(run("verify", "--workspace", str(tmp_path / "nowhere")), 4, "does not exist")
    assert_refused(
        run("log", "checkpoint", "--workspace", str(tmp_path)), 4, "is not a quotepart workspace"
    )
    assert not (tmp_path / "quotepart.db").exists()


def test_unreachable_database(tmp_path: Path) -> None:
    result = run(
        "init", str(tmp_path / "pg"), "--database-url", "postgresql://nobody@127.0.0.1:1/none"
    )
    assert_refused(result, 5, "cannot reach database")
    assert not (tmp_path / "pg").exists()
    result = run("init", str(tmp_path / "pg"), "--database-url", "mysql://x@y/z")
    assert_refused(result, 2, "unsupported database")


def test_the_demo_log_on_postgresql_verifies_shares_and_states_the_same(
    tmp_path: Path, postgres_url: str, demo: DemoRun
) -> None:
    """The session's demo log (every kind it writes, > 1,000 entries), appended into a
    PostgreSQL workspace of the same origin: it verifies there, and sharing and statements read back from
    PostgreSQL give the demo's amounts."""
    with open_workspace(demo.folder) as source:
        size = source.store.tree_size()
        lines = b"".join(data + b"\n" for _, _, data in source.store.leaves(0, size))
        origin = source.origin
    pg = tmp_path / "pg"  # the same log (origin) moved to PostgreSQL: its entries are meant for it
    assert run("init", str(pg), "--database-url", postgres_url, "--origin", origin).exit_code == 0
    (tmp_path / "entries.jsonl").write_bytes(lines)
    appended = run("log", "append", str(tmp_path / "entries.jsonl"), "--workspace", str(pg))
    assert appended.exit_code == 0, appended.stderr
    assert not (pg / "quotepart.db").exists()  # the log lives in PostgreSQL
    assert as_json(run("verify", "--workspace", str(pg), "--json"))["tree_size"] == size > 1_000
    with open_workspace(pg) as ws:
        [(_, revenue)] = ws.revenue_entries()
        shared = ws.share(revenue.raw_body["revenue"])  # recomputed from PostgreSQL's rows
        assert not shared.new
        names = {p.party: p.name for p in ws.parties()}
        assert {names[p]: a for p, a in shared.allocation.amounts.items()} == demo.result.amounts
        for party, amount in shared.allocation.amounts.items():
            proof = ws.statement_proof(party, PERIOD)
            assert verify_statement(proof).totals == {"EUR": amount}
    unreachable = run("demo", "--workspace", str(tmp_path / "nowhere" / "demo"),
                      "--database-url", "postgresql://nobody@127.0.0.1:1/none")  # fmt: skip
    assert_refused(unreachable, 5, "cannot reach database")  # --database-url reaches init


def test_the_collector_paused_for_start_up_is_back_once_the_workspace_is_open(
    tmp_path: Path,
) -> None:
    import gc

    from quotepart.cli._base import load_workspace, pause_collector
    from quotepart.workspace import init_workspace

    init_workspace(tmp_path / "ws").close()
    assert gc.isenabled()
    pause_collector()
    try:
        assert not gc.isenabled()
        with load_workspace(tmp_path / "ws", None) as ws:
            assert gc.isenabled()
            assert ws.store.tree_size() == 0
    finally:
        gc.enable()
        gc.unfreeze()
