"""Consumers' receipts and a period's bill over 10,000,000 metered events.

Issue 17 (metering), targets, measured in the same run with the spread over repeats:
a consumer's receipt built in < 100 ms p99 (`Metering.receipt`, the code path of
`quotepart usage receipt`), checked offline in < 50 ms (`verify_receipt`, the code path
of `quotepart verify-receipt`), and a period's bill in < 2 s (`Metering.bill_usage`).

1. Fill a fresh SQLite workspace with one service, one `sum` meter (tokens) and N events
   in one month, in batches of 10,000. **The filler is synthetic**: it builds each
   event's stored bytes as the ingester does (consumer replaced by its HMAC pseudonym
   under the workspace's key, orjson with sorted keys, RFC 9162 leaf hash) and hands
   each batch to the ingester's own `_append`, which signs the `usage.batch` entry and
   writes its event rows and per-consumer totals in one transaction, exactly as
   ingestion does. It skips only what ingestion does before: parsing and validating
   CloudEvents and the dedupe look-up (not measured here).
2. Consumers: `--consumers` of them (default N / 100, so 100 events each), each active
   in two sessions (two runs of consecutive events at random moments of the month), as
   API clients are;
   plus one *spread* consumer with one event in every batch, the worst case for a
   receipt (it needs every batch's tree).
3. Bill the month (timed once; the planning it does first, which reads the period's
   batches and per-consumer totals and builds the consumers' tree, is timed over
   repeats), then time receipts of random consumers and their offline checks.

    python bench/metering_receipts.py                 # 10,000,000 events
    python bench/metering_receipts.py --events 1000000
    python bench/metering_receipts.py --quick         # 200,000 events
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import shutil
import statistics
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_ms,
    fmt_ratio,
    log,
    machine_info,
    new_table,
    percentiles_ms,
    results_path,
    stdout,
    stopwatch,
    write_results,
)

from quotepart.ids import Digest, Period, RevenueId
from quotepart.metering.billing import plan_bill
from quotepart.metering.ingest import Ingester, _Batch, _Row
from quotepart.metering.receipts import verify_receipt
from quotepart.workspace import Workspace, init_workspace

BATCH = 10_000
MONTH = (2026, 3)
TARGETS_MS = {"receipt": 100.0, "verify": 50.0, "bill": 2000.0}


def fill(ws: Workspace, service: Digest, events: int, consumers: int, seed: int) -> dict[str, Any]:
    """N events of the month, in time order, `BATCH` per batch; see the module docstring."""
    rng = random.Random(seed)
    key = ws.ledger.keys.usage_key(1)
    macs = [hmac.digest(key, f"consumer-{c}".encode(), "sha256") for c in range(consumers + 1)]
    texts = ["hmac-sha256:" + mac.hex() for mac in macs]
    # each consumer's events come in two sessions (runs of consecutive events), placed at
    # random in the month: a consumer's events sit in a few batches, not in all of them
    per = max(2, events // consumers)
    blocks = [[c] * (per // 2) for c in range(1, consumers + 1) for _ in range(2)]
    rng.shuffle(blocks)
    order = [c for block in blocks for c in block][: events - events // BATCH]
    spread_every = BATCH - 1  # the spread consumer (0): one event in every batch
    ingester = Ingester(ws.ledger, service, None, batch_size=BATCH)
    [meter] = ingester.meters
    start = datetime(*MONTH, 1, tzinfo=UTC).timestamp()
    span = 28 * 86400
    total = len(order) + len(order) // spread_every + 1
    rows: list[_Row] = []
    n = 0
    stream = iter(order)
    written = 0
    with stopwatch() as elapsed:
        while n < total:
            spread = n % BATCH == spread_every or n == total - 1
            consumer = 0 if spread else next(stream, 0)
            at = int(start + span * n // total)
            tokens = rng.randint(1, 4000)
            event = {
                "data": {"tokens": tokens},
                "id": f"e{n}",
                "source": "//bench",
                "specversion": "1.0",
                "subject": texts[consumer],
                "time": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "type": "llm.completion",
            }
            data = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
            dedupe = hashlib.sha256(b"bench\x00" + str(n).encode()).digest()[:16]
            rows.append(
                _Row(
                    meter,
                    MONTH[0] * 12 + MONTH[1] - 1,
                    dedupe,
                    macs[consumer],
                    at,
                    str(tokens),
                    tokens,
                    hashlib.sha256(b"\x00" + data).digest(),
                    data,
                )
            )
            n += 1
            if len(rows) == BATCH or n == total:
                ingester._append(_Batch(meter, rows[0].month, rows, Counter()))
                written += len(rows)
                rows = []
                if written % 1_000_000 == 0:
                    log(f"  {written:,} events written")
    log(f"filled {written:,} events in {elapsed[0]:.0f} s ({written / elapsed[0]:,.0f} events/s)")
    return {"events": written, "fill_s": elapsed[0], "batches": -(-written // BATCH)}


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--consumers", type=int, default=None)
    parser.add_argument("--receipts", type=int, default=40, help="consumers timed per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--keep", type=Path, default=None, help="keep/reuse the workspace here")
    parser.add_argument("--fill-only", action="store_true", help="fill --keep, measure nothing")
    parser.add_argument(
        "--prepare", action="store_true", help="prepare_receipts after billing (timed once)"
    )
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    events = 200_000 if args.quick else args.events
    consumers = args.consumers or max(10, events // 100)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="qp-receipts-")) / "ws"
    reuse = args.keep is not None and (folder / "workspace.json").exists()
    try:
        if reuse:
            from quotepart.workspace import open_workspace

            ws = open_workspace(folder)
        else:
            ws = init_workspace(folder)
        with ws:
            run(ws, args, events, consumers, reuse)
    finally:
        if args.keep is None:
            shutil.rmtree(folder.parent, ignore_errors=True)


def run(ws: Workspace, args: Any, events: int, consumers: int, reuse: bool) -> None:
    rng = random.Random(args.seed)
    if reuse:
        [service] = [a.asset for a in ws.assets() if a.asset_kind == "service"]
        kept = ws.path / "bench-fill.json"
        filled: dict[str, Any] = json.loads(kept.read_text()) if kept.exists() else {}
        filled["reused"] = True
    else:
        operator = ws.register_party("Operator", roles=["operator"])
        model = ws.register_asset(b"weights", asset_kind="model", name="M", by=operator)
        service = ws.register_service(
            name="LLM API", endpoint="https://api.example/v1", model=model, by=operator
        )
        ws.define_meter(
            service, "tokens", event_type="llm.completion", aggregation="sum",
            value_path="$.data.tokens",
        )  # fmt: skip
        ws.set_tariff(
            service, "tokens", "0.00002", "EUR", effective=datetime(2026, 1, 1, tzinfo=UTC)
        )
        log(
            f"filling {events:,} events of {consumers:,} consumers (synthetic filler, see docstring)"
        )
        filled = fill(ws, service, events, consumers, args.seed)
        (ws.path / "bench-fill.json").write_text(json.dumps(filled))
        if args.fill_only:
            return
    period = Period.parse(f"{MONTH[0]}-{MONTH[1]:02d}")
    # -- the bill: planning timed over repeats, the real bill once
    plans: list[float] = []
    for _ in range(args.repeats):
        with stopwatch() as elapsed, ws.ledger.read() as conn:
            planned = plan_bill(conn, service, period, "EUR", RevenueId.new(ws.clock), None)
        plans.append(elapsed[0])
    log(f"bill planned: {planned.consumers:,} consumers, {planned.batches:,} batches")
    bill_s: float | None = None
    if not _billed(ws, service, period):
        with stopwatch() as elapsed:
            ws.bill_usage(service, period, currency="EUR")
        bill_s = elapsed[0]
    prepare_s: float | None = None
    if args.prepare:
        with stopwatch() as elapsed:
            ws.prepare_receipts(service, period)
        prepare_s = elapsed[0]
    # -- receipts of random consumers, and of the spread one
    picks = [rng.randint(1, consumers) for _ in range(args.receipts)]
    build_runs: list[list[float]] = []
    verify_runs: list[list[float]] = []
    sizes: list[int] = []
    receipt_events: list[int] = []
    batches_touched: list[int] = []
    for _ in range(args.repeats):
        built, checked = [], []
        for c in picks:
            with stopwatch() as elapsed:
                receipt = ws.usage_receipt(f"consumer-{c}", period, service=service)
            built.append(elapsed[0])
            text = json.dumps(receipt)
            document = json.loads(text)
            with stopwatch() as elapsed:
                verified = verify_receipt(document)
            checked.append(elapsed[0])
            sizes.append(len(text))
            receipt_events.append(verified.events)
            batches_touched.append(len({e["batch"] for e in receipt["events"]}))
        build_runs.append(built)
        verify_runs.append(checked)
    spread_build: list[float] = []
    spread_verify: list[float] = []
    spread_events = 0
    for _ in range(args.repeats):
        with stopwatch() as elapsed:
            receipt = ws.usage_receipt("consumer-0", period, service=service)
        spread_build.append(elapsed[0])
        document = json.loads(json.dumps(receipt))
        with stopwatch() as elapsed:
            spread_events = verify_receipt(document).events
        spread_verify.append(elapsed[0])
    report(args, events, consumers, filled, plans, bill_s, build_runs, verify_runs, sizes,
           receipt_events, batches_touched, spread_build, spread_verify, spread_events,
           prepare_s)  # fmt: skip


def _billed(ws: Workspace, service: Digest, period: Period) -> bool:
    from quotepart.store.usage_events import bill_rows

    with ws.ledger.read() as conn:
        return bool(bill_rows(conn, str(service), period.first_month, period.last_month))


def report(
    args: Any, events: int, consumers: int, filled: dict[str, Any], plans: list[float],
    bill_s: float | None, build_runs: list[list[float]], verify_runs: list[list[float]],
    sizes: list[int], receipt_events: list[int], batches_touched: list[int],
    spread_build: list[float], spread_verify: list[float], spread_events: int,
    prepare_s: float | None,
) -> None:  # fmt: skip
    rows: list[dict[str, Any]] = []

    def add(name: str, runs: list[list[float]], target: float | None, what: str) -> None:
        p99s = [percentiles_ms(run)["p99_ms"] if len(run) > 1 else run[0] * 1e3 for run in runs]
        every = [x for run in runs for x in run]
        overall = percentiles_ms(every) if len(every) > 1 else {"p50_ms": every[0] * 1e3}
        p99 = max(p99s)
        rows.append(
            {
                "measure": name,
                "what": what,
                "p50_ms": overall["p50_ms"],
                "p99_ms_per_repeat": p99s,
                "p99_ms_worst": p99,
                "spread_ms": [min(p99s), max(p99s)],
                "target_ms": target,
                "ratio_to_target": None if target is None else p99 / target,
                "samples": len(every),
            }
        )

    add("receipt build", build_runs, TARGETS_MS["receipt"], "Metering.receipt, random consumer")
    add("receipt check", verify_runs, TARGETS_MS["verify"], "verify_receipt, offline")
    add("bill planning", [[p] for p in plans], TARGETS_MS["bill"], "plan_bill (reads + tree)")
    if bill_s is not None:
        add("bill (recorded)", [[bill_s]], TARGETS_MS["bill"], "Metering.bill_usage, once")
    if prepare_s is not None:
        add("prepare receipts", [[prepare_s]], None, "prepare_receipts, once after the bill")
    add("spread receipt build", [[s] for s in spread_build], None, "1 event in every batch")
    add("spread receipt check", [[s] for s in spread_verify], None, "1 event in every batch")
    table = new_table(
        f"Receipts and bills over {events:,} events, {consumers:,} consumers "
        f"(SQLite, {args.repeats} repeats)",
        [
            "measure",
            "p50 ms",
            "p99 ms (worst repeat)",
            "p99 min–max over repeats",
            "target ms",
            "p99 / target",
        ],
        caption=f"receipts: {statistics.median(receipt_events):.0f} events and "
        f"{statistics.median(batches_touched):.0f} batches each (median), "
        f"{statistics.median(sizes) / 1024:.0f} KiB; spread consumer: {spread_events:,} events",
    )
    for row in rows:
        table.add_row(
            row["measure"], fmt_ms(row["p50_ms"]), fmt_ms(row["p99_ms_worst"]),
            f"{fmt_ms(row['spread_ms'][0])}–{fmt_ms(row['spread_ms'][1])}",
            fmt_ms(row["target_ms"]), fmt_ratio(row["ratio_to_target"]),
        )  # fmt: skip
    stdout.print(table)
    write_results(
        results_path("metering-receipts", quick=args.quick, override=args.output),
        {
            "benchmark": "metering-receipts",
            "machine": machine_info(),
            "events": events,
            "consumers": consumers,
            "batch_events": BATCH,
            "filler": "synthetic: the ingester's own _append per batch (see the docstring)",
            "fill": filled,
            "receipt_events_median": statistics.median(receipt_events),
            "receipt_batches_median": statistics.median(batches_touched),
            "receipt_bytes_median": statistics.median(sizes),
            "spread_consumer_events": spread_events,
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
