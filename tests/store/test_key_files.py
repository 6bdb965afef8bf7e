"""Key and secret files (issue 15, items 3 and 4): written whole or not at all, refused when
damaged, one usage key for concurrent first users, private modes, no password in
workspace.json, masked accounts in payout errors."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from quotepart.errors import KeyFileError, PaymentDetailsError
from quotepart.ids import PartyId
from quotepart.log import SigningKey
from quotepart.provenance.parties import check_iban, check_msisdn, mask_account
from quotepart.store import keyfolder, split_password, with_password
from quotepart.store.keyfolder import USAGE_KEY_SIZE, KeyFolder, write_private_file
from quotepart.workspace import PASSWORD_ENV, SETTINGS_FILE, init_workspace, open_workspace
from tests.conftest import FakeClock
from tests.sharing.test_workspace_sharing import Scene

FORK = multiprocessing.get_context("fork")
STEPS = ("created", "written", "synced", "linked")
PARTY = PartyId.parse("party:01JAAAAAAAAAAAAAAAAAAAAAAA")
KILLED = 9


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[KeyFolder]:
    old = os.umask(0o022)  # the usual umask: files would be 0644 if we did nothing
    try:
        yield KeyFolder(tmp_path)
    finally:
        os.umask(old)


# --------------------------------------------------- a writer killed at each step

_WRITERS: dict[str, tuple[Callable[[KeyFolder], object], Callable[[KeyFolder], Path]]] = {
    "usage key": (lambda f: f.usage_key(), lambda f: f.usage_key_path),
    "log key": (lambda f: f.create_log_key(), lambda f: f.log_key_path),
    "party key": (
        lambda f: f.save_party_key(PARTY, SigningKey.generate()),
        lambda f: f.party_key_path(PARTY),
    ),
    "payout reference": (
        lambda f: f.save_payout_secret(f.payout_secret_path(PARTY), b'{"reference": "x"}'),
        lambda f: f.payout_secret_path(PARTY),
    ),
    "payment file": (
        lambda f: f.write_payment_file("p.xml", b"<Document/>"),
        lambda f: f.payment_file("p.xml"),
    ),
}


def _write_and_die_at(root: Path, writer: str, step: str) -> None:
    def die(name: str) -> None:
        if name == step:
            os._exit(KILLED)

    keyfolder.fault_hook = die
    _WRITERS[writer][0](KeyFolder(root))
    os._exit(0)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("writer", sorted(_WRITERS))
def test_a_writer_killed_at_any_step_leaves_no_file_or_the_whole_file(
    folder: KeyFolder, writer: str, step: str
) -> None:
    child = FORK.Process(target=_write_and_die_at, args=(folder.root, writer, step))
    child.start()
    child.join(30)
    assert child.exitcode == KILLED
    path = _WRITERS[writer][1](folder)
    if step == "linked":
        assert path.stat().st_size > 0
        assert _mode(path) == 0o600
    else:
        assert not path.exists()
    # no other name holds the secret: only the dotted temporary file may be left over
    assert all(p.name.startswith(".") for p in path.parent.iterdir() if p != path)


@pytest.mark.parametrize("step", STEPS)
def test_the_usage_key_after_a_killed_first_use_is_never_empty(
    folder: KeyFolder, step: str
) -> None:
    child = FORK.Process(target=_write_and_die_at, args=(folder.root, "usage key", step))
    child.start()
    child.join(30)
    assert child.exitcode == KILLED
    written = folder.usage_key_path.read_bytes() if folder.usage_key_path.exists() else None
    key = folder.usage_key()
    assert len(key) == USAGE_KEY_SIZE
    assert written is None or key == written  # a key that reached its name is the key
    assert folder.usage_key() == key


# --------------------------------------------------------- damaged key files


@pytest.mark.parametrize("content", [b"", b"\x01" * 5, b"\x01" * 33])
def test_a_damaged_usage_key_is_refused_never_replaced(folder: KeyFolder, content: bytes) -> None:
    folder.keys_dir.mkdir()
    folder.usage_key_path.write_bytes(content)
    with pytest.raises(KeyFileError, match=r"usage pseudonym key .*usage\.key") as caught:
        folder.usage_key()
    assert caught.value.hint is not None
    assert "backup" in caught.value.hint
    assert folder.usage_key_path.read_bytes() == content


def test_a_workspace_with_an_empty_usage_key_records_no_pseudonym(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        ws.keys.usage_key_path.write_bytes(b"")  # what a writer killed by the old code left
        with pytest.raises(KeyFileError, match="is empty"):
            ws.pseudonym("alice@example.org")


@pytest.mark.parametrize("content", [b"", b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw"])
def test_an_empty_or_truncated_signing_key_is_refused(folder: KeyFolder, content: bytes) -> None:
    folder.create_log_key()
    folder.save_party_key(PARTY, SigningKey.generate())
    for path, load in [
        (folder.log_key_path, folder.log_key),
        (folder.party_key_path(PARTY), lambda: folder.party_key(PARTY)),
    ]:
        path.write_bytes(content)
        with pytest.raises(KeyFileError, match=path.name) as caught:
            load()
        assert caught.value.hint is not None
        assert "backup" in caught.value.hint


def test_an_unreadable_key_file_is_refused(folder: KeyFolder) -> None:
    folder.keys_dir.mkdir()
    folder.usage_key_path.mkdir()  # unreadable as a file, even for root
    with pytest.raises(KeyFileError, match="cannot read the usage pseudonym key"):
        folder.usage_key()


def test_an_empty_payout_reference_file_is_refused(folder: KeyFolder) -> None:
    folder.keys_dir.mkdir()
    folder.payout_secret_path(PARTY).write_bytes(b"")
    with pytest.raises(KeyFileError, match=r"payout reference file .*payout\.json"):
        folder.payout_secret(folder.payout_secret_path(PARTY))


# ------------------------------------------------------ two first users at once


def _first_use(root: Path, start: Barrier, keys: Queue[bytes | str]) -> None:
    start.wait()
    try:
        keys.put(KeyFolder(root).usage_key())
    except BaseException as exc:  # reported to the parent, which fails the test
        keys.put(repr(exc))


@pytest.mark.parametrize("trial", range(12))
def test_two_first_users_of_the_usage_key_get_one_key(tmp_path: Path, trial: int) -> None:
    users = 2 + trial % 3  # 2 to 4 processes at once
    start = FORK.Barrier(users)
    keys: Queue[bytes | str] = FORK.Queue()
    children = [FORK.Process(target=_first_use, args=(tmp_path, start, keys)) for _ in range(users)]
    for child in children:
        child.start()
    got = [keys.get(timeout=30) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert all(isinstance(key, bytes) and len(key) == USAGE_KEY_SIZE for key in got), got
    assert len(set(got)) == 1
    assert KeyFolder(tmp_path).usage_key() == got[0]


# --------------------------------------------------------------------- modes


def test_keys_and_payment_files_are_for_the_owner_only(folder: KeyFolder) -> None:
    folder.create_log_key()
    folder.save_party_key(PARTY, SigningKey.generate())
    folder.save_payout_secret(folder.payout_secret_path(PARTY), b"{}")
    folder.usage_key()
    folder.payouts_dir.mkdir(mode=0o755)  # made by an older quotepart
    folder.write_payment_file("p.xml", b"<Document/>")
    assert _mode(folder.keys_dir) == 0o700
    assert _mode(folder.payouts_dir) == 0o700
    files = [*folder.keys_dir.iterdir(), *folder.payouts_dir.iterdir()]
    assert len(files) == 5
    assert all(_mode(path) == 0o600 for path in files)


def test_an_output_copy_is_for_the_owner_only_and_replaces_the_old(folder: KeyFolder) -> None:
    target = folder.root / "payout.xml"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_private_file(target, b"<Document/>")
    assert target.read_bytes() == b"<Document/>"
    assert _mode(target) == 0o600
    assert [p.name for p in folder.root.iterdir()] == ["payout.xml"]


def test_an_exported_payout_and_its_output_copy_are_private(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from quotepart.cli import cli
    from tests.sharing.test_workspace_sharing import GOOD_IBANS

    old = os.umask(0o022)
    try:
        with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
            scene = Scene(ws)
            revenue = ws.record_revenue(
                scene.service, "1000.00", "EUR", period="2026-01", source="x", by=scene.lab
            )
            ws.share(revenue)
        result = CliRunner().invoke(
            cli,
            [
                "payout",
                "export",
                "--period",
                "2026-Q1",
                "--currency",
                "EUR",
                "--by",
                "Lab",
                "--debtor-name",
                "Lab",
                "--debtor-iban",
                GOOD_IBANS[2],
                "--minimum",
                "1",
                "--output",
                str(tmp_path / "copy.xml"),
                "--workspace",
                str(tmp_path / "ws"),
            ],
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    payouts = tmp_path / "ws" / "payouts"
    assert _mode(payouts) == 0o700
    files = [*payouts.iterdir(), *tmp_path.glob("copy*")]
    assert len(files) == 4  # a SEPA and a mobile-money file, each with its copy
    assert all(_mode(path) == 0o600 for path in files)


# ---------------------------------------------------------- database password


def test_a_password_in_the_url_is_kept_apart_from_workspace_json(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    url = with_password(postgres_url, "s3cret")  # the test server trusts local connections
    with init_workspace(tmp_path / "ws", database_url=url, clock=FakeClock()) as ws:
        assert "s3cret" not in ws.database_url
    settings = (tmp_path / "ws" / SETTINGS_FILE).read_text()
    assert "s3cret" not in settings
    assert json.loads(settings)["database_url"] == split_password(url)[0]
    secret = tmp_path / "ws" / "keys" / "database.password"
    assert secret.read_text() == "s3cret\n"
    assert _mode(secret) == 0o600
    with open_workspace(tmp_path / "ws") as ws:
        assert ws.store.engine.url.password == "s3cret"
    monkeypatch.setenv(PASSWORD_ENV, "from-the-environment")
    with open_workspace(tmp_path / "ws") as ws:
        assert ws.store.engine.url.password == "from-the-environment"


def test_a_password_left_in_an_old_workspace_json_is_moved_out(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    init_workspace(tmp_path / "ws", database_url=postgres_url, clock=FakeClock()).close()
    settings_path = tmp_path / "ws" / SETTINGS_FILE
    settings = json.loads(settings_path.read_text())
    settings["database_url"] = with_password(postgres_url, "old-s3cret")
    settings_path.write_text(json.dumps(settings))
    with open_workspace(tmp_path / "ws") as ws:
        assert ws.store.engine.url.password == "old-s3cret"
    assert "old-s3cret" not in settings_path.read_text()
    assert (tmp_path / "ws" / "keys" / "database.password").read_text() == "old-s3cret\n"


# ------------------------------------------------------------ masked accounts


def test_payout_errors_show_accounts_masked() -> None:
    bad_iban = "DE89 3704 0044 0532 0130 01"  # one check digit off
    with pytest.raises(PaymentDetailsError) as caught:
        check_iban(bad_iban)
    message = str(caught.value)
    assert "DE89 **** **** **** 3001" in message
    assert "DE89370400440532013001" not in message
    assert bad_iban not in message
    with pytest.raises(PaymentDetailsError) as caught:
        check_msisdn("0712345678")
    assert "0712 **** 5678" in str(caught.value)
    assert "0712345678" not in str(caught.value)


def test_registering_a_bad_reference_never_prints_it(tmp_path: Path) -> None:
    with (
        init_workspace(tmp_path / "ws", clock=FakeClock()) as ws,
        pytest.raises(PaymentDetailsError) as caught,
    ):
        ws.register_party("Ada", payout_reference="GB82WEST12345698765433")
    assert "GB82WEST12345698765433" not in str(caught.value)
    assert "GB82 **** **** **** 5433" in str(caught.value)


def test_a_short_account_is_masked_too() -> None:
    assert mask_account("+2547123") == "+2******"
    assert mask_account("") == ""
