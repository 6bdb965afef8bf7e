"""Record-level identity: does registration find copied records, and what does the index cost?

Targets (issue 16, point 1): a cohort sharing ≥ 50 % of its records with an earlier one is
flagged at ≥ 99 % recall, with ≤ 1 % false flags on honest cohorts; registering a
1,000,000-record cohort with the record index stays within 1.5× of the same registration
without it.

(a) Detection. Cohort pairs (A registered first, then B) drawn from several scikit-learn
datasets (bundled, no download) and `make_classification`, features plus the target
column, in three kinds: *exact* (B holds 50-100 % of its records copied from A, rows
shuffled, the rest from records A does not hold), *jittered* (the same, then every
feature of B multiplied by 1 + N(0, 0.002)), and *honest* (A and B disjoint samples of
the same dataset). Each pair goes through the code registration runs (encode_table,
merkle_root_and_leaves, record_keys, IndexedSet.of, find_overlaps), without a database:
recall is the share of copy pairs flagged, false flags the share of honest pairs flagged.
The near shares of honest and copied cohorts are reported too (they justify
`NEAR_SHARE_THRESHOLD`).

(b) Cost. `ws.register_data` of a seeded 1,000,000 × 30 float64 table into a fresh
workspace, with the index (default) and without it (`Provenance._index_records = False`),
alternating, `--repeats` times each; the ratio is the median of the paired ratios, with
their min-max spread.

    python bench/overlap.py [--quick] [--pairs 100] [--records 1000000] [--repeats 5]
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_pct,
    fmt_ratio,
    log,
    machine_info,
    median,
    new_table,
    results_path,
    stdout,
    stopwatch,
    write_results,
)
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_classification,
)

from quotepart.provenance.digest import merkle_root_and_leaves
from quotepart.provenance.overlap import (
    NEAR_SHARE_THRESHOLD,
    IndexedSet,
    OverlapWarning,
    RecordKeys,
    find_overlaps,
    record_keys,
)
from quotepart.provenance.tables import encode_table
from quotepart.workspace import init_workspace

TARGET_RECALL = 0.99
TARGET_FALSE_FLAGS = 0.01
TARGET_COST = 1.5
JITTER = 0.002

Table = tuple[np.ndarray, np.ndarray]


def _classification() -> Table:
    features, target = make_classification(
        n_samples=3000, n_features=20, n_informative=8, random_state=0
    )
    return features, target


DATASETS: dict[str, Callable[[], Table]] = {
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "digits": lambda: load_digits(return_X_y=True),
    "diabetes": lambda: load_diabetes(return_X_y=True),
    "make_classification": _classification,
}


def keys_of(table: Table) -> RecordKeys:
    """The keys registration computes for a table (the same calls, no database)."""
    encoded = encode_table(table)
    _, leaves = merkle_root_and_leaves(encoded.records, workers=1)
    return record_keys(leaves, encoded.numeric)


def make_pair(data: Table, kind: str, rng: np.random.Generator) -> tuple[Table, Table, float]:
    """Cohorts A and B of one dataset, and the true share of B's records copied from A."""
    features, target = data
    rows = len(features)
    order = rng.permutation(rows)
    size = max(10, rows // 4)
    first, rest = order[:size], order[size:]
    if kind == "honest":
        second = rest[:size]
        share = 0.0
    else:
        share = float(rng.uniform(0.5, 1.0))
        copied = round(share * size)
        second = np.concatenate([rng.choice(first, copied, replace=False), rest[: size - copied]])
        rng.shuffle(second)
        share = copied / size
    copy = features[second]
    if kind == "jittered":
        copy = copy * (1 + rng.normal(0, JITTER, copy.shape))
    return (features[first], target[first]), (copy, target[second]), share


def bench_detection(pairs: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    per: dict[str, dict[str, Any]] = {}
    near_shares: dict[str, list[float]] = {"honest": [], "exact": [], "jittered": []}
    errors: list[float] = []
    for name, load in DATASETS.items():
        data = load()
        counts = {kind: [0, 0] for kind in ("exact", "jittered", "honest")}  # flagged, total
        for kind in counts:
            for _ in range(pairs):
                first, second, share = make_pair(data, kind, rng)
                earlier = [IndexedSet.of("sha256:" + "0" * 64, keys_of(first))]
                new = keys_of(second)
                flagged = find_overlaps(new, earlier)
                counts[kind][0] += bool(flagged)
                counts[kind][1] += 1
                unthresholded = find_overlaps(new, earlier, threshold=Fraction(0))
                near = sum(o.records for o in unthresholded) / len(new)
                near_shares[kind].append(near)
                if kind != "honest":
                    errors.append(abs(near - share))
        per[name] = {kind: {"flagged": f, "pairs": t} for kind, (f, t) in counts.items()}
        log(f"{name}: " + ", ".join(f"{kind} {f}/{t} flagged" for kind, (f, t) in counts.items()))
    copies = [per[n][k] for n in per for k in ("exact", "jittered")]
    honest = [per[n]["honest"] for n in per]
    recall = sum(c["flagged"] for c in copies) / sum(c["pairs"] for c in copies)
    false_flags = sum(c["flagged"] for c in honest) / sum(c["pairs"] for c in honest)
    return {
        "pairs_per_dataset_and_kind": pairs,
        "per_dataset": per,
        "recall": recall,
        "false_flag_rate": false_flags,
        "near_share": {
            kind: {"min": min(v), "median": median(v), "max": max(v)}
            for kind, v in near_shares.items()
        },
        "share_error_max": max(errors),
        "threshold": str(NEAR_SHARE_THRESHOLD),
        "met": recall >= TARGET_RECALL and false_flags <= TARGET_FALSE_FLAGS,
    }


def register_once(table: np.ndarray, index: bool, folder: Path) -> float:
    ws = init_workspace(folder)
    try:
        party = ws.register_party("bench")
        ws.provenance._index_records = index
        with warnings.catch_warnings():
            warnings.simplefilter("error", OverlapWarning)  # a fresh workspace: none expected
            with stopwatch() as elapsed:
                ws.register_data(table, name="cohort", by=party)
        return elapsed[0]
    finally:
        ws.close()


def bench_cost(records: int, fields: int, repeats: int, seed: int) -> dict[str, Any]:
    table = np.random.default_rng(seed).normal(size=(records, fields))
    seconds: dict[str, list[float]] = {"without index": [], "with index": []}
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-overlap-") as folder:
        register_once(table[: min(records, 10_000)], True, Path(folder) / "warm-up")
        for repeat in range(repeats):
            for label, index in (("without index", False), ("with index", True)):
                path = Path(folder) / f"{label}-{repeat}"
                seconds[label].append(register_once(table, index, path))
            log(
                f"repeat {repeat + 1}: without {seconds['without index'][-1]:.2f} s, "
                f"with {seconds['with index'][-1]:.2f} s"
            )
    ratios = [w / o for w, o in zip(seconds["with index"], seconds["without index"], strict=True)]
    return {
        "records": records,
        "fields": fields,
        "repeats": repeats,
        "seconds": seconds,
        "paired_ratios": ratios,
        "ratio_median": median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "met": median(ratios) <= TARGET_COST,
    }


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--pairs", type=int, default=100, help="pairs per dataset and kind")
    parser.add_argument("--records", type=int, default=1_000_000, help="records of the cohort")
    parser.add_argument("--fields", type=int, default=30, help="float64 columns of the cohort")
    parser.add_argument("--repeats", type=int, default=5, help="timed registrations of each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    pairs = 10 if args.quick else args.pairs
    records = 100_000 if args.quick else args.records
    repeats = 2 if args.quick else args.repeats

    detection = bench_detection(pairs, args.seed)
    cost = bench_cost(records, args.fields, repeats, args.seed)

    table = new_table(
        f"Overlap detection: {pairs} cohort pairs per dataset and kind "
        f"(flagged / pairs; near-share threshold {NEAR_SHARE_THRESHOLD})",
        ["dataset", "exact copy 50-100 %", "jittered 0.2 %", "honest (disjoint)"],
    )
    for name, kinds in detection["per_dataset"].items():
        table.add_row(name, *(f"{kinds[k]['flagged']}/{kinds[k]['pairs']}" for k in kinds))
    stdout.print(table)
    shares = detection["near_share"]
    stdout.print(
        f"recall at ≥ 50 % overlap {detection['recall']:.1%} (target ≥ 99 %), false flags "
        f"{detection['false_flag_rate']:.1%} (target ≤ 1 %); near share of honest cohorts "
        f"max {shares['honest']['max']:.1%}, of copies min "
        f"{min(shares['exact']['min'], shares['jittered']['min']):.1%}; largest error of the "
        f"shared fraction {detection['share_error_max']:.1%}."
    )
    table = new_table(
        f"ws.register_data of {records:,} × {args.fields} float64 records, "
        f"{repeats} paired repeats",
        ["", "median s", "min s", "max s"],
    )
    for label, values in cost["seconds"].items():
        table.add_row(label, f"{median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}")
    stdout.print(table)
    verdict = "meets" if cost["met"] else "misses"
    stdout.print(
        f"with the index / without: {fmt_ratio(cost['ratio_median'])} "
        f"({fmt_ratio(cost['ratio_min'])}-{fmt_ratio(cost['ratio_max'])}), {verdict} the "
        f"target (≤ {TARGET_COST}×); recall {fmt_pct(detection['recall'])}."
    )
    write_results(
        results_path("overlap", quick=args.quick, override=args.output),
        {
            "benchmark": "overlap",
            "parameters": {
                "pairs": pairs,
                "records": records,
                "fields": args.fields,
                "repeats": repeats,
                "seed": args.seed,
                "quick": args.quick,
                "jitter": JITTER,
            },
            "target": {
                "recall_min": TARGET_RECALL,
                "false_flag_rate_max": TARGET_FALSE_FLAGS,
                "cost_ratio_max": TARGET_COST,
                "met": detection["met"] and cost["met"],
            },
            "detection": detection,
            "cost": cost,
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
