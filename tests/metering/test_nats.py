"""NATS JetStream consumption: batches acknowledged after commit, bad events terminated,
an unreachable server refused clearly, two consumer processes sharing one stream.

Needs the NATS server with JetStream of the README (127.0.0.1:4222, or
QUOTEPART_TEST_NATS_URL): skipped with the reason when unreachable, failed under CI=true.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from quotepart.cli import cli
from quotepart.errors import InputError, StorageError
from quotepart.metering.nats import BatchDone, ConsumeOptions, publish_events
from quotepart.store.schema import usage_events
from quotepart.workspace import Workspace, init_workspace, open_workspace
from tests.conftest import ON_CI
from tests.metering.test_ingest import Scene, event, stored_events

NATS_URL = os.environ.get("QUOTEPART_TEST_NATS_URL", "nats://127.0.0.1:4222")
ROOT = Path(__file__).resolve().parents[2]


def _nats_reason() -> str | None:
    parts = urlsplit(NATS_URL)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 4222), timeout=3):
            return None
    except OSError as exc:
        return f"NATS at {NATS_URL} unreachable: {exc}"


@pytest.fixture(scope="session")
def nats_available() -> None:
    reason = _nats_reason()
    if reason is not None:
        if ON_CI:
            pytest.fail(f"CI=true but {reason}: NATS tests must run on CI")
        pytest.skip(reason)


class Stream:
    """A fresh JetStream stream (deleted afterwards) and what the tests ask of it."""

    def __init__(self) -> None:
        self.name = f"QPTEST_{uuid.uuid4().hex[:10]}"
        self.subject = f"{self.name.lower()}.usage.>"

    def options(self, **more: Any) -> ConsumeOptions:
        return ConsumeOptions(NATS_URL, self.name, self.subject, **more)

    def publish(self, events: Sequence[bytes | dict[str, Any]]) -> list[int]:
        raw = [e if isinstance(e, bytes) else orjson.dumps(e) for e in events]
        return publish_events(NATS_URL, self.subject.replace(">", "llm"), raw, stream=self.name)

    def consumer_state(self, durable: str | None = None) -> dict[str, int]:
        """Ack floor (stream sequence), messages pending delivery and awaiting an ack."""
        return asyncio.run(self._state(durable or f"quotepart-{self.name}"))

    async def _state(self, durable: str) -> dict[str, int]:
        import nats

        nc = await nats.connect(NATS_URL)
        try:
            info = await nc.jetstream().consumer_info(self.name, durable)
        finally:
            await nc.close()
        assert info.ack_floor is not None
        return {
            "ack_floor": int(info.ack_floor.stream_seq or 0),
            "pending": int(info.num_pending or 0),
            "ack_pending": int(info.num_ack_pending or 0),
            "redelivered": int(info.num_redelivered or 0),
        }

    def delete_consumer(self, durable: str | None = None) -> None:
        async def run() -> None:
            import nats

            nc = await nats.connect(NATS_URL)
            try:
                await nc.jetstream().delete_consumer(self.name, durable or f"quotepart-{self.name}")
            finally:
                await nc.close()

        asyncio.run(run())

    def delete(self) -> None:
        async def run() -> None:
            import nats
            from nats.js.errors import NotFoundError

            nc = await nats.connect(NATS_URL)
            try:
                await nc.jetstream().delete_stream(self.name)
            except NotFoundError:
                pass
            finally:
                await nc.close()

        asyncio.run(run())


@pytest.fixture
def stream(nats_available: None) -> Iterator[Stream]:
    made = Stream()
    yield made
    made.delete()


def recorded_once(ws: Workspace) -> tuple[int, int]:
    """(rows, distinct dedupe keys) of the stored events: equal when nothing is twice."""
    with ws.ledger.read() as conn:
        rows = conn.execute(select(func.count()).select_from(usage_events)).scalar_one()
        distinct = conn.execute(
            select(func.count(func.distinct(usage_events.c.dedupe)))
        ).scalar_one()
    return int(rows), int(distinct)


def test_events_are_recorded_then_acknowledged_and_bad_ones_terminated(
    ws: Workspace, stream: Stream
) -> None:
    scene = Scene(ws)
    events: list[bytes | dict[str, Any]] = [event(n) for n in range(250)]
    events[100] = b"not json"
    events.append(event(7))  # a duplicate: same source and id
    seqs = stream.publish(events)
    assert seqs == list(range(1, 252))
    batches: list[BatchDone] = []
    reported: list[int] = []
    result = ws.meter(scene.service).consume(
        stream.options(batch_size=100, idle_exit_s=0.5),
        on_batch=batches.append,
        on_reject=lambda rejected: reported.append(rejected.position),
    )
    ingested = result.ingested
    assert (ingested.recorded, ingested.duplicates, ingested.rejected) == (2 * 249, 2, 1)
    assert reported == [101]  # the stream sequence of the bad event
    assert [problem.position for problem in ingested.problems] == [101]
    assert (result.acknowledged, result.terminated, result.stopped_by) == (250, 1, "idle")
    assert [b.events for b in batches] == [100, 100, 51]
    assert stored_events(ws) == 2 * 249
    assert recorded_once(ws) == (498, 498)
    assert stream.consumer_state() == {
        "ack_floor": 251, "pending": 0, "ack_pending": 0, "redelivered": 0
    }  # fmt: skip
    ws.verify()
    again = ws.consume_usage(stream.options(batch_size=100, idle_exit_s=0.3))
    assert again.acknowledged + again.terminated == 0  # nothing comes back, the bad one neither


def test_a_batch_is_committed_after_max_wait_without_filling(ws: Workspace, stream: Stream) -> None:
    Scene(ws)
    stream.publish([event(n) for n in range(5)])
    stop = threading.Event()
    batches: list[BatchDone] = []

    def on_batch(done: BatchDone) -> None:
        batches.append(done)
        stop.set()

    started = time.monotonic()
    result = ws.consume_usage(
        stream.options(batch_size=10_000, max_wait_s=0.2, idle_exit_s=30),
        on_batch=on_batch,
        stop=stop,
    )
    assert [b.events for b in batches] == [5]
    assert result.acknowledged == 5
    assert time.monotonic() - started < 25  # committed by the max wait, not the idle exit


def test_max_events_bounds_a_run_and_the_rest_waits_for_the_next(
    tmp_path: Path, stream: Stream
) -> None:
    with init_workspace(tmp_path / "ws") as ws:
        Scene(ws)
        stream.publish([event(n) for n in range(30)])
        first = ws.consume_usage(stream.options(batch_size=8, max_events=20, idle_exit_s=5))
        assert (first.acknowledged, first.stopped_by) == (20, "max-events")
        assert stream.consumer_state()["pending"] == 10
        second = ws.consume_usage(stream.options(batch_size=8, idle_exit_s=0.5))
        assert second.acknowledged == 10
        assert recorded_once(ws) == (60, 60)


def test_an_unreachable_server_is_one_clear_error_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    with init_workspace(tmp_path / "ws") as ws:
        Scene(ws)
        size = ws.store.tree_size()
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()  # a port nothing listens on
        with pytest.raises(StorageError) as caught:
            ws.consume_usage(ConsumeOptions(f"nats://127.0.0.1:{port}", "S", "usage.>"))
        assert "cannot be reached" in str(caught.value)
        assert caught.value.hint
        assert "nats-server -js" in caught.value.hint
        assert ws.store.tree_size() == size
    result = CliRunner().invoke(
        cli,
        ["usage", "consume", f"nats://127.0.0.1:{port}", "--stream", "S", "--subject", "u.>",
         "--workspace", str(tmp_path / "ws")],
    )  # fmt: skip
    assert result.exit_code == 5, result.output
    assert "Error: the NATS server" in result.stderr
    assert "Hint:" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "http://127.0.0.1:4222"}, "not a NATS URL"),
        ({"stream": "a.b"}, "stream name"),
        ({"durable": "x y"}, "durable consumer name"),
        ({"max_wait_s": 0.0}, "max wait"),
        ({"ack_wait_s": 0.5}, "ack wait"),
        ({"max_events": 0}, "max-events"),
    ],
)
def test_options_that_cannot_work_are_refused_before_connecting(
    options: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {"url": NATS_URL, "stream": "S", "subject": "u.>", **options}
    with pytest.raises(InputError, match=message):
        ConsumeOptions(**values).check()


def test_cli_consumes_writes_rejects_and_never_redelivers_a_terminated_event(
    tmp_path: Path, stream: Stream
) -> None:
    with init_workspace(tmp_path / "ws") as ws:
        Scene(ws)
    stream.publish([event(1), {"specversion": "1.0", "id": "x"}, event(2)])
    reject = tmp_path / "rejected.jsonl"
    args = ["usage", "consume", NATS_URL, "--stream", stream.name, "--subject", stream.subject,
            "--workspace", str(tmp_path / "ws"), "--idle-exit", "0.5", "--ack-wait", "1",
            "--reject", str(reject)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output  # some were rejected
    assert "4 recorded" in result.stdout
    assert "event 2: missing required attribute 'source'" in result.stderr
    [line] = reject.read_bytes().splitlines()
    head, _, raw = line.partition(b"\t")
    assert orjson.loads(head)["position"] == 2
    assert orjson.loads(raw) == {"specversion": "1.0", "id": "x"}
    time.sleep(1.5)  # past the ack wait: an unterminated event would be delivered again
    again = CliRunner().invoke(cli, [*args[:-2], "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["acknowledged"] == 0


def _start_consumer(
    folder: Path, database_url: str | None, stream: Stream, *extra: str
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "quotepart.cli", "usage", "consume", NATS_URL,
               "--stream", stream.name, "--subject", stream.subject,
               "--workspace", str(folder), *extra]  # fmt: skip
    if database_url is not None:
        command += ["--database-url", database_url]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
    )


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float = 60) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if text in line:
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line with {text!r} from the consumer")


@pytest.mark.slow
def test_two_consumer_processes_share_one_stream_into_one_postgres_workspace(
    tmp_path: Path, postgres_url: str, stream: Stream
) -> None:
    with init_workspace(tmp_path / "ws", database_url=postgres_url) as ws:
        Scene(ws)
    stream.publish([event(0)])  # creates the stream and, below, the shared consumer
    flags = ["--batch-size", "100", "--max-wait", "0.1", "--idle-exit", "4", "--json"]
    consumers = [_start_consumer(tmp_path / "ws", postgres_url, stream, *flags) for _ in range(2)]
    for process in consumers:
        _wait_for_line(process, "consuming")
    time.sleep(1.0)  # both have connected and are pulling
    stream.publish([event(n) for n in range(1, 3000)])
    outputs = []
    for process in consumers:
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        outputs.append(json.loads(stdout))
    shares = [output["acknowledged"] for output in outputs]
    assert sum(shares) >= 3000  # redeliveries after a slow commit count twice
    assert all(share > 0 for share in shares), shares  # both did work
    assert sum(output["recorded"] for output in outputs) == 2 * 3000
    with open_workspace(tmp_path / "ws", database_url=postgres_url) as ws:
        assert recorded_once(ws) == (6000, 6000)
        ws.verify()
    assert stream.consumer_state()["ack_pending"] == 0


def test_a_consumer_deleted_while_consuming_is_one_clear_error(
    tmp_path: Path, stream: Stream
) -> None:
    with init_workspace(tmp_path / "ws") as ws:
        Scene(ws)
        stream.publish([event(0)])
        ws.consume_usage(stream.options(batch_size=10, idle_exit_s=0.3))  # makes the consumer
        failure: list[BaseException] = []

        def consume() -> None:
            try:
                ws.consume_usage(stream.options(batch_size=10, idle_exit_s=20))
            except BaseException as exc:  # handed to the test thread
                failure.append(exc)

        worker = threading.Thread(target=consume)
        worker.start()
        time.sleep(1.0)
        stream.delete_consumer()
        worker.join(timeout=30)
        assert not worker.is_alive()
    [error] = failure
    assert isinstance(error, StorageError), error
    assert "Deleted" in str(error)
    assert error.hint
