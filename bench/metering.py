"""Metering ingestion against the raw floor of the same database, in the same run.

Issue "Metering", targets:

* SQLite: ≥ 100,000 events/s sustained over 10 million events (batches of 10,000,
  pseudonymisation, dedupe and Merkle roots included), and ≥ 50 % of raw SQLite
  `executemany` inserting the same rows with one index, in the same run;
* PostgreSQL: ≥ 50 % of a bare `COPY` of the same rows, in the same run; events/s;
* memory: ingesting 10 million events stays under 1 GiB resident.

How it is measured:

1. N CloudEvents (10,000 consumers, one sum meter on `$.data.tokens`, distinct ids,
   times spread over one month) are written to a JSON-lines file.
2. quotepart: the user's path, cold — `quotepart usage ingest FILE` in a new process on
   a prepared workspace (party, model, service and meter made beforehand, untimed).
   The process's wall time and peak resident memory (`ru_maxrss` of the child).
3. The floor, in this process, on the rows quotepart wrote (read back from its
   database, so they are byte for byte the same): SQLite `executemany` into a fresh
   file with the same pragmas (WAL, synchronous=NORMAL), in transactions of 10,000 rows,
   into a table of the same columns with ONE index (the dedupe key, unique); only the
   inserts and commits are timed. PostgreSQL: a bare `COPY ... FROM STDIN` of the same
   rows into a table with the same one index, 10,000 rows per transaction.
4. Both sides are one thread of one process (quotepart's ingest is single-threaded).
   Repeats alternate the two sides; the table gives the median and the min–max spread,
   and a target is claimed only when the whole spread is on the right side of it.

    python bench/metering.py --quick            # 200,000 events, 3 repeats
    python bench/metering.py                    # 1,000,000 events x 3, then 10,000,000 once
    python bench/metering.py --events 10000000 --repeats 1
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_rate,
    fmt_ratio,
    log,
    machine_info,
    median,
    new_table,
    results_path,
    write_results,
)
from rich.console import Console

POSTGRES_URL = os.environ.get(
    "QUOTEPART_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
CONSUMERS = 10_000
BATCH = 10_000
COLUMNS = "id, dedupe, consumer, at, value, leaf, event"


def write_events(path: Path, count: int, *, offset: int = 0) -> None:
    """N distinct CloudEvents, one per line (an OpenMeter-shaped LLM completion)."""
    with path.open("wb") as out:
        for start in range(0, count, 100_000):
            lines = []
            for n in range(start + offset, min(start + 100_000, count) + offset):
                lines.append(
                    orjson.dumps(
                        {
                            "specversion": "1.0",
                            "id": f"evt-{n:012d}",
                            "source": "//api.example.com/eu-west",
                            "type": "llm.completion",
                            "time": f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:"
                            f"{(n // 60) % 60:02d}.{n % 1000:03d}Z",
                            "subject": f"customer-{(n * 7919) % CONSUMERS:05d}",
                            "data": {"tokens": 1 + (n * 31) % 4000, "model": "large-v2"},
                        }
                    )
                )
            out.write(b"\n".join(lines) + b"\n")


def prepare_workspace(folder: Path, database_url: str | None) -> str:
    """A workspace with an operator, a model, a service and its meter; returns the service."""
    from quotepart.workspace import init_workspace

    with init_workspace(folder, database_url=database_url) as ws:
        operator = ws.register_party("Operator", roles=["operator"])
        model = ws.register_asset(b"weights", asset_kind="model", name="M", by=operator)
        service = ws.register_service(
            name="LLM API", endpoint="https://api.example.com/v1", model=model, by=operator
        )
        ws.define_meter(
            service, "tokens", event_type="llm.completion", aggregation="sum",
            value_path="$.data.tokens",
        )  # fmt: skip
    return str(service)


def run_cli(
    folder: Path, events: Path, service: str, database_url: str | None, workers: int = 1
) -> dict[str, Any]:
    """`quotepart usage ingest` in a new process: wall seconds and peak RSS (MiB)."""
    command = [
        sys.executable, "-m", "quotepart.cli", "usage", "ingest", str(events), "--service", service,
        "--workspace", str(folder), "--json", "--workers", str(workers),
    ]  # fmt: skip
    if database_url is not None:
        command += ["--database-url", database_url]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=environment)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"quotepart usage ingest failed: {err.read().decode()[-2000:]}")
        result = orjson.loads(out.read())
    peak = usage.ru_maxrss / 1024
    return {"seconds": seconds, "recorded": result["recorded"], "peak_rss_mib": peak}


def stored_rows(database: Path) -> Iterator[list[tuple[Any, ...]]]:
    """The event rows quotepart wrote, 10,000 at a time."""
    source = sqlite3.connect(database)
    try:
        cursor = source.execute(f"SELECT {COLUMNS} FROM usage_events ORDER BY id")
        while rows := cursor.fetchmany(BATCH):
            yield rows
    finally:
        source.close()


def sqlite_floor(rows_from: Path, scratch: Path) -> tuple[float, int]:
    """Seconds spent in executemany + commit inserting the same rows with one index."""
    target = scratch / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute(
        "CREATE TABLE usage_events (id INTEGER PRIMARY KEY, dedupe BLOB NOT NULL, "
        "consumer BLOB NOT NULL, at INTEGER NOT NULL, value TEXT, leaf BLOB NOT NULL, "
        "event BLOB NOT NULL)"
    )
    conn.execute("CREATE UNIQUE INDEX ux_dedupe ON usage_events (dedupe)")
    spent = 0.0
    count = 0
    for rows in stored_rows(rows_from):
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO usage_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        spent += time.perf_counter() - started
        count += len(rows)
    conn.close()
    return spent, count


def postgres_floor(rows_from: Path) -> tuple[float, int]:
    """Seconds spent in COPY + commit of the same rows into a table with one index."""
    import psycopg

    schema = f"bench_floor_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            conn.execute(
                f'CREATE TABLE "{schema}".usage_events (id BIGINT PRIMARY KEY, dedupe BYTEA NOT NULL, '
                "consumer BYTEA NOT NULL, at BIGINT NOT NULL, value VARCHAR(90), leaf BYTEA NOT NULL, "
                "event BYTEA NOT NULL)"
            )
            conn.execute(f'CREATE UNIQUE INDEX ON "{schema}".usage_events (dedupe)')
            spent = 0.0
            count = 0
            for rows in stored_rows(rows_from):
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cursor:
                    statement = f'COPY "{schema}".usage_events ({COLUMNS}) FROM STDIN'
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(row)
                spent += time.perf_counter() - started
                count += len(rows)
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return spent, count


def fresh_postgres_schema() -> tuple[str, str]:
    """A URL whose search_path is a new schema (dropped by `drop_schema`)."""
    import psycopg

    schema = f"bench_qp_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def spread(values: list[float]) -> dict[str, float]:
    return {"median": median(values), "min": min(values), "max": max(values)}


def verdict(low: float, high: float, target: float) -> str:
    if low >= target:
        return "met"
    if high < target:
        return "not met"
    return "not settled"


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument(
        "--events", type=int, help="events per run (default 1,000,000; quick 200,000)"
    )
    parser.add_argument("--repeats", type=int, help="runs per side (default 3)")
    parser.add_argument("--sustained", type=int, default=None,
                        help="one more quotepart run of this many events for the sustained rate "
                        "and memory (default 10,000,000; quick: none)")  # fmt: skip
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--parse-workers",
        type=int,
        default=2,
        help="also run quotepart with this many parse processes (0: not), reported apart: "
        "the floor is one thread, so only the one-process figure is the same-threads ratio",
    )
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    events = args.events or (200_000 if args.quick else 1_000_000)
    repeats = args.repeats or 3
    sustained = args.sustained if args.sustained is not None else (0 if args.quick else 10_000_000)
    scratch = Path(tempfile.mkdtemp(prefix="qp-bench-metering-"))
    document: dict[str, Any] = {"machine": machine_info(), "events": events, "repeats": repeats}
    try:
        events_file = scratch / "events.jsonl"
        log(f"writing {events:,} events")
        write_events(events_file, events)
        sides: dict[str, list[float]] = {"sqlite": [], "sqlite floor": [], "postgres": [],
                                         "postgres floor": [], "sqlite workers": []}  # fmt: skip
        peaks: list[float] = []
        for repeat in range(repeats):
            folder = scratch / f"ws-{repeat}"
            service = prepare_workspace(folder, None)
            log(f"run {repeat + 1}/{repeats}: quotepart usage ingest (SQLite)")
            run = run_cli(folder, events_file, service, None)
            assert run["recorded"] == events, run
            sides["sqlite"].append(events / run["seconds"])
            peaks.append(run["peak_rss_mib"])
            if args.parse_workers > 1:
                folder_w = scratch / f"ws-{repeat}-workers"
                service_w = prepare_workspace(folder_w, None)
                log(f"  quotepart usage ingest --workers {args.parse_workers} (SQLite)")
                run_w = run_cli(folder_w, events_file, service_w, None, args.parse_workers)
                assert run_w["recorded"] == events, run_w
                sides["sqlite workers"].append(events / run_w["seconds"])
                shutil.rmtree(folder_w, ignore_errors=True)
            log("  raw SQLite executemany of the same rows")
            spent, count = sqlite_floor(folder / "quotepart.db", scratch)
            assert count == events
            sides["sqlite floor"].append(count / spent)
            if not args.no_postgres:
                url, schema = fresh_postgres_schema()
                try:
                    pg_folder = scratch / f"pg-{repeat}"
                    pg_service = prepare_workspace(pg_folder, url)
                    log("  quotepart usage ingest (PostgreSQL)")
                    pg_run = run_cli(pg_folder, events_file, pg_service, url)
                    assert pg_run["recorded"] == events
                    sides["postgres"].append(events / pg_run["seconds"])
                finally:
                    drop_schema(schema)
                log("  bare COPY of the same rows")
                spent, count = postgres_floor(folder / "quotepart.db")
                sides["postgres floor"].append(count / spent)
            shutil.rmtree(folder, ignore_errors=True)
        ratios = {
            "sqlite": [q / f for q, f in zip(sides["sqlite"], sides["sqlite floor"], strict=True)],
            "sqlite workers": [
                q / f for q, f in zip(sides["sqlite workers"], sides["sqlite floor"], strict=True)
            ]
            if sides["sqlite workers"]
            else [],
            "postgres": [
                q / f for q, f in zip(sides["postgres"], sides["postgres floor"], strict=True)
            ]
            if sides["postgres"]
            else [],
        }
        document["rates"] = {side: spread(values) for side, values in sides.items() if values}
        document["ratios"] = {side: spread(values) for side, values in ratios.items() if values}
        table = new_table(
            f"Metering ingest, {events:,} events, {repeats} runs (median, min–max)",
            ["backend", "quotepart events/s", "floor rows/s", "ratio", "spread", "target ≥ 0.50"],
            caption="floor: SQLite executemany / PostgreSQL COPY of the same rows, one index",
        )
        for backend in ("sqlite", "sqlite workers", "postgres"):
            if not sides[backend]:
                continue
            low, high = min(ratios[backend]), max(ratios[backend])
            floor = sides["postgres floor" if backend == "postgres" else "sqlite floor"]
            label = (
                f"sqlite, {args.parse_workers} parse processes (not same-threads)"
                if backend == "sqlite workers"
                else backend
            )
            table.add_row(
                label, fmt_rate(median(sides[backend])), fmt_rate(median(floor)),
                fmt_ratio(median(ratios[backend])), f"{low:.2f}–{high:.2f}",
                verdict(low, high, 0.5),
            )  # fmt: skip
            document.setdefault("verdicts", {})[f"{backend} vs floor ≥ 0.5"] = verdict(
                low, high, 0.5
            )
        low, high = min(sides["sqlite"]), max(sides["sqlite"])
        document.setdefault("verdicts", {})[f"sqlite ≥ 100,000/s at {events:,}"] = verdict(
            low, high, 100_000
        )
        Console().print(table)
        print(f"SQLite events/s over {events:,}: median {median(sides['sqlite']):,.0f} "
              f"({low:,.0f}–{high:,.0f}); peak RSS {max(peaks):,.0f} MiB")  # fmt: skip
        document["peak_rss_mib"] = max(peaks)
        if sustained:
            log(f"sustained: {sustained:,} events, SQLite, one run")
            big = scratch / "sustained.jsonl"
            write_events(big, sustained)
            events_file.unlink()
            folder = scratch / "ws-sustained"
            service = prepare_workspace(folder, None)
            run = run_cli(folder, big, service, None)
            assert run["recorded"] == sustained
            rate = sustained / run["seconds"]
            document["sustained"] = {
                "events": sustained,
                "seconds": run["seconds"],
                "events_per_s": rate,
                "peak_rss_mib": run["peak_rss_mib"],
                "verdict ≥ 100,000/s": "met" if rate >= 100_000 else "not met",
                "verdict < 1 GiB": "met" if run["peak_rss_mib"] < 1024 else "not met",
            }
            print(f"sustained over {sustained:,} events: {rate:,.0f} events/s, peak RSS "
                  f"{run['peak_rss_mib']:,.0f} MiB")  # fmt: skip
        write_results(results_path("metering", quick=args.quick, override=args.output), document)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
