"""report.json byte for byte: the report scene, with seeded ids, keys and secrets, must give
the very bytes recorded in tests/report/golden/.

A published report's digest is in the log, so a refactor that changes one byte of
report.json for the same facts changes what was published. The scene is deterministic
only once its randomness is: ULIDs (`ulid.default_generator`), Ed25519 keys
(`SigningKey.generate`) and the pseudonymisation key (`secrets.token_bytes`) are drawn
here from counters, the clock is a `FakeClock`, and the scene runs outside any git work
tree (a run records the commit and dirty flag of the code in the working directory).

To regenerate after an intended change of the format: `python -m tests.report.test_golden`.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ulid

from quotepart.log.keys import SigningKey
from quotepart.provenance import runs
from quotepart.report import build_report_data
from quotepart.workspace import init_workspace
from tests.conftest import FakeClock
from tests.report.scene import ReportScene

GOLDEN = Path(__file__).parent / "golden"
REPORTS = {  # golden file -> (asset, period)
    "scene-service-2026-Q1.json": ("service", "2026-Q1"),
    "scene-model-2026.json": ("Triage model v2", "2026"),
}


def _counter(tag: bytes) -> Callable[[int], bytes]:
    count = itertools.count()
    return lambda size: hashlib.sha256(tag + str(next(count)).encode()).digest()[:size]


def seeded_randomness(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Every random draw of a workspace from counters, and `folder` (outside any git work
    tree) as the working directory: the same scene, the same bytes."""
    monkeypatch.chdir(folder)
    ids, keys, other = _counter(b"ulid"), _counter(b"key"), _counter(b"secret")
    generator = ulid.ULIDGenerator(randomness=lambda _timestamp: ids(10))
    monkeypatch.setattr(ulid, "default_generator", generator)
    monkeypatch.setattr(SigningKey, "generate", classmethod(lambda cls: cls.from_seed(keys(32))))
    monkeypatch.setattr(secrets, "token_bytes", lambda size=32: other(size))
    # A run records the machine's Python and package versions and the git commit: pinned,
    # so the golden bytes are the same on every machine (and a fresh one).
    monkeypatch.setattr(runs, "environment", lambda: {"python": "3.11", "platform": "test"})
    monkeypatch.setattr(runs, "code_version", lambda folder=None: {})


def reports(folder: Path) -> Iterator[tuple[str, bytes]]:
    """(golden file name, report.json bytes) of each report of the seeded scene."""
    with init_workspace(folder / "ws", clock=FakeClock()) as ws:
        scene = ReportScene(ws)
        scene.earn()
        for name, (asset, period) in REPORTS.items():
            reference = str(scene.service) if asset == "service" else asset
            with ws.store.engine.connect() as conn:
                data = build_report_data(conn, reference, period, verifier=ws.verifier)
            yield name, data.to_json_bytes()


def test_report_json_is_byte_for_byte_the_golden_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded_randomness(monkeypatch, tmp_path)
    for name, made in reports(tmp_path):
        assert made == (GOLDEN / name).read_bytes(), f"{name} differs from its golden bytes"


if __name__ == "__main__":
    import tempfile

    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as tmp:
        seeded_randomness(patch, Path(tmp))
        for name, made in reports(Path(tmp)):
            (GOLDEN / name).write_bytes(made)
            print(f"wrote {GOLDEN / name}")
