"""`quotepart demo` end to end in a temporary folder (the story itself: tests/demo)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.workspace import open_workspace


def test_the_demo_refuses_to_run_twice_in_one_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", "--workspace", str(tmp_path / "demo")])
    assert first.exit_code == 0, first.stderr
    assert "who gets paid what" in first.stdout
    with open_workspace(tmp_path / "demo") as ws:
        size = ws.store.tree_size()
    again = runner.invoke(cli, ["demo", "--workspace", str(tmp_path / "demo")])
    assert again.exit_code == 2
    assert "already holds a workspace" in again.stderr
    with open_workspace(tmp_path / "demo") as ws:
        assert ws.store.tree_size() == size  # no money recorded twice
    assert runner.invoke(cli, ["verify", "--workspace", str(tmp_path / "demo")]).exit_code == 0
