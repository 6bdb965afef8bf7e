"""`quotepart demo`, run once per test session (it takes seconds) and shared by the tests
that read what it made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import quotepart.demo as demo_module
from quotepart.cli import cli
from quotepart.demo import DemoResult


@dataclass(frozen=True)
class DemoRun:
    folder: Path  # the demo's workspace
    result: DemoResult  # what run_story returned inside the command
    stdout: str


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`quotepart demo --workspace DIR` through the CLI, its story's result caught on the way."""
    folder = tmp_path_factory.mktemp("demo") / "demo"
    results: list[DemoResult] = []
    real = demo_module.run_story

    def caught(*args: Any, **kwargs: Any) -> DemoResult:
        result = real(*args, **kwargs)
        results.append(result)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo_module, "run_story", caught)
        invoked = CliRunner().invoke(cli, ["demo", "--workspace", str(folder)])
    assert invoked.exit_code == 0, invoked.stderr
    [result] = results
    return DemoRun(folder, result, invoked.stdout)
