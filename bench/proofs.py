"""Inclusion and consistency proofs read from the database, on a tree of 10,000,000 leaves.

Issue "Foundation: the signed Merkle log", target: p95 < 5 ms for each kind of proof,
served by `LogStore.inclusion_proof` / `LogStore.consistency_proof` (the code path of
`quotepart log prove-inclusion` / `prove-consistency`).

1. Fill a fresh SQLite workspace with synthetic leaf hashes through
   `LogStore.append_leaf_hashes_unsigned_for_benchmark` (the store's own node storage,
   one transaction and one checkpoint per batch) and report the fill rate. Leaf i is
   SHA-256(0x00 ‖ i as 8 big-endian bytes), i.e. the RFC 9162 leaf hash of that entry.
2. Time random proofs: inclusion of a uniform leaf in a uniform tree size that holds it,
   and consistency between a uniform pair of tree sizes (old < new). Report p50/p95/p99.
3. Check every timed proof with `quotepart.log.verify_inclusion` / `verify_consistency`
   against the roots it carries, and a sample against roots computed independently in
   this script (its own compact range over the same leaves) at random tree sizes.
4. Competitor in the same run: pymerkle 7.0 `SqliteTree` at a smaller size (default
   200,000 leaves: it recomputes uncached subtree roots from leaves, so it does not scale
   to 10M), with quotepart at the same size beside it. Its root is cross-checked.

    python bench/proofs.py            # 10,000,000 leaves; pymerkle at 200,000
    python bench/proofs.py --quick    # 200,000 leaves; pymerkle at 20,000
"""

from __future__ import annotations

import hashlib
import itertools
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    log,
    machine_info,
    new_table,
    percentiles_ms,
    rate,
    results_path,
    stdout,
    stopwatch,
    write_results,
)
from pymerkle import InvalidProof, SqliteTree
from pymerkle import verify_consistency as pymerkle_verify_consistency
from pymerkle import verify_inclusion as pymerkle_verify_inclusion

import quotepart
from quotepart.errors import VerificationError
from quotepart.log import verify_consistency, verify_inclusion
from quotepart.store.log_store import ConsistencyProof, InclusionProof
from quotepart.workspace import Workspace

TARGET_P95_MS = 5.0

R = TypeVar("R")


def entry_bytes(i: int) -> bytes:
    return i.to_bytes(8, "big")


def synthetic_leaf(i: int) -> bytes:
    """RFC 9162 leaf hash of entry i, so pymerkle (which hashes entries itself) agrees."""
    return hashlib.sha256(b"\x00" + entry_bytes(i)).digest()


class ReferenceTree:
    """An independent RFC 9162 compact range (not quotepart's), to check roots."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        h, index = leaf, self.size
        while index & 1:
            h = hashlib.sha256(b"\x01" + self.stack.pop() + h).digest()
            index >>= 1
        self.stack.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return hashlib.sha256(b"").digest()
        h = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            h = hashlib.sha256(b"\x01" + left + h).digest()
        return h


# ------------------------------------------------------------------------ filling


@dataclass
class Filled:
    seconds: float
    roots: dict[int, bytes]  # tree size -> root, computed by ReferenceTree
    database_bytes: int


def fill_quotepart(ws: Workspace, size: int, batch: int, anchors: set[int]) -> Filled:
    """Fill through the store; only the store call is timed, not making the hashes."""
    reference = ReferenceTree()
    roots: dict[int, bytes] = {}
    timed = 0.0
    for start in range(0, size, batch):
        leaves = [synthetic_leaf(i) for i in range(start, min(start + batch, size))]
        with stopwatch() as elapsed:
            ws.store.append_leaf_hashes_unsigned_for_benchmark(leaves)
        timed += elapsed[0]
        for leaf in leaves:
            reference.append(leaf)
            if reference.size in anchors:
                roots[reference.size] = reference.root()
        done = start + len(leaves)
        eta = (size - done) * timed / done
        log(f"  filled {done:>12,}/{size:,}  {rate(done, timed):>9,.0f} leaves/s  eta {eta:,.0f} s")
    stored_root = ws.store.root_hash()
    if stored_root != roots[size]:
        raise VerificationError(
            f"store root {stored_root.hex()} differs from the reference root {roots[size].hex()}"
        )
    with ws.store.engine.connect() as conn:  # fold the WAL in, so the file size is the data's
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database_bytes = (ws.path / "quotepart.db").stat().st_size
    return Filled(timed, roots, database_bytes)


def fill_pymerkle(tree: SqliteTree, size: int, batch: int) -> float:
    """pymerkle hashes the entries itself (one transaction per batch); that is timed."""
    timed = 0.0
    for start in range(0, size, batch):
        entries = [entry_bytes(i) for i in range(start, min(start + batch, size))]
        with stopwatch() as elapsed:
            tree.append_entries(entries)
        timed += elapsed[0]
    return timed


# ------------------------------------------------------------------------ queries


def inclusion_queries(rng: random.Random, size: int, count: int) -> list[tuple[int, int]]:
    """(leaf index, tree size): a uniform tree size, then a uniform leaf inside it."""
    queries = []
    for _ in range(count):
        tree_size = rng.randint(1, size)
        queries.append((rng.randrange(tree_size), tree_size))
    return queries


def consistency_queries(rng: random.Random, size: int, count: int) -> list[tuple[int, int]]:
    """(old size, new size) with 1 <= old < new <= size."""
    queries = []
    for _ in range(count):
        new = rng.randint(2, size)
        queries.append((rng.randint(1, new - 1), new))
    return queries


def time_calls(
    label: str, queries: Sequence[tuple[int, int]], call: Callable[[int, int], R]
) -> tuple[list[float], list[R]]:
    latencies, answers = [], []
    step = max(1, len(queries) // 10)
    for position, (a, b) in enumerate(queries, 1):
        with stopwatch() as elapsed:
            answers.append(call(a, b))
        latencies.append(elapsed[0])
        if position % step == 0:
            so_far = percentiles_ms(latencies) if len(latencies) > 1 else None
            p50 = "" if so_far is None else f"  p50 {so_far['p50_ms']:.2f} ms"
            log(f"  {label}: {position:,}/{len(queries):,}{p50}")
    return latencies, answers


def check_timed_proofs(
    inclusion: Sequence[InclusionProof], consistency: Sequence[ConsistencyProof]
) -> None:
    """Every timed proof verifies against the roots it carries, and names the right leaf."""
    for proof in inclusion:
        if proof.leaf_hash != synthetic_leaf(proof.leaf_index):
            raise VerificationError(f"leaf {proof.leaf_index}: the store returned another leaf")
        verify_inclusion(
            proof.leaf_hash, proof.leaf_index, proof.tree_size, proof.proof, proof.root_hash
        )
    for proof in consistency:
        verify_consistency(
            proof.old_size, proof.new_size, proof.old_root, proof.new_root, proof.proof
        )


def check_against_reference(
    ws: Workspace, roots: dict[int, bytes], rng: random.Random
) -> dict[str, int]:
    """Proofs at sizes whose roots this script computed itself; a tampered proof must fail."""
    sizes = sorted(roots)
    for tree_size in sizes:
        index = rng.randrange(tree_size)
        proof = ws.store.inclusion_proof(index, tree_size)
        verify_inclusion(synthetic_leaf(index), index, tree_size, proof.proof, roots[tree_size])
    pairs = list(itertools.pairwise(sizes))
    for old, new in pairs:
        proof = ws.store.consistency_proof(old, new)
        verify_consistency(old, new, roots[old], roots[new], proof.proof)
    _expect_tampering_detected(ws, sizes[-1], roots[sizes[-1]])
    return {"inclusion": len(sizes), "consistency": len(pairs)}


def _expect_tampering_detected(ws: Workspace, size: int, root: bytes) -> None:
    index = size // 3
    proof = ws.store.inclusion_proof(index, size)
    if proof.proof:
        bad = (bytes([proof.proof[0][0] ^ 1]) + proof.proof[0][1:], *proof.proof[1:])
        try:
            verify_inclusion(synthetic_leaf(index), index, size, bad, root)
        except VerificationError:
            pass
        else:
            raise AssertionError("a tampered inclusion proof verified: the check is vacuous")


# ------------------------------------------------------------------------- runs


def run_quotepart(
    root: Path, name: str, size: int, batch: int, proofs: int, check: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    anchors = {rng.randint(1, size) for _ in range(check)} | {size}
    log(f"quotepart @ {size:,} leaves: filling in batches of {batch:,}")
    with quotepart.init_workspace(root / name) as ws:
        filled = fill_quotepart(ws, size, batch, anchors)
        log(f"  fill: {rate(size, filled.seconds):,.0f} leaves/s, {filled.database_bytes:,} bytes")
        inc_lat, inc = time_calls(
            "inclusion", inclusion_queries(rng, size, proofs), ws.store.inclusion_proof
        )
        con_lat, con = time_calls(
            "consistency", consistency_queries(rng, size, proofs), ws.store.consistency_proof
        )
        check_timed_proofs(inc, con)
        checked = check_against_reference(ws, filled.roots, rng)
        log(f"  checked {len(inc) + len(con):,} timed proofs and {checked} against reference roots")
    return {
        "tree_size": size,
        "fill_seconds": filled.seconds,
        "fill_leaves_per_s": rate(size, filled.seconds),
        "database_bytes": filled.database_bytes,
        "database_bytes_per_leaf": filled.database_bytes / size,
        "inclusion": percentiles_ms(inc_lat),
        "consistency": percentiles_ms(con_lat),
        "verified_timed_proofs": len(inc) + len(con),
        "verified_against_reference_roots": checked,
        "root": filled.roots[size].hex(),
    }


def run_pymerkle(root: Path, size: int, batch: int, proofs: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    log(f"pymerkle @ {size:,} leaves: filling in batches of {batch:,}")
    tree = SqliteTree(str(root / "pymerkle.db"))
    try:
        seconds = fill_pymerkle(tree, size, batch)
        log(f"  fill: {rate(size, seconds):,.0f} leaves/s")
        # pymerkle is 1-based: leaf i (0-based) is index i + 1.
        inc_lat, inc = time_calls(
            "pymerkle inclusion",
            inclusion_queries(rng, size, proofs),
            lambda index, tree_size: tree.prove_inclusion(index + 1, tree_size),
        )
        con_lat, con = time_calls(
            "pymerkle consistency",
            consistency_queries(rng, size, proofs),
            tree.prove_consistency,
        )
        cache = tree.get_cache_info()
        root_hash = bytes(tree.get_root(size))
        checked = _check_pymerkle_sample(tree, inc[:20], con[:20])
    finally:
        tree.close()
    return {
        "tree_size": size,
        "fill_seconds": seconds,
        "fill_leaves_per_s": rate(size, seconds),
        "inclusion": percentiles_ms(inc_lat),
        "consistency": percentiles_ms(con_lat),
        "subroot_cache": {"hits": cache.hits, "misses": cache.misses},
        "verified_sample": checked,
        "root": root_hash.hex(),
    }


def _check_pymerkle_sample(tree: SqliteTree, inclusion: list[Any], consistency: list[Any]) -> int:
    for proof in inclusion:
        index, size = proof.index, proof.size
        try:
            pymerkle_verify_inclusion(tree.get_leaf(index), tree.get_root(size), proof)
        except InvalidProof as exc:
            raise VerificationError(f"pymerkle inclusion proof {index}/{size}: {exc}") from exc
    for proof in consistency:
        old, new = proof.prior_size, proof.size
        try:
            pymerkle_verify_consistency(tree.get_root(old), tree.get_root(new), proof)
        except InvalidProof as exc:
            raise VerificationError(f"pymerkle consistency proof {old}->{new}: {exc}") from exc
    return len(inclusion) + len(consistency)


# ------------------------------------------------------------------------- main


def render(large: dict[str, Any], same: dict[str, Any], rival: dict[str, Any]) -> None:
    table = new_table(
        "Proofs read from SQLite: latency per proof (ms), random queries",
        [
            "system",
            "tree size",
            "proof",
            "p50",
            "p95",
            "p99",
            "max",
            "p95 target",
            "p95 / pymerkle",
        ],
        caption=(
            f"Target: p95 < {TARGET_P95_MS:g} ms for each proof at {large['tree_size']:,} leaves. "
            "Inclusion: uniform tree size, uniform leaf in it; consistency: uniform old < new.\n"
            f"pymerkle runs at {rival['tree_size']:,} leaves (its subtree roots are recomputed "
            f"from leaves when not cached; cache hits {rival['subroot_cache']['hits']:,}, "
            f"misses {rival['subroot_cache']['misses']:,}); quotepart at the same size beside it."
        ),
        text_columns=3,
    )
    for label, result in (("quotepart", large), ("quotepart", same), ("pymerkle 7.0", rival)):
        for kind in ("inclusion", "consistency"):
            stats = result[kind]
            if result is rival:
                target, versus = "—", "1.00×"
            else:
                ok = stats["p95_ms"] < TARGET_P95_MS
                target = "[green]meets[/green]" if ok else "[red]misses[/red]"
                versus = (
                    fmt_ratio(stats["p95_ms"] / rival[kind]["p95_ms"]) if result is same else "—"
                )
            table.add_row(
                label,
                f"{result['tree_size']:,}",
                kind,
                fmt_ms(stats["p50_ms"]),
                fmt_ms(stats["p95_ms"]),
                fmt_ms(stats["p99_ms"]),
                fmt_ms(stats["max_ms"]),
                target,
                versus,
            )
    stdout.print(table)

    fill = new_table(
        "Filling the tree (leaf hashes → leaves + interior nodes + checkpoint per batch)",
        ["system", "tree size", "leaves/s", "vs pymerkle", "database bytes/leaf"],
        caption="pymerkle stores leaves only (no interior nodes) and hashes its entries itself.",
    )
    for label, result in (("quotepart", large), ("quotepart", same), ("pymerkle 7.0", rival)):
        fill.add_row(
            label,
            f"{result['tree_size']:,}",
            fmt_rate(result["fill_leaves_per_s"]),
            fmt_ratio(result["fill_leaves_per_s"] / rival["fill_leaves_per_s"]),
            f"{result['database_bytes_per_leaf']:.0f}"
            if "database_bytes_per_leaf" in result
            else "—",
        )
    stdout.print(fill)


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size", type=int, help="leaves in the big tree (default 10,000,000)")
    parser.add_argument("--competitor-size", type=int, help="leaves for pymerkle (200,000)")
    parser.add_argument("--proofs", type=int, help="timed proofs of each kind (1,000; quick 200)")
    parser.add_argument("--check", type=int, help="tree sizes checked independently (50; quick 20)")
    parser.add_argument("--batch", type=int, default=250_000, help="leaves per fill transaction")
    parser.add_argument("--seed", type=int, default=20240601, help="seed for the random queries")
    parser.add_argument("--workdir", type=Path, help="where the temporary databases go")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    size = args.size or (200_000 if args.quick else 10_000_000)
    rival_size = args.competitor_size or (20_000 if args.quick else 200_000)
    proofs = args.proofs or (200 if args.quick else 1000)
    check = args.check or (20 if args.quick else 50)

    with tempfile.TemporaryDirectory(prefix="quotepart-bench-proofs-", dir=args.workdir) as tmp:
        root = Path(tmp)
        large = run_quotepart(root, "large", size, args.batch, proofs, check, args.seed)
        same = run_quotepart(root, "same-size", rival_size, args.batch, proofs, check, args.seed)
        rival = run_pymerkle(root, rival_size, min(args.batch, 100_000), proofs, args.seed)
    if rival["root"] != same["root"]:
        raise VerificationError(
            f"pymerkle root {rival['root']} differs from quotepart's {same['root']} "
            f"over the same {rival_size:,} entries"
        )
    log("pymerkle and quotepart agree on the root over the same entries")
    render(large, same, rival)
    met = all(large[kind]["p95_ms"] < TARGET_P95_MS for kind in ("inclusion", "consistency"))
    write_results(
        results_path("proofs", quick=args.quick, override=args.output),
        {
            "benchmark": "proofs",
            "issue": "Foundation: the signed Merkle log",
            "machine": machine_info(),
            "parameters": {
                "tree_size": size,
                "competitor_tree_size": rival_size,
                "proofs_per_kind": proofs,
                "reference_checked_sizes": check,
                "fill_batch": args.batch,
                "seed": args.seed,
                "quick": args.quick,
                "inclusion_queries": "tree size uniform in [1, N], leaf uniform in [0, size)",
                "consistency_queries": "new uniform in [2, N], old uniform in [1, new)",
                "leaf_i": "SHA-256(0x00 || i as 8 big-endian bytes)",
            },
            "target": {"p95_ms_max": TARGET_P95_MS, "met": met},
            "results": {"quotepart": large, "quotepart_same_size": same, "pymerkle": rival},
        },
    )


if __name__ == "__main__":
    main()
