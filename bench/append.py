"""Signed appends to the SQLite log vs the in-process ceiling (canonicalise + sign, no storage).

Issue "Foundation: the signed Merkle log", target: `append_many` sustains at least 70% of
the rate at which this process can canonicalise and sign the same entries with no storage.

Measured in the same run, each on a fresh temporary workspace / database, repeated
(default 3 times) and reported as the median:

* ceiling: `sign_entry` on every body (RFC 8785 canonicalisation + Ed25519), no storage;
* quotepart: `Workspace.append_many` in batches (sign + leaf + tree nodes + projection +
  one signed checkpoint per batch, one transaction per batch);
* breakdown: `LogStore.append` of entries signed beforehand (storage only), and the same
  with the projections stubbed out (a diagnostic: that log would not verify);
* competitor: pymerkle 7.0 `SqliteTree.append_entries` of the same canonical bytes as
  unsigned leaves, in batches of the same size: with its own default pragmas (rollback
  journal, synchronous=FULL) and with quotepart's (WAL, synchronous=NORMAL).

Trillian on MySQL (400-500 entries/s) is a published reference point quoted in the issue,
not measured here.

Entries are `asset.registered` with distinct digests: its projection is one lookup and one
insert, the lightest of the entry kinds that carry a fact.

    python bench/append.py            # 50,000 entries in batches of 1,000, 3 repeats
    python bench/append.py --quick    # 5,000 entries: a smoke test
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_pct,
    fmt_rate,
    fmt_ratio,
    log,
    machine_info,
    median,
    new_table,
    rate,
    results_path,
    stdout,
    stopwatch,
    write_results,
)
from pymerkle import SqliteTree

import quotepart
import quotepart.store.log_store as log_store_module
from quotepart.ids import Digest, PartyId, utc_now
from quotepart.log import SignedEntry, SigningKey, sign_entry
from quotepart.log.kinds import AssetRegistered

TARGET_RATIO = 0.70
TRILLIAN_MYSQL_ENTRIES_PER_S = (400, 500)
ENTRY_KIND = AssetRegistered.KIND

T = TypeVar("T")


def make_bodies(count: int, tag: str) -> list[AssetRegistered]:
    """Distinct assets, so no append is refused as a duplicate registration."""
    return [
        AssetRegistered(
            Digest.of_bytes(f"bench/append/{tag}/{i}".encode()), "dataset", f"dataset {i}"
        )
        for i in range(count)
    ]


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------ measurements


def measure_ceiling(bodies: Sequence[AssetRegistered]) -> tuple[float, list[SignedEntry]]:
    """Canonicalise + sign every body in this process with no storage at all."""
    key, author = SigningKey.generate(), PartyId.new()
    with stopwatch() as elapsed:
        entries = [sign_entry(body, author=author, key=key, clock=utc_now) for body in bodies]
    return elapsed[0], entries


def measure_append_many(
    root: Path, bodies: Sequence[AssetRegistered], batch_size: int
) -> tuple[float, int]:
    """The product path: `Workspace.append_many`, one transaction + checkpoint per batch."""
    with quotepart.init_workspace(root / "append-many") as ws:
        party = ws.register_party("bench author")
        items = [[(body, party) for body in batch] for batch in batches(bodies, batch_size)]
        with stopwatch() as elapsed:
            for batch in items:
                ws.append_many(batch)
        size = ws.store.tree_size()
    return elapsed[0], size


def measure_store_append(
    root: Path,
    bodies: Sequence[AssetRegistered],
    batch_size: int,
    *,
    projections: bool,
) -> tuple[float, int]:
    """`LogStore.append` of entries signed beforehand: storage cost only.

    With `projections=False` the store's projection step is replaced by a no-op for the
    timed part only; that log would not pass `verify`, so the row is a diagnostic.
    """
    name = "store-append" if projections else "store-append-no-projections"
    with quotepart.init_workspace(root / name) as ws:
        party = ws.register_party("bench author")
        key = ws.signing_key(party)
        entries = [sign_entry(body, author=party, key=key, clock=ws.clock) for body in bodies]
        with _projections_stubbed(not projections), stopwatch() as elapsed:
            for batch in batches(entries, batch_size):
                ws.store.append(batch)
        size = ws.store.tree_size()
    return elapsed[0], size


@contextmanager
def _projections_stubbed(active: bool) -> Iterator[None]:
    original: Callable[..., None] = log_store_module.apply_projections
    if active:
        log_store_module.apply_projections = lambda conn, entry, index: None
    try:
        yield
    finally:
        log_store_module.apply_projections = original


def measure_pymerkle(
    path: Path, leaves: Sequence[bytes], batch_size: int, *, wal: bool
) -> tuple[float, int]:
    """pymerkle 7.0 SqliteTree: unsigned leaves, one transaction per `append_entries` call."""
    tree = SqliteTree(str(path))
    try:
        if wal:
            tree.con.execute("PRAGMA journal_mode=WAL")
            tree.con.execute("PRAGMA synchronous=NORMAL")
        with stopwatch() as elapsed:
            for batch in batches(leaves, batch_size):
                tree.append_entries(list(batch))
        size = int(tree.get_size())
    finally:
        tree.close()
    return elapsed[0], size


# ----------------------------------------------------------------------- main

ROWS: dict[str, tuple[str, str]] = {
    "ceiling": ("ceiling: canonicalise + sign", "sign_entry, no storage"),
    "append_many": ("quotepart append_many", "sign + store + project + checkpoint"),
    "store_append": ("  breakdown: store.append", "pre-signed: store + project + checkpoint"),
    "store_append_no_projections": (
        "  diagnostic: store.append, projections stubbed",
        "pre-signed: store + checkpoint (log would not verify)",
    ),
    "pymerkle_default": ("pymerkle 7.0 SqliteTree", "unsigned leaves, its default pragmas"),
    "pymerkle_wal": ("pymerkle 7.0 SqliteTree", "unsigned leaves, WAL + synchronous=NORMAL"),
}


def run(entries: int, batch_size: int, repeats: int) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {name: [] for name in ROWS}
    for repeat in range(repeats):
        log(f"repeat {repeat + 1}/{repeats}: {entries:,} entries in batches of {batch_size:,}")
        with tempfile.TemporaryDirectory(prefix="quotepart-bench-append-") as tmp:
            root = Path(tmp)
            bodies = make_bodies(entries, f"r{repeat}")

            elapsed, signed = measure_ceiling(bodies)
            seconds["ceiling"].append(elapsed)
            log(f"  {'ceiling':<28} {rate(entries, elapsed):>10,.0f} entries/s")

            elapsed, size = measure_append_many(root, bodies, batch_size)
            assert size == entries + 1, f"log holds {size} leaves, expected {entries + 1}"
            seconds["append_many"].append(elapsed)
            log(f"  {'append_many':<28} {rate(entries, elapsed):>10,.0f} entries/s")

            for name, projections in (
                ("store_append", True),
                ("store_append_no_projections", False),
            ):
                elapsed, size = measure_store_append(
                    root, bodies, batch_size, projections=projections
                )
                assert size == entries + 1, f"log holds {size} leaves, expected {entries + 1}"
                seconds[name].append(elapsed)
                log(f"  {name:<28} {rate(entries, elapsed):>10,.0f} entries/s")

            leaves = [entry.canonical for entry in signed]
            for name, wal in (("pymerkle_default", False), ("pymerkle_wal", True)):
                elapsed, size = measure_pymerkle(root / f"{name}.db", leaves, batch_size, wal=wal)
                assert size == entries, f"pymerkle holds {size} leaves, expected {entries}"
                seconds[name].append(elapsed)
                log(f"  {name:<28} {rate(entries, elapsed):>10,.0f} entries/s")

    rates = {name: [rate(entries, s) for s in values] for name, values in seconds.items()}
    medians = {name: median(values) for name, values in rates.items()}
    # Paired ratios (same repeat) cancel slow drifts of a shared machine better than a
    # ratio of medians; both are recorded.
    paired = {
        name: median([r / c for r, c in zip(rates[name], rates["ceiling"], strict=True)])
        for name in ROWS
    }
    vs_append = {name: medians[name] / medians["append_many"] for name in ROWS}
    return {
        "seconds": seconds,
        "entries_per_s": rates,
        "entries_per_s_median": medians,
        "ratio_to_ceiling_paired_median": paired,
        "ratio_to_ceiling_of_medians": {n: medians[n] / medians["ceiling"] for n in ROWS},
        "ratio_to_append_many": vs_append,
    }


def render(result: dict[str, Any], entries: int, batch_size: int, repeats: int) -> None:
    medians = result["entries_per_s_median"]
    paired = result["ratio_to_ceiling_paired_median"]
    vs_append = result["ratio_to_append_many"]
    ratio = paired["append_many"]
    verdict = "[green]meets[/green]" if ratio >= TARGET_RATIO else "[red]misses[/red]"
    table = new_table(
        f"Signed appends: {entries:,} {ENTRY_KIND} entries, batches of {batch_size:,}, "
        f"median of {repeats}",
        ["path", "what", "entries/s", "of ceiling", "vs append_many"],
        caption=(
            f"append_many reaches {ratio:.0%} of the in-process ceiling: {verdict} the target "
            f"(≥ {TARGET_RATIO:.0%}).\n'of ceiling' is the median of per-repeat ratios; "
            "pymerkle stores unsigned leaves and no interior nodes."
        ),
        text_columns=2,
    )
    for name, (label, what) in ROWS.items():
        table.add_row(
            label,
            what,
            fmt_rate(medians[name]),
            "n/a (unsigned)" if name.startswith("pymerkle") else fmt_pct(paired[name]),
            fmt_ratio(vs_append[name]),
        )
    low, high = TRILLIAN_MYSQL_ENTRIES_PER_S
    table.add_row(
        "Trillian on MySQL",
        "published reference, not measured",
        f"{low}–{high}",
        "—",
        f"{low / medians['append_many']:.2f}–{high / medians['append_many']:.2f}×",
    )
    stdout.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--entries", type=int, help="entries per measurement (default 50,000)")
    parser.add_argument("--batch", type=int, default=1000, help="entries per append_many call")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; the median is reported")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    entries = args.entries or (5_000 if args.quick else 50_000)

    result = run(entries, args.batch, args.repeats)
    render(result, entries, args.batch, args.repeats)
    ratio = result["ratio_to_ceiling_paired_median"]["append_many"]
    write_results(
        results_path("append", quick=args.quick, override=args.output),
        {
            "benchmark": "append",
            "issue": "Foundation: the signed Merkle log",
            "machine": machine_info(),
            "parameters": {
                "entries": entries,
                "batch_size": args.batch,
                "repeats": args.repeats,
                "quick": args.quick,
                "entry_kind": ENTRY_KIND,
                "database": "SQLite (WAL, synchronous=NORMAL), fresh temporary workspace per measurement",
            },
            "target": {"append_ratio_to_ceiling_min": TARGET_RATIO, "met": ratio >= TARGET_RATIO},
            "results": result,
            "references_not_measured": {
                "trillian_mysql_entries_per_s": list(TRILLIAN_MYSQL_ENTRIES_PER_S),
            },
            "notes": [
                "ceiling = sign_entry (RFC 8785 canonicalisation + Ed25519 signature) with no storage",
                "store_append_no_projections replaces apply_projections with a no-op (diagnostic only)",
                "pymerkle appends the same canonical bytes as unsigned leaves; it stores no interior nodes",
                f"sqlite3 module {sqlite3.sqlite_version}",
            ],
        },
    )


if __name__ == "__main__":
    main()
