"""SIGKILL the NATS consumer and the file ingester mid-batch: after a restart, every event
is recorded exactly once, and nothing acknowledged was lost.

The NATS consumer is killed at random moments of its stream, and once exactly between a
batch's commit and its acknowledgements (tests/metering/nats_consumer_process.py): those
events come back from JetStream and are dropped as duplicates.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from quotepart.store.schema import usage_events
from quotepart.workspace import Workspace, init_workspace, open_workspace
from tests.metering.test_ingest import Scene, event
from tests.metering.test_nats import (  # noqa: F401 (nats_available and stream are fixtures)
    NATS_URL,
    ROOT,
    Stream,
    _start_consumer,
    _wait_for_line,
    nats_available,
    stream,
)

ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}


def stored_ids(ws: Workspace) -> Counter[str]:
    """How many rows each event id has: one per meter of its type (2 in Scene), never more
    (the dedupe key is unique per meter). A chunk is one batch per meter, each committed
    on its own, so a kill between the two leaves an event counted by one meter so far."""
    with ws.ledger.read() as conn:
        return Counter(
            orjson.loads(data)["id"]
            for data in conn.execute(select(usage_events.c.event)).scalars()
        )


def _killed(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_of_the_nats_consumer_loses_nothing_acknowledged_and_doubles_nothing(
    tmp_path: Path,
    stream: Stream,  # noqa: F811 (the fixture)
) -> None:
    rng = random.Random(20261206)
    folder = tmp_path / "ws"
    with init_workspace(folder) as ws:
        Scene(ws)
    count = 3000
    seqs = stream.publish([event(n) for n in range(count)])
    id_of = {seq: f"ev-{n}" for n, seq in enumerate(seqs)}

    def check_after_kill() -> Counter[str]:
        floor = stream.consumer_state()["ack_floor"]
        with open_workspace(folder) as ws:
            stored = stored_ids(ws)
        assert set(stored.values()) <= {1, 2}  # once per meter at most
        lost = [id_of[seq] for seq in seqs if seq <= floor and stored[id_of[seq]] != 2]
        assert not lost, f"acknowledged but not recorded: {lost[:5]}"
        return stored

    for _round in range(2):  # at a random moment of the stream
        flags = ["--batch-size", "100", "--max-wait", "0.1", "--ack-wait", "2"]
        process = _start_consumer(folder, None, stream, *flags)
        _wait_for_line(process, "batch of")
        time.sleep(rng.uniform(0.0, 0.4))
        _killed(process)
        check_after_kill()

    # between a commit and its acknowledgements
    helper = subprocess.Popen(
        [sys.executable, "-m", "tests.metering.nats_consumer_process", str(folder), NATS_URL,
         stream.name, stream.subject, "100", "60"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    assert helper.stdout is not None
    line = helper.stdout.readline()
    assert line.startswith("committed "), helper.stderr.read() if helper.stderr else line
    first, last = line.split()[1:]
    _killed(helper)
    stored = check_after_kill()
    assert stored[first] == stored[last] == 2  # committed, though never acknowledged

    with open_workspace(folder) as ws:
        final = ws.consume_usage(stream.options(batch_size=100, idle_exit_s=4.0))
        assert stored_ids(ws) == Counter({f"ev-{n}": 2 for n in range(count)})
        ws.verify()
    assert final.ingested.duplicates > 0  # the committed, unacknowledged batch came back
    assert final.redelivered > 0
    state = stream.consumer_state()
    assert (state["pending"], state["ack_pending"], state["ack_floor"]) == (0, 0, seqs[-1])


def _usage_rows(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM usage_events").fetchone()[0])
        except sqlite3.OperationalError:  # pragma: no cover - busy: try again
            return 0


@pytest.mark.slow
def test_sigkill_of_the_file_ingester_then_a_rerun_records_every_event_once(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261207)
    folder = tmp_path / "ws"
    with init_workspace(folder) as ws:
        Scene(ws)
    count = 20_000
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(orjson.dumps(event(n)) + b"\n" for n in range(count)))
    command = [sys.executable, "-m", "quotepart.cli", "usage", "ingest", str(source),
               "--batch-size", "500", "--workspace", str(folder), "--json"]  # fmt: skip
    before = 0
    for _round in range(2):
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
        )
        deadline = time.monotonic() + 120
        while _usage_rows(folder / "quotepart.db") <= before and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is None:
            _killed(process)
        else:  # pragma: no cover - a fast machine finished first
            process.communicate()
        with open_workspace(folder) as ws:
            stored = stored_ids(ws)
        assert set(stored.values()) <= {1, 2}
        before = sum(stored.values())
    assert 0 < before < 2 * count  # killed mid-stream
    rerun = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    report = orjson.loads(rerun.stdout)
    assert (report["recorded"], report["duplicates"]) == (2 * count - before, before)
    with open_workspace(folder) as ws:
        assert stored_ids(ws) == Counter({f"ev-{n}": 2 for n in range(count)})
        ws.verify()


@pytest.mark.slow
def test_sigterm_stops_the_consumer_cleanly_and_the_rest_is_consumed_later(
    tmp_path: Path,
    stream: Stream,  # noqa: F811 (the fixture)
) -> None:
    folder = tmp_path / "ws"
    with init_workspace(folder) as ws:
        Scene(ws)
    count = 3000
    stream.publish([event(n) for n in range(count)])
    process = _start_consumer(folder, None, stream, "--batch-size", "100", "--json")
    _wait_for_line(process, "consuming")
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    report = orjson.loads(stdout)
    assert report["stopped_by"] == "signal"
    assert "Traceback" not in stderr
    with open_workspace(folder) as ws:
        assert sum(stored_ids(ws).values()) == report["recorded"]  # committed = acknowledged
        rest = ws.consume_usage(stream.options(batch_size=100, idle_exit_s=1.0))
        assert rest.ingested.duplicates == 0  # nothing committed was left unacknowledged
        assert stored_ids(ws) == Counter({f"ev-{n}": 2 for n in range(count)})
