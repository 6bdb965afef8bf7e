"""A workspace on read-only media can be read (verify, the log, statements, lineage) and
creates no file; a command that writes refuses, saying the workspace is read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.errors import ReadOnlyWorkspaceError
from quotepart.workspace import init_workspace, open_workspace
from tests.conftest import FakeClock
from tests.sharing.test_workspace_sharing import Scene


def _mount_read_only(source: Path, target: Path) -> bool:
    target.mkdir()
    bind = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if bind.returncode != 0:
        return False
    remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True)
    if remount.returncode != 0:
        subprocess.run(["umount", str(target)], capture_output=True)
        return False
    return True


@pytest.fixture
def read_only_workspace(tmp_path: Path) -> Iterator[tuple[Path, Scene, str]]:
    source = tmp_path / "ws"
    with init_workspace(source, clock=FakeClock()) as ws:
        scene = Scene(ws)
        revenue = ws.record_revenue(
            scene.model, "1000.00", "EUR", period="2026-Q1", source="licence", by=scene.lab
        )
        ws.share(revenue)
        hospital = str(scene.hospital_a)
    if shutil.which("mount") is None or not _mount_read_only(source, tmp_path / "ro"):
        pytest.skip("this machine does not allow a read-only bind mount (needs root and mount)")
    try:
        yield tmp_path / "ro", scene, hospital
    finally:
        subprocess.run(["umount", str(tmp_path / "ro")], capture_output=True)


def test_reading_commands_work_on_read_only_media(
    read_only_workspace: tuple[Path, Scene, str],
) -> None:
    folder, scene, hospital = read_only_workspace
    before = sorted(os.listdir(folder))
    with open_workspace(folder) as ws:
        assert ws.verify().tree_size == ws.store.tree_size()
        assert ws.statement(hospital, "2026-Q1").totals["EUR"] > 0
        assert ws.lineage(scene.model)
    runner = CliRunner()
    for args in (
        ["verify"],
        ["log", "checkpoint"],
        ["statement", hospital, "--period", "2026-Q1"],
        ["lineage", str(scene.model)],
        ["export", "prov", str(scene.model)],
        ["export", "openlineage"],
    ):
        result = runner.invoke(cli, [*args, "--workspace", str(folder)])
        assert result.exit_code == 0, (args, result.output)
    assert sorted(os.listdir(folder)) == before  # no -shm, no -wal, no key, nothing


def test_writing_on_read_only_media_refuses_and_says_why(
    read_only_workspace: tuple[Path, Scene, str],
) -> None:
    folder, scene, _ = read_only_workspace
    with open_workspace(folder) as ws:
        size = ws.store.tree_size()
        with pytest.raises(ReadOnlyWorkspaceError, match="read-only"):
            ws.set_policy(scene.model, pool="1/2", roles={"data": 1}, by=scene.lab)
        assert ws.store.tree_size() == size
    result = CliRunner().invoke(cli, ["party", "add", "Newcomer", "--workspace", str(folder)])
    assert result.exit_code == 2, result.output
    assert "read-only" in result.output
    assert "Traceback" not in result.output


def test_a_read_only_open_on_writable_storage_reads_and_refuses_appends(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
    with open_workspace(tmp_path / "ws", read_only=True) as ws:
        ws.verify()
        with pytest.raises(ReadOnlyWorkspaceError):
            ws.record_revenue(
                scene.model, "1.00", "EUR", period="2026-Q1", source="x", by=scene.lab
            )
