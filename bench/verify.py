"""Full audit of a real signed log of 1,000,000 entries vs the crypto-only ceiling.

Issue "Foundation: the signed Merkle log": verification must be bounded by hashing and
signature checks, not by database queries. This script builds a real log with
`Workspace.append_many` (8 parties, then alternating `asset.registered` and
`contribution.recorded` for that asset, in batches with one checkpoint each), then times,
on the same machine in the same run:

* `quotepart.log.audit(ws.store, ws.verifier, workers=...)`: every entry parsed and
  re-canonicalised, every leaf hash, signature, interior node and checkpoint checked;
  with 1 worker and with the default worker count (what `quotepart verify` uses);
* `Workspace.verify()`: the audit plus the projection replay and comparison, with the
  rights rules on (as shipped: every entry judged again in the replay) and off (every
  rule's check a no-op, inside this script only: `_common.rules_off`), back to back,
  their order alternating, `--verify-repeats` times each;
* the crypto-only ceiling: Ed25519 verification of the same signatures over the same
  messages plus SHA-256 leaf hashing of the same bytes, with no database and no parsing,
  in one process and in as many worker processes as the audit uses;
* the breakdown: the audit's database reads alone, and its parsing alone.

    python bench/verify.py            # 1,000,000 entries (the build takes several minutes)
    python bench/verify.py --quick    # 20,000 entries: a smoke test
    python bench/verify.py --entries 200000   # a smaller full run
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_pct,
    fmt_rate,
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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import quotepart
from quotepart.ids import Digest, PartyId
from quotepart.log import NodeId, audit, parse_entry
from quotepart.log.kinds import (
    AssetRegistered,
    ContributionRecorded,
    EntryBody,
    PartyRegistered,
)
from quotepart.log.verify import CHUNK_SIZE
from quotepart.workspace import Workspace

PARTIES = 8
CEILING_CHUNK = 16_384  # entries per task sent to a ceiling worker

Triple = tuple[bytes, bytes, bytes]  # (public key, signature, signed message)


def default_workers() -> int:
    """The worker count `audit` picks when given none (quotepart/log/verify.py)."""
    return min(os.cpu_count() or 1, 8)


# ------------------------------------------------------------------------ building


def build_log(ws: Workspace, entries: int, batch: int) -> float:
    """Append `entries` signed entries (after the parties); return the seconds it took."""
    parties = [ws.register_party(f"party {k}") for k in range(PARTIES)]
    timed = 0.0
    asset = Digest.of_bytes(b"")
    for start in range(0, entries, batch):
        items: list[tuple[EntryBody, PartyId]] = []
        for i in range(start, min(start + batch, entries)):
            author = parties[(i // 2) % PARTIES]
            if i % 2 == 0:
                asset = Digest.of_bytes(f"bench/verify/{i}".encode())
                items.append((AssetRegistered(asset, "dataset", f"dataset {i}"), author))
            else:
                contributor = parties[(i // 2 + 1) % PARTIES]
                body = ContributionRecorded(contributor, asset, "data", Fraction(1, 2))
                items.append((body, author))
        with stopwatch() as elapsed:
            ws.append_many(items)
        timed += elapsed[0]
        done = start + len(items)
        if done % (batch * 50) == 0 or done == entries:
            eta = (entries - done) * timed / done
            log(
                f"  built {done:>10,}/{entries:,}  {rate(done, timed):>7,.0f} entries/s  eta {eta:,.0f} s"
            )
    return timed


# ------------------------------------------------------------------ the breakdown


def nodes_completed_by(start: int, end: int) -> list[NodeId]:
    """Interior nodes whose last leaf lies in [start, end): what the audit reads per chunk."""
    nodes: list[NodeId] = []
    level = 1
    while (1 << level) <= end:
        first = -(-(start + 1) // (1 << level)) - 1  # ceil((start + 1) / 2^level) - 1
        nodes.extend(NodeId(level, i) for i in range(max(first, 0), end // (1 << level)))
        level += 1
    return nodes


def time_database_reads(ws: Workspace) -> float:
    """The audit's queries alone: leaves and completed interior nodes, chunk by chunk."""
    size = ws.store.tree_size()
    with stopwatch() as elapsed:
        for start in range(0, size, CHUNK_SIZE):
            end = min(start + CHUNK_SIZE, size)
            for _ in ws.store.leaves(start, end):
                pass
            wanted = nodes_completed_by(start, end)
            found = ws.store.interior_nodes(wanted)
            assert len(found) == len(wanted), f"{len(wanted) - len(found)} nodes missing"
        ws.store.leaf_count()
        ws.store.interior_node_count()
        ws.store.checkpoint_notes()
    return elapsed[0]


def load_entries(ws: Workspace) -> list[bytes]:
    size = ws.store.tree_size()
    data: list[bytes] = []
    for start in range(0, size, CHUNK_SIZE):
        data.extend(entry for _, _, entry in ws.store.leaves(start, min(start + CHUNK_SIZE, size)))
    return data


def time_parsing(data: Sequence[bytes]) -> tuple[float, list[Triple]]:
    """What the audit does per entry besides hashing and verifying: parse (with the
    canonical-form check and body decoding) and rebuild the signed message."""
    keys: dict[PartyId, bytes] = {}
    triples: list[Triple] = []
    with stopwatch() as elapsed:
        for raw in data:
            entry = parse_entry(raw)
            if entry.kind == PartyRegistered.KIND:
                body = entry.body()
                assert isinstance(body, PartyRegistered)
                keys[body.party] = body.public_key.raw
            triples.append((keys[entry.author], entry.signature, entry.signed_message))
    return elapsed[0], triples


def verify_and_hash(chunk: Sequence[tuple[bytes, bytes, bytes, bytes]]) -> int:
    """Crypto only: Ed25519 verify + RFC 9162 leaf hash; return the number of failures."""
    cache: dict[bytes, Ed25519PublicKey] = {}
    failures = 0
    for public, signature, message, raw in chunk:
        key = cache.get(public)
        if key is None:
            key = cache[public] = Ed25519PublicKey.from_public_bytes(public)
        try:
            key.verify(signature, message)
        except InvalidSignature:
            failures += 1
        hashlib.sha256(b"\x00" + raw).digest()
    return failures


def _warm(_: int) -> int:
    """Started and imported before the clock runs."""
    return os.getpid()


def time_hashing(data: Sequence[bytes]) -> float:
    with stopwatch() as elapsed:
        for raw in data:
            hashlib.sha256(b"\x00" + raw).digest()
    return elapsed[0]


def time_crypto(items: Sequence[tuple[bytes, bytes, bytes, bytes]], workers: int) -> float:
    """The ceiling; with workers > 1 the pool is started (and warm) before the clock runs."""
    if workers == 1:
        with stopwatch() as elapsed:
            failures = verify_and_hash(items)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_warm, range(workers)))
            step = min(CEILING_CHUNK, -(-len(items) // (workers * 4)))  # balanced on small logs
            chunks = [items[i : i + step] for i in range(0, len(items), step)]
            with stopwatch() as elapsed:
                failures = sum(pool.map(verify_and_hash, chunks))
    assert failures == 0, f"{failures} signatures failed in the ceiling"
    return elapsed[0]


def time_audit(ws: Workspace, workers: int | None, label: str) -> float:
    progress = _progress(label)
    with stopwatch() as elapsed:
        report = audit(ws.store, ws.verifier, workers=workers, progress=progress)
    assert report.signatures_checked == report.tree_size
    return elapsed[0]


def time_full_verify(ws: Workspace, *, rules: bool = True) -> float:
    progress = _progress("verify" if rules else "verify, rules off")
    with rules_off(not rules), stopwatch() as elapsed:
        ws.verify(progress=progress)
    return elapsed[0]


def _progress(label: str) -> Callable[[int, int], None]:
    marks: set[int] = set()

    def report(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth not in marks:
            marks.add(tenth)
            log(f"  {label}: {done:,}/{total:,}")

    return report


# ------------------------------------------------------------------------- main

STEPS: dict[str, tuple[str, str]] = {
    "database_reads": ("  audit's database reads alone", "1"),
    "parsing": ("  audit's parse + canonical check + signed message", "1"),
    "sha256": ("  SHA-256 leaf hashes alone", "1"),
    "crypto_1": ("crypto ceiling: Ed25519 verify + SHA-256, no DB", "1"),
    "crypto_w": ("crypto ceiling: Ed25519 verify + SHA-256, no DB", "W"),
    "audit_1": ("quotepart.log.audit", "1"),
    "audit_w": ("quotepart.log.audit (default workers)", "W"),
    "verify_w": ("Workspace.verify = audit + replay, rules on", "W"),
    "verify_w_rules_off": ("Workspace.verify, rules off (bench only)", "W"),
}
VERSUS = {
    "audit_1": "crypto_1",
    "audit_w": "crypto_w",
    "verify_w": "crypto_w",
    "verify_w_rules_off": "crypto_w",
}


def run(
    entries: int, batch: int, repeats: int, verify_repeats: int, workdir: Path | None
) -> dict[str, Any]:
    workers = default_workers()
    seconds: dict[str, list[float]] = {name: [] for name in STEPS}
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-verify-", dir=workdir) as tmp:
        log(f"building a log of {entries:,} entries in batches of {batch:,}")
        with quotepart.init_workspace(Path(tmp) / "ws") as ws:
            build_seconds = build_log(ws, entries, batch)
            size = ws.store.tree_size()
            checkpoints = len(ws.store.checkpoint_notes())
            log(f"log: {size:,} entries, {checkpoints:,} checkpoints; loading for the ceiling")
            data = load_entries(ws)
            for repeat in range(repeats):
                log(f"repeat {repeat + 1}/{repeats} with W = {workers} workers")
                log("  timing the audit's database reads")
                seconds["database_reads"].append(time_database_reads(ws))
                log("  timing parsing")
                parse_s, triples = time_parsing(data)
                seconds["parsing"].append(parse_s)
                seconds["sha256"].append(time_hashing(data))
                items = [(*triple, raw) for triple, raw in zip(triples, data, strict=True)]
                del triples
                log("  timing the crypto ceiling, 1 process")
                seconds["crypto_1"].append(time_crypto(items, 1))
                log(f"  timing the crypto ceiling, {workers} processes")
                seconds["crypto_w"].append(time_crypto(items, workers))
                del items
                for name in ("database_reads", "parsing", "sha256", "crypto_1", "crypto_w"):
                    log(f"  {name:<15} {rate(size, seconds[name][-1]):>10,.0f} entries/s")
                seconds["audit_1"].append(time_audit(ws, 1, "audit, 1 worker"))
                log(f"  {'audit_1':<15} {rate(size, seconds['audit_1'][-1]):>10,.0f} entries/s")
                seconds["audit_w"].append(time_audit(ws, None, f"audit, {workers} workers"))
                log(f"  {'audit_w':<15} {rate(size, seconds['audit_w'][-1]):>10,.0f} entries/s")
            for repeat in range(verify_repeats):
                order = (True, False) if repeat % 2 == 0 else (False, True)
                log(f"verify, rules on and off, {repeat + 1}/{verify_repeats}")
                for rules in order:
                    name = "verify_w" if rules else "verify_w_rules_off"
                    seconds[name].append(time_full_verify(ws, rules=rules))
                    log(f"  {name:<18} {rate(size, seconds[name][-1]):>10,.0f} entries/s")
    medians = {name: median(values) for name, values in seconds.items()}
    rates = {name: rate(size, value) for name, value in medians.items()}
    verify_rates = {
        name: [rate(size, value) for value in seconds[name]]
        for name in ("verify_w", "verify_w_rules_off")
    }
    on_over_off = [  # paired: the two runs of one repeat, back to back
        off_s / on_s
        for on_s, off_s in zip(seconds["verify_w"], seconds["verify_w_rules_off"], strict=True)
    ]
    # Where the audit's time goes if nothing overlaps: the main process reads and parses,
    # then waits for the workers' signature checks (crypto ceiling over W processes).
    model_w = medians["database_reads"] + medians["parsing"] + medians["crypto_1"] / workers
    # One process does everything in audit (1): split its time into the measured parts.
    parts = {name: medians[name] for name in ("database_reads", "parsing", "crypto_1")}
    parts["rest"] = medians["audit_1"] - sum(parts.values())
    breakdown = {name: value / medians["audit_1"] for name, value in parts.items()}
    return {
        "tree_size": size,
        "checkpoints": checkpoints,
        "workers": workers,
        "build_seconds": build_seconds,
        "build_entries_per_s": rate(entries, build_seconds),
        "seconds": seconds,
        "seconds_median": medians,
        "entries_per_s": rates,
        "ratio_to_ceiling": {name: rates[name] / rates[base] for name, base in VERSUS.items()},
        "projection_replay_seconds": medians["verify_w"] - medians["audit_w"],
        "projection_replay_rules_off_seconds": medians["verify_w_rules_off"] - medians["audit_w"],
        "verify_entries_per_s_each": verify_rates,
        "verify_rules_on_over_off_per_repeat": on_over_off,
        "verify_rules_on_over_off_median": median(on_over_off),
        "serial_model_audit_w_seconds": model_w,
        "audit_1_breakdown": breakdown,
    }


def _each(values: Sequence[float], spec: str = ",.0f") -> str:
    """Median and the spread of repeated figures: `m (min–max)`, or the one figure."""
    if len(values) == 1:
        return format(values[0], spec)
    return (
        f"{format(median(values), spec)} ({format(min(values), spec)}–{format(max(values), spec)})"
    )


def render(result: dict[str, Any]) -> None:
    size, workers = result["tree_size"], result["workers"]
    medians, rates, ratios = (
        result["seconds_median"],
        result["entries_per_s"],
        result["ratio_to_ceiling"],
    )
    audit_w = medians["audit_w"]
    parts = result["audit_1_breakdown"]
    table = new_table(
        f"Verifying a signed log of {size:,} entries ({result['checkpoints']:,} checkpoints), "
        f"W = {workers} worker processes",
        ["step", "processes", "entries/s", "of audit (W) time", "vs crypto ceiling"],
        caption=(
            f"Rows marked with an indent are the breakdown. 'of audit (W) time' = step seconds / "
            f"audit (W) seconds. Serial model of audit (W): reads + parsing + crypto(1)/W = "
            f"{result['serial_model_audit_w_seconds'] / audit_w:.0%} of the measured time.\n"
            f"audit (1) = database reads {parts['database_reads']:.0%} + parsing "
            f"{parts['parsing']:.0%} + crypto {parts['crypto_1']:.0%} + rest {parts['rest']:.0%} "
            "(tree recompute, node comparison, signature batches, interpreter overhead; derived).\n"
            f"Projection replay (verify − audit W) takes {result['projection_replay_seconds']:.1f} s "
            f"({rate(size, result['projection_replay_seconds']):,.0f} entries/s). "
            f"Build rate (append_many): {result['build_entries_per_s']:,.0f} entries/s.\n"
            f"verify, rules on: {_each(result['verify_entries_per_s_each']['verify_w'])}; "
            f"rules off: {_each(result['verify_entries_per_s_each']['verify_w_rules_off'])} "
            "entries/s; verify rate rules on / rules off, paired: "
            f"{_each(result['verify_rules_on_over_off_per_repeat'], '.2f')}."
        ),
    )
    for name, (label, processes) in STEPS.items():
        table.add_row(
            label,
            str(workers) if processes == "W" else processes,
            fmt_rate(rates[name]),
            fmt_pct(medians[name] / audit_w),
            fmt_pct(ratios.get(name)) if name in VERSUS else "—",
        )
    stdout.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--entries", type=int, help="entries in the log (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=1000, help="entries per append_many call")
    parser.add_argument("--repeats", type=int, default=1, help="repeats of each timed step")
    parser.add_argument(
        "--verify-repeats",
        type=int,
        default=3,
        help="Workspace.verify runs with rules on, and as many with rules off (interleaved)",
    )
    parser.add_argument("--workdir", type=Path, help="where the temporary workspace goes")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    entries = args.entries or (20_000 if args.quick else 1_000_000)

    result = run(entries, args.batch, args.repeats, args.verify_repeats, args.workdir)
    render(result)
    write_results(
        results_path("verify", quick=args.quick, override=args.output),
        {
            "benchmark": "verify",
            "issue": "Foundation: the signed Merkle log",
            "machine": machine_info(),
            "parameters": {
                "entries": entries,
                "parties": PARTIES,
                "batch_size": args.batch,
                "repeats": args.repeats,
                "verify_repeats": args.verify_repeats,
                "quick": args.quick,
                "entry_mix": "8 party.registered, then asset.registered / contribution.recorded alternating",
                "database": "SQLite (WAL), temporary workspace",
                "ceiling_chunk": CEILING_CHUNK,
                "audit_chunk": CHUNK_SIZE,
            },
            "results": result,
            "notes": [
                "crypto ceiling: cryptography's Ed25519 verify (key objects cached per author) "
                "+ hashlib SHA-256 of 0x00 || entry, over messages prepared beforehand",
                "the multi-process ceiling ships its work to a warm pool in chunks (pickled)",
                "audit (W) uses audit's own default worker count: min(os.cpu_count(), 8)",
                "verify_w_rules_off: every quotepart.store.rights.RULES[kind] replaced by "
                "dataclasses.replace(rule, check=no-op) during that verify, in this process "
                "only (the replay runs in the main process); on and off back to back, order "
                "alternating per repeat; seconds_median is over verify_repeats runs",
            ],
        },
    )


if __name__ == "__main__":
    main()
