"""Nothing lost, nothing forked: SIGKILLed writers and concurrent writers on one workspace."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from quotepart.workspace import Workspace, init_workspace, open_workspace

ROOT = Path(__file__).resolve().parent.parent


def start_writer(
    ws: Workspace, party: str, tag: str, count: int, batch: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.writer_process",
            str(ws.path),
            party,
            tag,
            str(count),
            str(batch),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def read_lines(process: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            into.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def registered_at(ws: Workspace) -> dict[str, int]:
    return {str(record.asset): record.leaf_index for record in ws.assets()}


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_append(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    with init_workspace(tmp_path / "ws") as ws:
        party = str(ws.register_party("Writer"))
    acknowledged: dict[str, int] = {}
    kills = 0
    for round_number in range(12):
        with open_workspace(tmp_path / "ws") as ws:
            process = start_writer(
                ws, party, f"round{round_number}", 100_000, rng.choice([1, 3, 20])
            )
        lines: list[str] = []
        reader = read_lines(process, lines)
        # Kill once the writer is acknowledging (its start-up takes from half a second to
        # many on a loaded machine), at a random moment of its stream.
        deadline = time.monotonic() + 60
        while not lines and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        reader.join()
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        process.stderr.close()
        kills += process.returncode == -signal.SIGKILL
        for line in lines:
            if line.endswith("\n"):  # a torn last line was never fully acknowledged
                index, digest = line.split()
                acknowledged[digest] = int(index)
        with open_workspace(tmp_path / "ws") as ws:
            ws.verify()
            stored = registered_at(ws)
            missing = {d: i for d, i in acknowledged.items() if stored.get(d) != i}
            assert not missing, (
                f"round {round_number}: acknowledged appends lost: {list(missing)[:3]}"
            )
    assert kills == 12
    assert len(acknowledged) > 100  # the writers really were writing when killed


@pytest.mark.slow
def test_two_processes_appending_at_once_neither_corrupt_nor_fork(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws") as ws:
        party = str(ws.register_party("Writer"))
        writers = [
            start_writer(ws, party, tag, 300, batch) for tag, batch in (("left", 1), ("right", 7))
        ]
        outputs = []
        for writer in writers:
            with writer:
                outputs.append(writer.communicate(timeout=300))
        for writer, (_, stderr) in zip(writers, outputs, strict=True):
            assert writer.returncode == 0, stderr
        reported = [line.split() for stdout, _ in outputs for line in stdout.splitlines()]
        assert len(reported) == 600
        indexes = sorted(int(index) for index, _ in reported)
        assert indexes == list(range(1, 601))  # one sequence: no index given twice, none skipped
        report = ws.verify()
        assert report.tree_size == 601
        stored = registered_at(ws)
        assert all(stored[digest] == int(index) for index, digest in reported)
        sizes = [size for size, _, _ in ws.store.checkpoint_notes()]
        assert sizes == sorted(set(sizes))
        assert sizes[-1] == 601
