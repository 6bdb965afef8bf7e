"""`verify` judges one consistent snapshot: it passes on an honest log while writers append.

Issue 15: each of verify's reads ran in its own transaction, so a log growing between
them looked tampered with ("nodes were added behind the log's back", "entries were
deleted"). Here four writer processes append for a bounded time while this process
verifies in a loop, on each backend: every verify must pass, and the verify after the
writers stop must cover every acknowledged entry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quotepart.workspace import init_workspace, open_workspace

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
LOAD_SECONDS = 8.0
START_TIMEOUT_SECONDS = 60.0


def _start_writer(
    folder: Path, party: str, tag: str, database_url: str | None, out: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "tests.writer_process",
        str(folder),
        party,
        tag,
        "1000000",
        "3",
    ]
    if database_url is not None:
        command.append(database_url)
    with out.open("wb") as stdout:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])},
        )


def _acknowledged(out: Path) -> dict[str, int]:
    """digest -> leaf index of every append the writer reported as committed (whole lines only)."""
    text = out.read_text()
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    return {digest: int(index) for index, digest in (line.split() for line in lines)}


@pytest.mark.slow
def test_verify_passes_while_writers_append(tmp_path: Path, database_url: str | None) -> None:
    folder = tmp_path / "ws"
    with init_workspace(folder, database_url=database_url) as ws:
        parties = [str(ws.register_party(f"Writer {n}")) for n in range(WRITERS)]
    outs = [tmp_path / f"writer{n}.out" for n in range(WRITERS)]
    writers = [
        _start_writer(folder, party, f"w{n}", database_url, out)
        for n, (party, out) in enumerate(zip(parties, outs, strict=True))
    ]
    verified_sizes: list[int] = []
    try:
        with open_workspace(folder, database_url=database_url) as ws:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not all(out.stat().st_size for out in outs) and time.monotonic() < deadline:
                assert all(w.poll() is None for w in writers), "a writer exited early"
                time.sleep(0.05)
            assert all(out.stat().st_size for out in outs), "writers never acknowledged"
            stop = time.monotonic() + LOAD_SECONDS
            while time.monotonic() < stop:
                verified_sizes.append(ws.verify(workers=1).tree_size)  # raises on any failure
            assert all(w.poll() is None for w in writers), "a writer died under load"
    finally:
        for process in writers:
            process.send_signal(signal.SIGTERM)
        for process in writers:
            process.wait(timeout=30)
            assert process.stderr is not None
            process.stderr.close()

    acknowledged: dict[str, int] = {}
    for out in outs:
        acknowledged.update(_acknowledged(out))
    with open_workspace(folder, database_url=database_url) as ws:
        report = ws.verify(workers=1)
        present = {str(record.asset): record.leaf_index for record in ws.assets()}
    assert len(verified_sizes) >= 2
    assert verified_sizes == sorted(verified_sizes)
    assert verified_sizes[-1] > verified_sizes[0], "the log did not grow while it was verified"
    assert report.tree_size >= WRITERS + len(acknowledged)
    assert report.tree_size >= verified_sizes[-1]
    missing = {
        digest: index for digest, index in acknowledged.items() if present.get(digest) != index
    }
    assert not missing, f"{len(missing)} acknowledged entries are not in the log"
