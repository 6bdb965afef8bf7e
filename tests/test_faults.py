"""The fault table (issue 15), kept as tests: a full disk, a locked database, PostgreSQL
backends terminated mid-append, and hostile names in a SEPA payment file.

Each fault is made for real (a 2 MiB tmpfs, a second SQLite connection holding the write
lock, `pg_terminate_backend`), not mocked. Where the machine does not allow one (mounting
needs root, PostgreSQL a server) the test skips and says why; on CI PostgreSQL must be there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner
from sqlalchemy import text

from quotepart.cli import cli
from quotepart.errors import StorageError
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import AssetRegistered
from quotepart.store import engine as store_engine
from quotepart.workspace import DATABASE_FILE, Workspace, init_workspace, open_workspace
from tests.conftest import FakeClock

GOOD_IBANS = ["DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300"]
LAB_IBAN = "GB82WEST12345698765432"


def asset_batch(tag: str, size: int) -> list[AssetRegistered]:
    return [
        AssetRegistered(
            Digest.of_bytes(f"{tag}/{n}".encode()), "dataset", f"{tag}/{n} " + "x" * 150
        )
        for n in range(size)
    ]


def present(ws: Workspace) -> dict[str, int]:
    """Every registered asset's digest and leaf index."""
    return {str(record.asset): record.leaf_index for record in ws.assets()}


# ------------------------------------------------------------------ full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test, or a skip saying why it cannot be."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command here to make a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip() or f"exit code {done.returncode}").splitlines()[0]
        print(f"cannot mount a tmpfs: {reason}")
        pytest.skip(f"mounting a tmpfs is not allowed here (needs root): {reason}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Take whatever space is left on the disk holding `folder`."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as handle:
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()
    with contextlib.suppress(OSError):
        (folder / "filler2").write_bytes(b"\0")  # the last part-page, if any


def test_a_full_disk_keeps_every_acknowledged_append_and_nothing_of_a_failed_one(
    small_disk: Path, tmp_path: Path
) -> None:
    acknowledged: dict[str, int] = {}
    failure: StorageError | None = None
    with init_workspace(small_disk / "ws", clock=FakeClock()) as ws:
        party = ws.register_party("Writer")
        for round_number in range(2_000):  # about 130 batches fill 2 MiB; bounded regardless
            bodies = asset_batch(f"r{round_number}", 10)
            try:
                indexes = ws.append_many([(body, party) for body in bodies])
            except StorageError as exc:
                failure = exc
                break
            acknowledged.update(
                (str(body.asset), index) for body, index in zip(bodies, indexes, strict=True)
            )
        assert failure is not None, "the 2 MiB disk never filled"
        assert "disk is full" in failure.message
        assert str(small_disk / "ws" / DATABASE_FILE) in failure.message
        assert failure.hint
        assert "free some space" in failure.hint
        # the failed batch wrote nothing, and the workspace still answers reads
        assert ws.store.tree_size() == 1 + len(acknowledged)
        with pytest.raises(StorageError, match="disk is full"):
            ws.append_many([(body, party) for body in asset_batch("again", 10)])
        assert ws.store.tree_size() == 1 + len(acknowledged)

    copy = tmp_path / "copy"  # reopened on a disk with room: opening writes (WAL, migrations)
    shutil.copytree(small_disk / "ws", copy)
    with open_workspace(copy) as ws:
        assert present(ws) == acknowledged
        assert ws.store.tree_size() == 1 + len(acknowledged)
        assert ws.verify().tree_size == 1 + len(acknowledged)


def test_party_add_on_a_full_disk_says_so_in_one_line_and_leaves_no_key_file(
    small_disk: Path,
) -> None:
    with init_workspace(small_disk / "ws", clock=FakeClock()) as ws:
        party = ws.register_party("Writer")
        with contextlib.suppress(StorageError):  # the log fills the disk, as in use
            for round_number in range(2_000):
                ws.append_many([(body, party) for body in asset_batch(f"r{round_number}", 10)])
        size = ws.store.tree_size()
    keys = small_disk / "ws" / "keys"
    before = sorted(path.name for path in keys.iterdir())

    # first with the disk as the log left it (the database opens; the key cannot be
    # written), then with every last block taken (the database cannot even open its WAL)
    for filled in (False, True):
        if filled:
            fill(small_disk)
        result = CliRunner().invoke(
            cli, ["party", "add", "Clinic", "--workspace", str(small_disk / "ws")]
        )
        assert result.exit_code == StorageError.exit_code == 5, result.output
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 2, lines
        assert lines[0].startswith("Error: the disk is full: cannot "), lines
        assert str(small_disk / "ws") in lines[0]
        assert lines[1].startswith("Hint: free some space"), lines
        assert result.stdout == ""
        after = sorted(path.name for path in keys.iterdir())
        assert after == before  # no 0-byte key, no partial one, no `.…tmp` left
        if not filled:  # the file meant (the key, or the log), never a temporary name
            assert f"cannot write {keys}/party-" in lines[0] or (
                f"cannot write the database {small_disk / 'ws' / DATABASE_FILE}" in lines[0]
            ), lines

    copy = small_disk.parent / "copy"
    shutil.copytree(small_disk / "ws", copy)
    with open_workspace(copy) as ws:
        assert ws.store.tree_size() == size
        assert [entry.name for entry in ws.parties()] == ["Writer"]


def test_a_disk_full_error_from_a_write_names_the_file_it_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where mounting is not allowed: the same path, with ENOSPC raised by fsync."""
    from quotepart.store import keyfolder

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with init_workspace(tmp_path / "ws", clock=FakeClock()):
        pass
    keys = tmp_path / "ws" / "keys"
    before = sorted(path.name for path in keys.iterdir())
    monkeypatch.setattr(keyfolder.os, "fsync", no_space)
    result = CliRunner().invoke(
        cli, ["party", "add", "Clinic", "--workspace", str(tmp_path / "ws")]
    )
    assert result.exit_code == 5, result.output
    assert result.stderr.splitlines()[0].startswith(
        f"Error: the disk is full: cannot write {keys}/party-"
    )
    assert sorted(path.name for path in keys.iterdir()) == before


# ------------------------------------------------------------- locked database


def test_a_locked_database_fails_the_append_cleanly_and_it_succeeds_once_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MS", 300)  # read when opening
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        party = ws.register_party("Writer")
        holder = sqlite3.connect(tmp_path / "ws" / DATABASE_FILE, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # the write lock, held past the busy timeout
            started = time.monotonic()
            with pytest.raises(StorageError) as caught:
                ws.append_many([(body, party) for body in asset_batch("locked", 3)])
            assert time.monotonic() - started < 10
            assert "locked by another writer" in caught.value.message
            assert str(tmp_path / "ws" / DATABASE_FILE) in caught.value.message
            assert caught.value.hint
            assert "retry" in caught.value.hint
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        assert ws.store.tree_size() == 1
        assert present(ws) == {}
        bodies = asset_batch("released", 3)
        assert ws.append_many([(body, party) for body in bodies]) == [1, 2, 3]
        assert ws.verify().tree_size == 4


# --------------------------------------------- PostgreSQL backends terminated


def test_postgres_backends_terminated_mid_append_lose_no_acknowledged_entry(
    postgres_url: str, tmp_path: Path
) -> None:
    from tests.conftest import POSTGRES_URL

    application = f"qp_fault_{uuid.uuid4().hex[:8]}"
    with init_workspace(tmp_path / "ws", database_url=postgres_url) as ws:
        party = ws.register_party("Writer")
    admin = sqlalchemy.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    stop = threading.Event()
    kills: list[int] = []

    def terminate() -> None:
        with admin.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            while not stop.is_set():
                killed = connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND application_name = :name"
                    ),
                    {"name": application},
                ).scalar_one()
                kills.append(int(killed))
                time.sleep(0.05)  # room for some appends to commit between kills

    acknowledged: dict[str, int] = {}
    failed: list[list[str]] = []
    killer = threading.Thread(target=terminate, daemon=True)
    try:
        with open_workspace(
            tmp_path / "ws",
            database_url=f"{postgres_url}&application_name={application}",
        ) as ws:
            killer.start()
            deadline = time.monotonic() + 8
            for round_number in range(400):
                if time.monotonic() > deadline:
                    break
                bodies = asset_batch(f"r{round_number}", 5)
                try:
                    indexes = ws.append_many([(body, party) for body in bodies])
                except StorageError:
                    failed.append([str(body.asset) for body in bodies])
                    continue
                acknowledged.update(
                    (str(body.asset), index) for body, index in zip(bodies, indexes, strict=True)
                )
    finally:
        stop.set()
        killer.join(timeout=10)
        admin.dispose()
    print(f"{len(acknowledged)} acknowledged, {len(failed)} batches failed, {sum(kills)} killed")
    assert sum(kills) > 0, "no backend was terminated: the fault never happened"
    assert failed, "no append failed: the fault never reached an append"

    with open_workspace(tmp_path / "ws", database_url=postgres_url) as ws:
        found = present(ws)
        for digest, index in acknowledged.items():
            assert found.get(digest) == index, f"acknowledged {digest} at {index} is missing"
        for batch in failed:  # a batch whose commit was not acknowledged: all of it or none
            kept = [digest for digest in batch if digest in found]
            assert kept in ([], batch), f"a partial batch was kept: {kept}"
        assert ws.store.tree_size() == 1 + len(found)
        assert ws.verify().tree_size == 1 + len(found)


# ------------------------------------------------------- hostile names in SEPA

HOSTILE = {
    "<script>x</script>": ".script.x./script.",
    'A & B "quoted"': "A + B .quoted.",
    "]]>": "...",
}


def test_hostile_names_in_a_sepa_file_stay_text_and_the_file_is_well_formed(
    tmp_path: Path,
) -> None:
    """The names are signed as given; the SEPA file carries their documented SEPA form
    (transliterated, `&` as `+`, other characters outside the SEPA set as `.`), escaped."""
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        lab = ws.register_party("<Lab> & ]]>", roles=("operator",), payout_reference=LAB_IBAN)
        payees: dict[PartyId, str] = {}
        for name, iban in zip(HOSTILE, GOOD_IBANS, strict=False):
            payees[ws.register_party(name, payout_reference=iban)] = name
        for party, name in payees.items():
            assert ws.party_entry(party).name == name  # the log holds the name as given
        model = ws.register_asset(b"weights", asset_kind="model", name="M", by=lab)
        for n, party in enumerate(payees):
            data = ws.register_asset(f"d{n}".encode(), asset_kind="dataset", name=f"D{n}", by=party)
            ws.contribute(data, {party: 1}, role="data", by=party)
            with ws.run(f"train{n}", operator=lab) as run:
                run.use(data)
                run.produce(model)
        service = ws.register_service(
            name="s", endpoint="https://api.example.org/v1", model=model, by=lab
        )
        ws.set_policy(model, pool="1/2", roles={"data": "1"}, weighting={"data": "equal"}, by=lab)
        ws.share(ws.record_revenue(service, "900.00", "EUR", period="2026-01", source="x", by=lab))
        exported = ws.export_payout(
            "2026-Q1", "EUR", "sepa", by=lab, debtor_name='Lab <&> "x"', debtor_iban=LAB_IBAN
        )
    root = ET.fromstring(exported.content)  # raises on a document that is not well-formed
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
    creditors = sorted(
        element.text or "" for element in root.iterfind(".//p:CdtTrfTxInf/p:Cdtr/p:Nm", ns)
    )
    assert creditors == sorted(HOSTILE.values())
    assert root.findtext(".//p:Dbtr/p:Nm", namespaces=ns) == "Lab .+. .x."
    for raw in (b"<script", b"]]>", b'"quoted"'):
        assert raw not in exported.content
