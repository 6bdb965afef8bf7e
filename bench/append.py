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
* rules off: the same `append_many` with every rule of `quotepart.store.rights.RULES`
  swapped for a no-op inside this script only (`rules_off()`; production has no such
  switch), so the rights layer's cost is the difference between the two rows;
* competitor: pymerkle 7.0 `SqliteTree.append_entries` of the same canonical bytes as
  unsigned leaves, in batches of the same size: with its own default pragmas (rollback
  journal, synchronous=FULL) and with quotepart's (WAL, synchronous=NORMAL).

Trillian on MySQL (400-500 entries/s) is a published reference point quoted in the issue,
not measured here.

Entries are `asset.registered` with distinct digests: its projection is one lookup and one
insert, the lightest of the entry kinds that carry a fact. Its rule (issue 14) looks up
whether the digest has a registrant already.

Two more mixes, each with its own ceiling (sign_entry of its own bodies) and rules on / off,
exercise a rule that does lookups, the metering rule of `usage.recorded` (registrant of
the service, delegations, billed months; cached per batch): usage of one service signed by
its registrant, and by a party the registrant delegated the `metering` right to.

    python bench/append.py            # 50,000 entries in batches of 1,000, 3 repeats
    python bench/append.py --quick    # 5,000 entries: a smoke test
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
    rules_off,
    stdout,
    stopwatch,
    write_results,
)
from pymerkle import SqliteTree

import quotepart
import quotepart.store.log_store as log_store_module
from quotepart.ids import Digest, PartyId, utc_now
from quotepart.log import SignedEntry, SigningKey, sign_entry
from quotepart.log.kinds import AssetRegistered, EntryBody, RightGranted, UsageRecorded
from quotepart.workspace import Workspace

TARGET_RATIO = 0.70
TRILLIAN_MYSQL_ENTRIES_PER_S = (400, 500)
ENTRY_KIND = AssetRegistered.KIND
SERVICE = Digest.of_bytes(b"bench/append/service")
USAGE_START = datetime(2026, 11, 1, tzinfo=UTC)  # one open month (no revenue is recorded)

T = TypeVar("T")


def make_bodies(count: int, tag: str) -> list[AssetRegistered]:
    """Distinct assets, so no append is refused as a duplicate registration."""
    return [
        AssetRegistered(
            Digest.of_bytes(f"bench/append/{tag}/{i}".encode()), "dataset", f"dataset {i}"
        )
        for i in range(count)
    ]


def make_usage_bodies(count: int, tag: str) -> list[UsageRecorded]:
    """Usage of one service by 97 pseudonymous consumers, one second apart, in one month."""
    consumers = [
        "hmac-sha256:" + Digest.of_bytes(f"bench/append/{tag}/consumer {k}".encode()).hex
        for k in range(97)
    ]
    return [
        UsageRecorded(
            SERVICE,
            consumers[i % len(consumers)],
            1 + i % 5,
            USAGE_START + timedelta(seconds=i),
            USAGE_START + timedelta(seconds=i + 1),
        )
        for i in range(count)
    ]


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------ measurements


def measure_ceiling(bodies: Sequence[EntryBody]) -> tuple[float, list[SignedEntry]]:
    """Canonicalise + sign every body in this process with no storage at all."""
    key, author = SigningKey.generate(), PartyId.new()
    with stopwatch() as elapsed:
        entries = [
            sign_entry(body, origin="bench.local/ceiling", author=author, key=key, clock=utc_now)
            for body in bodies
        ]
    return elapsed[0], entries


Setup = Callable[[Workspace], PartyId]
"""Prepares a fresh workspace (untimed) and returns the party that signs the timed entries."""


def setup_author(ws: Workspace) -> PartyId:
    return ws.register_party("bench author")


def setup_service_registrant(ws: Workspace) -> PartyId:
    """A service registered by `operator`, which then records its usage itself."""
    operator = ws.register_party("bench operator")
    ws.append_many([(AssetRegistered(SERVICE, "service", "bench service"), operator)])
    return operator


def setup_service_delegate(ws: Workspace) -> PartyId:
    """A service whose registrant delegated the `metering` right; the delegate records usage."""
    operator = setup_service_registrant(ws)
    meter = ws.register_party("bench meter")
    since = datetime(2026, 1, 1, tzinfo=UTC)
    ws.append_many([(RightGranted(meter, "metering", SERVICE, since), operator)])
    return meter


def measure_append_many(
    root: Path,
    bodies: Sequence[EntryBody],
    batch_size: int,
    *,
    setup: Setup = setup_author,
    rules: bool = True,
    name: str = "append-many",
) -> tuple[float, int]:
    """The product path: `Workspace.append_many`, one transaction + checkpoint per batch;
    with `rules=False`, every rights check is a no-op for the timed part."""
    with quotepart.init_workspace(root / name) as ws:
        party = setup(ws)
        before = ws.store.tree_size()
        items = [[(body, party) for body in batch] for batch in batches(bodies, batch_size)]
        with rules_off(not rules), stopwatch() as elapsed:
            for batch in items:
                ws.append_many(batch)
        size = ws.store.tree_size() - before
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
        entries = [
            sign_entry(body, origin=ws.origin, author=party, key=key, clock=ws.clock)
            for body in bodies
        ]
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
    "append_many": (
        "quotepart append_many, rules on",
        "sign+rights+store+project+checkpoint",
    ),
    "append_many_rules_off": (
        "  quotepart append_many, rules off",
        "the same, each rule a no-op (bench only)",
    ),
    "store_append": ("  breakdown: store.append", "pre-signed: store+project+checkpoint"),
    "store_append_no_projections": (
        "  diagnostic: store.append, projections stubbed",
        "pre-signed: store+checkpoint, no verify",
    ),
    "pymerkle_default": ("pymerkle 7.0 SqliteTree", "unsigned, its default pragmas"),
    "pymerkle_wal": ("pymerkle 7.0 SqliteTree", "unsigned, WAL + synchronous=NORMAL"),
    "usage_ceiling": ("usage mix: ceiling", "sign_entry of usage bodies, no storage"),
    "usage_append_many": ("usage mix: append_many, rules on", "signed by the registrant"),
    "usage_append_many_rules_off": (
        "  usage mix: append_many, rules off",
        "signed by the registrant",
    ),
    "delegate_append_many": ("usage mix: append_many, rules on", "signed by a metering delegate"),
    "delegate_append_many_rules_off": (
        "  usage mix: append_many, rules off",
        "signed by a metering delegate",
    ),
}
CEILING_OF = {
    name: "usage_ceiling" if name.startswith(("usage", "delegate")) else "ceiling" for name in ROWS
}
RULED = {  # rules-on row -> its rules-off row
    "append_many": "append_many_rules_off",
    "usage_append_many": "usage_append_many_rules_off",
    "delegate_append_many": "delegate_append_many_rules_off",
}
SETUPS: dict[str, Setup] = {
    "append_many": setup_author,
    "usage_append_many": setup_service_registrant,
    "delegate_append_many": setup_service_delegate,
}


def _on_and_off(
    seconds: dict[str, list[float]],
    root: Path,
    name: str,
    bodies: Sequence[EntryBody],
    batch_size: int,
    repeat: int,
) -> None:
    """Rules on and rules off back to back; which goes first alternates with the repeat."""
    order = (True, False) if repeat % 2 == 0 else (False, True)
    for rules in order:
        row = name if rules else RULED[name]
        elapsed, size = measure_append_many(
            root, bodies, batch_size, setup=SETUPS[name], rules=rules, name=row
        )
        assert size == len(bodies), f"{row}: {size} leaves appended, expected {len(bodies)}"
        seconds[row].append(elapsed)
        log(f"  {row:<32} {rate(len(bodies), elapsed):>10,.0f} entries/s")


def run(entries: int, batch_size: int, repeats: int) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {name: [] for name in ROWS}
    for repeat in range(repeats):
        log(f"repeat {repeat + 1}/{repeats}: {entries:,} entries in batches of {batch_size:,}")
        with tempfile.TemporaryDirectory(prefix="quotepart-bench-append-") as tmp:
            root = Path(tmp)
            bodies = make_bodies(entries, f"r{repeat}")

            elapsed, signed = measure_ceiling(bodies)
            seconds["ceiling"].append(elapsed)
            log(f"  {'ceiling':<32} {rate(entries, elapsed):>10,.0f} entries/s")

            _on_and_off(seconds, root, "append_many", bodies, batch_size, repeat)

            for name, projections in (
                ("store_append", True),
                ("store_append_no_projections", False),
            ):
                elapsed, size = measure_store_append(
                    root, bodies, batch_size, projections=projections
                )
                assert size == entries + 1, f"log holds {size} leaves, expected {entries + 1}"
                seconds[name].append(elapsed)
                log(f"  {name:<32} {rate(entries, elapsed):>10,.0f} entries/s")

            leaves = [entry.canonical for entry in signed]
            for name, wal in (("pymerkle_default", False), ("pymerkle_wal", True)):
                elapsed, size = measure_pymerkle(root / f"{name}.db", leaves, batch_size, wal=wal)
                assert size == entries, f"pymerkle holds {size} leaves, expected {entries}"
                seconds[name].append(elapsed)
                log(f"  {name:<32} {rate(entries, elapsed):>10,.0f} entries/s")
            del signed, leaves

            usage = make_usage_bodies(entries, f"r{repeat}")
            elapsed, _ = measure_ceiling(usage)
            seconds["usage_ceiling"].append(elapsed)
            log(f"  {'usage_ceiling':<32} {rate(entries, elapsed):>10,.0f} entries/s")
            _on_and_off(seconds, root, "usage_append_many", usage, batch_size, repeat)
            _on_and_off(seconds, root, "delegate_append_many", usage, batch_size, repeat)

    rates = {name: [rate(entries, s) for s in values] for name, values in seconds.items()}
    medians = {name: median(values) for name, values in rates.items()}
    # Paired ratios (same repeat) cancel slow drifts of a shared machine better than a
    # ratio of medians; both are recorded, with the spread of the paired ones.
    per_repeat = {
        name: [r / c for r, c in zip(rates[name], rates[CEILING_OF[name]], strict=True)]
        for name in ROWS
    }
    paired = {name: median(values) for name, values in per_repeat.items()}
    on_vs_off = {
        name: [on / off for on, off in zip(rates[name], rates[off_row], strict=True)]
        for name, off_row in RULED.items()
    }
    vs_append = {name: medians[name] / medians["append_many"] for name in ROWS}
    return {
        "seconds": seconds,
        "entries_per_s": rates,
        "entries_per_s_median": medians,
        "ceiling_of": CEILING_OF,
        "ratio_to_ceiling_per_repeat": per_repeat,
        "ratio_to_ceiling_paired_median": paired,
        "ratio_to_ceiling_of_medians": {n: medians[n] / medians[CEILING_OF[n]] for n in ROWS},
        "ratio_to_append_many": vs_append,
        "rules_on_over_rules_off_per_repeat": on_vs_off,
        "rules_on_over_rules_off_median": {n: median(v) for n, v in on_vs_off.items()},
    }


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):.0%}–{max(values):.0%}"


def render(result: dict[str, Any], entries: int, batch_size: int, repeats: int) -> None:
    medians = result["entries_per_s_median"]
    paired = result["ratio_to_ceiling_paired_median"]
    per_repeat = result["ratio_to_ceiling_per_repeat"]
    vs_append = result["ratio_to_append_many"]
    on_off = result["rules_on_over_rules_off_per_repeat"]
    verdicts = []
    for name in RULED:
        ratio = paired[name]
        met = "[green]meets[/green]" if ratio >= TARGET_RATIO else "[red]misses[/red]"
        what = ROWS[name][1] if name != "append_many" else ENTRY_KIND
        verdicts.append(
            f"{what}: rules on {ratio:.1%} of its ceiling ({met} ≥ {TARGET_RATIO:.0%}); "
            f"rules on / rules off {median(on_off[name]):.2f} "
            f"({min(on_off[name]):.2f}–{max(on_off[name]):.2f})"
        )
    table = new_table(
        f"Signed appends: {entries:,} entries per row, batches of {batch_size:,}, "
        f"median of {repeats} (rows 1–7: {ENTRY_KIND}; usage mix: usage.recorded of one service)",
        ["path", "what", "entries/s", "of ceiling", "min–max", "vs append_many"],
        caption=(
            "\n".join(verdicts)
            + "\n'of ceiling' is the median of per-repeat ratios to the same mix's ceiling "
            "(min–max over repeats); pymerkle stores unsigned leaves and no interior nodes. "
            "Rules off: every rule's check a no-op, inside this benchmark only."
        ),
        text_columns=2,
    )
    for name, (label, what) in ROWS.items():
        unsigned = name.startswith("pymerkle")
        table.add_row(
            label,
            what,
            fmt_rate(medians[name]),
            "n/a (unsigned)" if unsigned else fmt_pct(paired[name]),
            "" if unsigned or name == CEILING_OF[name] else _spread(per_repeat[name]),
            fmt_ratio(vs_append[name]),
        )
    low, high = TRILLIAN_MYSQL_ENTRIES_PER_S
    table.add_row(
        "Trillian on MySQL",
        "published reference, not measured",
        f"{low}–{high}",
        "—",
        "",
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
    paired = result["ratio_to_ceiling_paired_median"]
    met = all(paired[name] >= TARGET_RATIO for name in RULED)
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
                "mixes": {
                    "append_many": f"{ENTRY_KIND}, distinct digests, one author",
                    "usage_append_many": "usage.recorded of one service signed by its registrant",
                    "delegate_append_many": "usage.recorded of one service signed by a party "
                    "holding a metering delegation",
                },
                "database": "SQLite (WAL, synchronous=NORMAL), fresh temporary workspace per measurement",
            },
            "target": {
                "append_ratio_to_ceiling_min": TARGET_RATIO,
                "rules": "on",
                "met": met,
                "met_per_mix": {name: paired[name] >= TARGET_RATIO for name in RULED},
            },
            "results": result,
            "references_not_measured": {
                "trillian_mysql_entries_per_s": list(TRILLIAN_MYSQL_ENTRIES_PER_S),
            },
            "notes": [
                "ceiling = sign_entry (RFC 8785 canonicalisation + Ed25519 signature) with no storage",
                "store_append_no_projections replaces apply_projections with a no-op (diagnostic only)",
                "*_rules_off: every quotepart.store.rights.RULES[kind] replaced by "
                "dataclasses.replace(rule, check=no-op) for the timed part, in this process only; "
                "on and off run back to back, their order alternating per repeat",
                "pymerkle appends the same canonical bytes as unsigned leaves; it stores no interior nodes",
                f"sqlite3 module {sqlite3.sqlite_version}",
            ],
        },
    )


if __name__ == "__main__":
    main()
