"""NATS JetStream → signed usage batches, end to end: latency from publish to commit.

Issue 17, point 6, target: p99 < 2 s from a service publishing a CloudEvent to the
commit of the `usage.batch` that holds it, at 20,000 events/s.

A publisher process (this script with --publish) sends `--rate` events a second for
`--seconds` to a fresh JetStream stream on 127.0.0.1 (core NATS publishes, paced in
10 ms ticks; each event carries the wall-clock nanosecond of its publish call in
`data.sent_ns`). Meanwhile this process runs `Workspace.consume_usage` (the code of
`quotepart usage consume`) on a fresh workspace: batches of `--batch-size`, committed
when full or `--max-wait` after their first event. For every event, latency = the
batch's commit time (`BatchDone.committed_at_s`, taken right after the commit, before
the acknowledgements) - its publish time. Both processes read the same clock.

Measured against, in the same run: a bare JetStream pull consumer (nats-py, the same
batching and max wait, acknowledging without recording anything): the latency floor of
NATS and the Python client on this machine, the ceiling quotepart could reach.

Reported per path (median of `--repeats`, with the min–max of p99 over repeats): the
publish rate achieved, events committed per second (first publish to last commit),
p50/p95/p99/max latency, and whether p99 < 2 s. The machine is shared (2 cores here):
publisher, NATS server and consumer compete for them.

    python bench/metering_nats.py                    # 20,000 events/s for 30 s, 3 repeats
    python bench/metering_nats.py --quick            # 2,000 events/s for 5 s, 1 repeat
    python bench/metering_nats.py --backends sqlite,postgres --rate 10000
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_ms,
    fmt_rate,
    log,
    machine_info,
    median,
    new_table,
    percentiles_ms,
    results_path,
    stdout,
    write_results,
)
from load import DEFAULT_POSTGRES_URL, postgres_schema

from quotepart.metering.nats import BatchDone, ConsumeOptions
from quotepart.workspace import init_workspace, open_workspace

TARGET_P99_MS = 2000.0
TICK_S = 0.01


# ------------------------------------------------------------------ publisher process


async def publish(url: str, subject: str, rate: int, seconds: float, run: str) -> dict[str, Any]:
    """Publish rate × seconds events, paced per 10 ms tick; returns what was achieved."""
    import nats

    nc = await nats.connect(url)
    total = int(rate * seconds)
    per_tick = rate * TICK_S
    sent = 0
    behind_max_s = 0.0
    start = time.monotonic()
    started_at = time.time()
    tick = 0
    while sent < total:
        tick += 1
        due = min(total, int(tick * per_tick))
        while sent < due:
            now_ns = time.time_ns()
            data = {
                "specversion": "1.0",
                "id": f"{run}-{sent}",
                "source": "//bench/publisher",
                "type": "llm.completion",
                "subject": f"customer-{sent % 1000}",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ns // 10**9)),
                "data": {"tokens": sent % 500, "model": "large", "sent_ns": now_ns},
            }
            await nc.publish(subject, orjson.dumps(data))
            sent += 1
        await nc.flush()
        wake = start + tick * TICK_S
        delay = wake - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            behind_max_s = max(behind_max_s, -delay)
    elapsed = time.monotonic() - start
    await nc.close()
    return {
        "published": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "started_at": started_at,
        "behind_schedule_max_s": behind_max_s,
    }


def start_publisher(
    url: str, subject: str, rate: int, seconds: float, run: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--publish", url, subject, str(rate), str(seconds), run],
        stdout=subprocess.PIPE,
        text=True,
    )


# ------------------------------------------------------------------ stream helpers


async def _stream(url: str, name: str, subject: str, *, delete: bool) -> int:
    import nats
    from nats.js.api import StorageType

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if delete:
            info = await js.stream_info(name)
            await js.delete_stream(name)
            return int(info.state.messages)
        await js.add_stream(name=name, subjects=[subject], storage=StorageType.FILE)
        return 0
    finally:
        await nc.close()


# ------------------------------------------------------------------ consumers


def run_quotepart(
    url: str, backend: str, postgres_url: str, rate: int, seconds: float, args: Any
) -> dict[str, Any]:
    """One measurement: `args.consumers` consumer processes on a fresh stream and workspace."""
    run = uuid.uuid4().hex[:8]
    name = f"QPBENCH_{run}"
    subject = f"qpbench.{run}.usage"
    asyncio.run(_stream(url, name, subject, delete=False))
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-nats-") as folder:
        if backend == "postgres":
            with postgres_schema(postgres_url) as database_url:
                result = _measure(Path(folder), database_url, url, name, subject, run, args)
        else:
            result = _measure(Path(folder), None, url, name, subject, run, args)
    result["stored_in_stream"] = asyncio.run(_stream(url, name, subject, delete=True))
    return result


def _measure(
    folder: Path, database_url: str | None, url: str, name: str, subject: str, run: str, args: Any
) -> dict[str, Any]:
    with init_workspace(folder / "ws", database_url=database_url) as ws:
        operator = ws.register_party("Operator", roles=["operator"])
        model = ws.register_asset(b"weights", asset_kind="model", name="M", by=operator)
        service = ws.register_service(
            name="LLM API", endpoint="https://api.example/v1", model=model, by=operator
        )
        ws.define_meter(
            service, "tokens", event_type="llm.completion", aggregation="sum",
            value_path="$.data.tokens",
        )  # fmt: skip
    consumers = []
    for number in range(args.consumers_now):
        out = folder / f"consumer-{number}.json"
        command = [sys.executable, __file__, "--consume", str(folder / "ws"), database_url or "",
                   url, name, subject, str(args.batch_size), str(args.max_wait), str(out)]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        consumers.append((process, out))
    for process, _ in consumers:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise SystemExit("a consumer process did not start")
    time.sleep(1.0)  # connected and pulling
    publisher = start_publisher(url, subject, args.rate_now, args.seconds_now, run)
    published = json.loads(publisher.communicate(timeout=args.seconds_now + 120)[0])
    latencies: list[float] = []
    commits: list[float] = []
    batches = 0
    recorded = 0
    for process, out in consumers:
        process.wait(timeout=600)
        report = json.loads(out.read_text())
        recorded += report["recorded"]
        for committed_at, sent_ns in report["batches"]:
            batches += 1
            commits.append(committed_at)
            latencies.extend(committed_at - ns / 1e9 for ns in sent_ns)
    with open_workspace(folder / "ws", database_url=database_url) as ws:
        ws.verify()
    return {
        "consumers": args.consumers_now,
        "published": published["published"],
        "publish_rate": published["rate"],
        "publisher_behind_schedule_max_s": published["behind_schedule_max_s"],
        "recorded": recorded,
        "committed_events": len(latencies),
        "events_per_s": len(latencies) / (max(commits) - published["started_at"]),
        "batches": batches,
        "latency": percentiles_ms(latencies),
    }


def consumer_process(
    folder: str, database_url: str, url: str, name: str, subject: str, batch: str,
    max_wait: str, out: str,
) -> None:  # fmt: skip
    """One `Workspace.consume_usage` (the code of `quotepart usage consume`) until idle."""
    batches: list[BatchDone] = []
    options = ConsumeOptions(
        url, name, subject, batch_size=int(batch), max_wait_s=float(max_wait), idle_exit_s=4.0
    )
    with open_workspace(folder, database_url=database_url or None) as ws:
        print("ready", flush=True)
        consumed = ws.consume_usage(options, on_batch=batches.append)
    document = {
        "recorded": consumed.ingested.recorded,
        "batches": [
            (done.committed_at_s, [orjson.loads(data)["data"]["sent_ns"] for data in done.data])
            for done in batches
        ],
    }
    Path(out).write_text(json.dumps(document))


async def _bare(url: str, name: str, subject: str, total: int, args: Any) -> list[float]:
    """quotepart's own pull loop (`_Puller`, same batching and max wait) with nothing
    recorded: collect, stamp, acknowledge."""
    import threading

    import nats

    from quotepart.metering.nats import _ensure_consumer, _Puller

    options = ConsumeOptions(url, name, subject, durable="bare", batch_size=args.batch_size,
                             max_wait_s=args.max_wait)  # fmt: skip
    nc = await nats.connect(url)
    await _ensure_consumer(nc.jetstream(), options)
    puller = _Puller(nc, options, threading.Event())
    await puller.start()
    latencies: list[float] = []
    idle_since = time.monotonic()
    while len(latencies) < total and time.monotonic() - idle_since < 15:
        messages = await puller.collect(args.batch_size)
        if not messages:
            continue
        idle_since = time.monotonic()
        now = time.time()
        for msg in messages:
            latencies.append(now - orjson.loads(msg.data)["data"]["sent_ns"] / 1e9)
            await msg.ack()
    await nc.close()
    return latencies


def run_bare(url: str, rate: int, seconds: float, args: Any) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    name = f"QPBENCH_{run}"
    subject = f"qpbench.{run}.usage"
    total = int(rate * seconds)
    asyncio.run(_stream(url, name, subject, delete=False))
    publisher = start_publisher(url, subject, rate, seconds, run)
    latencies = asyncio.run(_bare(url, name, subject, total, args))
    out, _ = publisher.communicate(timeout=120)
    stored = asyncio.run(_stream(url, name, subject, delete=True))
    published = json.loads(out)
    return {
        "published": published["published"],
        "publish_rate": published["rate"],
        "publisher_behind_schedule_max_s": published["behind_schedule_max_s"],
        "stored_in_stream": stored,
        "committed_events": len(latencies),
        "events_per_s": None,
        "latency": percentiles_ms(latencies),
    }


# ------------------------------------------------------------------ report


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    p99 = [r["latency"]["p99_ms"] for r in runs]
    rates = [r["events_per_s"] for r in runs if r["events_per_s"] is not None]
    return {
        "publish_rate_median": median([r["publish_rate"] for r in runs]),
        "events_per_s_median": median(rates) if rates else None,
        "p50_ms_median": median([r["latency"]["p50_ms"] for r in runs]),
        "p95_ms_median": median([r["latency"]["p95_ms"] for r in runs]),
        "p99_ms_median": median(p99),
        "p99_ms_min": min(p99),
        "p99_ms_max": max(p99),
        "max_ms_max": max(r["latency"]["max_ms"] for r in runs),
        "all_committed": all(r["committed_events"] == r["published"] for r in runs),
        "meets_target": max(p99) < TARGET_P99_MS,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--consume":
        consumer_process(*sys.argv[2:10])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        url, subject, rate, seconds, run = sys.argv[2:7]
        print(json.dumps(asyncio.run(publish(url, subject, int(rate), float(seconds), run))))
        return
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--url", default="nats://127.0.0.1:4222", help="127.0.0.1 only")
    parser.add_argument(
        "--rates", default="20000", help="events published a second, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="of publishing, per repeat")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--max-wait", type=float, default=0.5, help="seconds, as --max-wait")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--consumers", default="1", help="consumer processes sharing the stream, comma-separated"
    )
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-consumer ceiling")
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        parser.error("the benchmark publishes tens of thousands of events a second: 127.0.0.1 only")
    exit_cleanly_on_sigterm()
    rates = [2_000] if args.quick else [int(r) for r in args.rates.split(",")]
    args.seconds_now = 5.0 if args.quick else args.seconds
    repeats = 1 if args.quick else args.repeats
    paths: dict[str, list[dict[str, Any]]] = {}
    for repeat in range(repeats):
        for rate in rates:
            args.rate_now = rate
            for backend in args.backends.split(","):
                for consumers in (int(c) for c in args.consumers.split(",")):
                    args.consumers_now = consumers
                    log(f"repeat {repeat + 1}/{repeats}: quotepart on {backend}, {consumers} "
                        f"consumer(s), {rate:,} events/s for {args.seconds_now:.0f} s")  # fmt: skip
                    result = run_quotepart(
                        args.url, backend, args.postgres_url, rate, args.seconds_now, args
                    )
                    log(f"  p99 {result['latency']['p99_ms']:.0f} ms, "
                        f"{result['events_per_s']:,.0f} events/s")  # fmt: skip
                    path = f"{rate:,}/s quotepart ({backend}, {consumers} consumer(s))"
                    paths.setdefault(path, []).append(result)
            if not args.no_bare:
                log(f"repeat {repeat + 1}/{repeats}: bare JetStream consumer at {rate:,}/s")
                result = run_bare(args.url, rate, args.seconds_now, args)
                log(f"  p99 {result['latency']['p99_ms']:.0f} ms")
                paths.setdefault(f"{rate:,}/s bare pull loop (no recording)", []).append(result)
    summaries = {path: summarise(runs) for path, runs in paths.items()}
    table = new_table(
        f"NATS JetStream → committed usage batch: events offered for {args.seconds_now:.0f} s, "
        f"batch {args.batch_size:,}, max wait {args.max_wait} s (median of {repeats})",
        [
            "path",
            "published/s",
            "committed/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99 min–max",
            "max ms",
            "all committed",
            "p99 < 2 s",
        ],
        caption="latency: publish call (publisher's clock) → commit of the event's batch "
        "(bare consumer: → fetched, before its ack); committed/s: events over first publish "
        "→ last commit",
    )
    for path, summary in summaries.items():
        table.add_row(
            path,
            fmt_rate(summary["publish_rate_median"]),
            fmt_rate(summary["events_per_s_median"]),
            fmt_ms(summary["p50_ms_median"]),
            fmt_ms(summary["p95_ms_median"]),
            fmt_ms(summary["p99_ms_median"]),
            f"{summary['p99_ms_min']:.0f}–{summary['p99_ms_max']:.0f}",
            fmt_ms(summary["max_ms_max"]),
            "yes" if summary["all_committed"] else "NO",
            "yes" if summary["meets_target"] else "no",
        )
    stdout.print(table)
    document = {
        "benchmark": "metering-nats",
        "machine": machine_info(),
        "parameters": {
            "url": args.url,
            "rates": rates,
            "seconds": args.seconds_now,
            "batch_size": args.batch_size,
            "max_wait_s": args.max_wait,
            "repeats": repeats,
            "backends": args.backends.split(","),
            "meters": 1,
            "consumers": [int(c) for c in args.consumers.split(",")],
            "target_p99_ms": TARGET_P99_MS,
        },
        "summary": summaries,
        "runs": paths,
    }
    write_results(results_path("metering-nats", quick=args.quick, override=args.output), document)


if __name__ == "__main__":
    main()
