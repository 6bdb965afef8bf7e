"""One published report of a realistic scene, shared by the report tests (it takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from quotepart.report import ReportFiles
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.report.scene import ReportScene


@dataclass
class Published:
    scene: ReportScene
    files: ReportFiles
    revenues: list[str]

    @property
    def ws(self) -> Workspace:
        return self.scene.ws


@pytest.fixture(scope="package")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    folder = tmp_path_factory.mktemp("report")
    with init_workspace(folder / "ws", clock=FakeClock()) as ws:
        scene = ReportScene(ws)
        revenues = scene.earn()
        files = ws.publish_report(scene.service, "2026-Q1", folder / "out")
        yield Published(scene, files, revenues)
