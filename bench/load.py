"""Appends and `verify` under load: N writer processes and one verifier on one log.

Issue 15, item 1, target: every append a writer was told committed is in the log
(acknowledged = present), and every `verify` run while the writers append passes, on
SQLite and on PostgreSQL.

Each writer is a process of its own with its own party, appending through the SDK
(`Workspace.append_many`) for `--seconds`: batches of `--batch` realistic pairs, an
`asset.registered` (a dataset with a licence) and the registrant's `contribution.recorded`
on it. A writer records each entry's leaf index only after `append_many` returned, and
the latency of every call. Meanwhile this process runs `Workspace.verify()` in a loop
(one worker: the machine is shared) and counts passes and failures. When the writers
are done, one more verify judges the whole log, and every acknowledged entry is looked
up at its leaf index.

Reported per backend: entries acknowledged vs present, appends (entries) per second over
all writers, verifies passed / failed (with the first failure's message), the tree size
the last verify under load judged and the final one, p50/p99 append-call latency.

    python bench/load.py                 # 4 writers, 30 s per backend
    python bench/load.py --quick         # 2 writers, 5 s per backend
    python bench/load.py --backends sqlite --writers 8
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import sqlalchemy
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_ms,
    fmt_rate,
    log,
    machine_info,
    new_table,
    percentiles_ms,
    rate,
    results_path,
    stdout,
    write_results,
)
from sqlalchemy import text

from quotepart.errors import VerificationError
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import AssetRegistered, ContributionRecorded
from quotepart.workspace import init_workspace, open_workspace

DEFAULT_POSTGRES_URL = os.environ.get(
    "QUOTEPART_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def writer(
    folder: str, database_url: str | None, party_text: str, tag: str, batch: int, until: float
) -> None:
    """Append pairs until `until` (time.time()); write acknowledgements and latencies to files."""
    party = PartyId.parse(party_text)
    out = Path(folder).parent / f"{tag}.acks"
    latencies: list[float] = []
    n = 0
    first: float | None = None
    with open_workspace(folder, database_url=database_url) as ws, out.open("w") as acks:
        while time.time() < until:
            items: list[tuple[Any, PartyId]] = []
            digests = []
            for _ in range(batch):
                digest = Digest.of_bytes(f"{tag}/{n}".encode())
                digests.append(digest)
                items.append(
                    (
                        AssetRegistered(
                            digest,
                            "dataset",
                            f"{tag} admissions extract {n}",
                            metadata={"license": "CC-BY-4.0"},
                        ),
                        party,
                    )
                )
                items.append((ContributionRecorded(party, digest, "data", Fraction(1)), party))
                n += 1
            start = time.perf_counter()
            first = time.time() if first is None else first
            indexes = ws.append_many(items)
            latencies.append(time.perf_counter() - start)
            acks.write("".join(f"{i} {d}\n" for i, d in zip(indexes[::2], digests, strict=True)))
            acks.flush()
    timing = {"first": first, "last": time.time(), "latencies": latencies}
    (Path(folder).parent / f"{tag}.latencies").write_text(json.dumps(timing))


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema on the server at `base_url`, dropped afterwards; yields its URL."""
    schema = f"qp_load_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(base_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_load(
    root: Path, database_url: str | None, writers: int, seconds: float, batch: int
) -> dict[str, Any]:
    folder = root / "ws"
    with init_workspace(folder, database_url=database_url) as ws:
        parties = [str(ws.register_party(f"Hospital {n}")) for n in range(writers)]
    context = multiprocessing.get_context("spawn")
    until = time.time() + seconds + 3.0  # start-up of the spawned writers, then `seconds`
    processes = [
        context.Process(
            target=writer, args=(str(folder), database_url, party, f"w{n}", batch, until)
        )
        for n, party in enumerate(parties)
    ]
    for process in processes:
        process.start()
    passes = failures = 0
    first_failure: str | None = None
    verify_seconds: list[float] = []
    sizes: list[int] = []
    with open_workspace(folder, database_url=database_url) as ws:
        size_before = ws.store.tree_size()
        started = time.time()
        while any(process.is_alive() for process in processes):
            t0 = time.perf_counter()
            try:
                sizes.append(ws.verify(workers=1).tree_size)
                passes += 1
            except VerificationError as exc:
                failures += 1
                first_failure = first_failure or exc.message
            verify_seconds.append(time.perf_counter() - t0)
        elapsed = time.time() - started
        for process in processes:
            process.join()
        final = ws.verify(workers=1)
        present = {str(record.asset): record.leaf_index for record in ws.assets()}
    acknowledged: dict[str, int] = {}
    latencies: list[float] = []
    spans: list[tuple[float, float]] = []
    for n in range(writers):
        for line in (root / f"w{n}.acks").read_text().splitlines():
            index, digest = line.split()
            acknowledged[digest] = int(index)
        timing = json.loads((root / f"w{n}.latencies").read_text())
        latencies.extend(timing["latencies"])
        spans.append((timing["first"], timing["last"]))
    appending = max(last for _, last in spans) - min(first for first, _ in spans)
    found = sum(1 for digest, index in acknowledged.items() if present.get(digest) == index)
    entries = 2 * len(acknowledged)
    return {
        "writers": writers,
        "batch_pairs": batch,
        "seconds_verifying": elapsed,
        "seconds_appending": appending,
        "writer_exit_codes": [process.exitcode for process in processes],
        "assets_acknowledged": len(acknowledged),
        "assets_present": found,
        "entries_acknowledged": entries,
        "entries_per_s": rate(entries, appending),
        "tree_size_before": size_before,
        "tree_size_final": final.tree_size,
        "tree_size_last_verified_under_load": sizes[-1] if sizes else None,
        "verify_passes": passes,
        "verify_failures": failures,
        "first_failure": first_failure,
        "verify_seconds_median": sorted(verify_seconds)[len(verify_seconds) // 2]
        if verify_seconds
        else None,
        "append_latency": percentiles_ms(latencies) if len(latencies) > 1 else None,
    }


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="of load, per backend")
    parser.add_argument("--batch", type=int, default=5, help="asset+contribution pairs per call")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    writers = 2 if args.quick else args.writers
    seconds = 5.0 if args.quick else args.seconds
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        log(f"{backend}: {writers} writers for {seconds:.0f} s, verifying in a loop")
        with tempfile.TemporaryDirectory(prefix="quotepart-bench-load-") as folder:
            if backend == "sqlite":
                results[backend] = run_load(Path(folder), None, writers, seconds, args.batch)
            else:
                with postgres_schema(args.postgres_url) as url:
                    results[backend] = run_load(Path(folder), url, writers, seconds, args.batch)
    table = new_table(
        f"Load: {writers} writers + 1 verifier, {seconds:.0f} s",
        [
            "backend",
            "acknowledged",
            "present",
            "entries/s",
            "verify pass",
            "verify fail",
            "final tree size",
            "p50 append ms",
            "p99 append ms",
        ],
        caption="acknowledged/present: assets whose append returned / found at that leaf index; "
        "entries/s: asset + contribution entries over all writers, first append to last; append ms: per append_many call",
    )
    for backend, result in results.items():
        latency = result["append_latency"] or {}
        table.add_row(
            backend,
            f"{result['assets_acknowledged']:,}",
            f"{result['assets_present']:,}",
            fmt_rate(result["entries_per_s"]),
            str(result["verify_passes"]),
            str(result["verify_failures"]),
            f"{result['tree_size_final']:,}",
            fmt_ms(latency.get("p50_ms")),
            fmt_ms(latency.get("p99_ms")),
        )
    stdout.print(table)
    for backend, result in results.items():
        if result["first_failure"]:
            stdout.print(f"{backend}: first verify failure: {result['first_failure']}")
    document = {
        "benchmark": "load",
        "machine": machine_info(),
        "parameters": {
            "writers": writers,
            "seconds": seconds,
            "batch_pairs": args.batch,
            "backends": list(results),
        },
        "results": results,
    }
    write_results(results_path("load", quick=args.quick, override=args.output), document)


if __name__ == "__main__":
    main()
