"""Content digests at scale: a large file (`digest_file`) and a 10-million-record table
(`merkle_root_packed`), each against `sha256sum` on the same bytes.

Target (issue "Provenance SDK"): at least 70 % of sha256sum's speed on the same bytes,
measured in the same run. Each measurement is run `--repeats` times, alternating with
sha256sum, after one untimed warm-up read so that both see the page cache alike; the
ratio is the median of the paired ratios.

Record sets: a seeded table packed fixed-width little-endian, (a) narrow: 8 float64
columns = 64 bytes/record; (b) breast-cancer-shaped: 30 float64 features + an int64
label = 248 bytes/record. The same record bytes (no prefix byte) go to a file for
sha256sum; `merkle_root_packed` (every core) hashes them as an RFC 9162 tree, which
takes two SHA-256 calls per record (leaf + interior node) where sha256sum streams once.

    python bench/digest.py [--quick] [--size-mib 1024] [--records 10000000]
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_pct,
    log,
    machine_info,
    median,
    new_table,
    results_path,
    stdout,
    stopwatch,
    write_results,
)

from quotepart.provenance import digest_file, digest_records
from quotepart.provenance.digest import PackedRecords, merkle_root_packed

TARGET_RATIO = 0.70
GENERATE_ROWS = 1_000_000  # rows generated and written at a time, to keep memory flat
CHECK_RECORDS = 200_000  # a prefix also hashed record by record with digest_records


@dataclass(frozen=True)
class TableCase:
    name: str
    features: int  # float64 columns
    label: bool  # one int64 column after the features

    @property
    def dtype(self) -> np.dtype[Any]:
        fields: list[tuple[str, Any]] = [("features", "<f8", (self.features,))]
        if self.label:
            fields.append(("label", "<i8"))
        return np.dtype(fields)  # packed: no padding between 8-byte fields


CASES = (
    TableCase("narrow: 8 × float64", features=8, label=False),
    TableCase("breast-cancer-shaped: 30 × float64 + int64 label", features=30, label=True),
)


def write_file(path: Path, size_mib: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as handle:
        for _ in range(size_mib):
            handle.write(block)


def sha256sum(path: Path) -> str:
    return subprocess.run(
        ["sha256sum", str(path)], check=True, capture_output=True, text=True
    ).stdout.split()[0]


def write_table(path: Path, case: TableCase, records: int, seed: int) -> None:
    """Seeded rows, packed fixed-width little-endian, written a million at a time."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.0, 500.0, case.features)
    scales = rng.uniform(0.01, 50.0, case.features)
    with path.open("wb") as handle:
        for first in range(0, records, GENERATE_ROWS):
            rows = np.empty(min(GENERATE_ROWS, records - first), dtype=case.dtype)
            rows["features"] = rng.normal(means, scales, (len(rows), case.features))
            if case.label:
                rows["label"] = rng.integers(0, 2, len(rows))
            handle.write(rows.tobytes())


def bench_file(size_mib: int, repeats: int, folder: Path) -> dict[str, Any]:
    path = folder / "blob.bin"
    log(f"writing {size_mib} MiB of random bytes")
    write_file(path, size_mib)
    if digest_file(path).hex != sha256sum(path):
        raise SystemExit("digest_file and sha256sum disagree")
    seconds: dict[str, list[float]] = {"sha256sum": [], "digest_file": []}
    for repeat in range(repeats):
        with stopwatch() as elapsed:
            sha256sum(path)
        seconds["sha256sum"].append(elapsed[0])
        with stopwatch() as elapsed:
            digest_file(path)
        seconds["digest_file"].append(elapsed[0])
        log(
            f"repeat {repeat + 1}: sha256sum {seconds['sha256sum'][-1]:.2f} s, digest_file {seconds['digest_file'][-1]:.2f} s"
        )
    path.unlink()
    ratios = [s / d for s, d in zip(seconds["sha256sum"], seconds["digest_file"], strict=True)]
    return {"seconds": seconds, "paired_ratios": ratios, "ratio_median": median(ratios)}


def bench_table(
    case: TableCase, records: int, repeats: int, workers: int, seed: int, folder: Path
) -> dict[str, Any]:
    path = folder / "table.bin"
    width = case.dtype.itemsize
    log(
        f"{case.name}: writing {records:,} records of {width} bytes ({records * width / 1e9:.2f} GB)"
    )
    write_table(path, case, records, seed)
    buffer = path.read_bytes()  # the records in memory, as a caller would hold them
    packed = PackedRecords.fixed_width(buffer, width)
    if sha256sum(path) != hashlib.sha256(buffer).hexdigest():  # also warms the page cache
        raise SystemExit("the file and the in-memory records differ")
    checked = min(records, CHECK_RECORDS)
    prefix = [buffer[i * width : (i + 1) * width] for i in range(checked)]
    expected = digest_records(prefix)
    del prefix
    if merkle_root_packed(PackedRecords.fixed_width(buffer[: checked * width], width)) != expected:
        raise SystemExit(f"merkle_root_packed and digest_records disagree on {checked} records")
    with stopwatch() as elapsed:
        single_root = merkle_root_packed(packed, workers=1)
    single_s = elapsed[0]
    log(f"{case.name}: 1 process {single_s:.2f} s")
    seconds: dict[str, list[float]] = {"sha256sum": [], "merkle_root_packed": []}
    for repeat in range(repeats):
        with stopwatch() as elapsed:
            sha256sum(path)
        seconds["sha256sum"].append(elapsed[0])
        with stopwatch() as elapsed:
            root = merkle_root_packed(packed, workers=workers)
        seconds["merkle_root_packed"].append(elapsed[0])
        if root != single_root:
            raise SystemExit("roots from 1 process and from workers disagree")
        log(
            f"{case.name} repeat {repeat + 1}: sha256sum {seconds['sha256sum'][-1]:.2f} s, merkle_root_packed {seconds['merkle_root_packed'][-1]:.2f} s"
        )
    path.unlink()
    ratios = [
        s / q for s, q in zip(seconds["sha256sum"], seconds["merkle_root_packed"], strict=True)
    ]
    return {
        "case": case.name,
        "records": records,
        "record_bytes": width,
        "bytes": len(buffer),
        "workers": workers,
        "root": root.hex,
        "seconds": seconds,
        "single_process_s": single_s,
        "paired_ratios": ratios,
        "ratio_median": median(ratios),
        "met": median(ratios) >= TARGET_RATIO,
    }


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1 GiB)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (file)")
    parser.add_argument(
        "--records", type=int, default=10_000_000, help="records per table (--quick: 500,000)"
    )
    parser.add_argument("--record-repeats", type=int, default=3, help="timed runs (tables)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated tables")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    size_mib = 64 if args.quick else args.size_mib
    records = 500_000 if args.quick else args.records
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-digest-") as folder:
        file_results = bench_file(size_mib, args.repeats, Path(folder))
        tables = [
            bench_table(case, records, args.record_repeats, args.workers, args.seed, Path(folder))
            for case in CASES
        ]

    seconds, ratio = file_results["seconds"], file_results["ratio_median"]
    table = new_table(
        f"SHA-256 of a {size_mib} MiB file (page cache warm), median of {args.repeats}",
        ["tool", "MiB/s", "speed vs sha256sum"],
    )
    for name in ("sha256sum", "digest_file"):
        table.add_row(
            name,
            f"{size_mib / median(seconds[name]):,.0f}",
            fmt_pct(median(seconds["sha256sum"]) / median(seconds[name])),
        )
    stdout.print(table)
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    stdout.print(
        f"digest_file runs at {ratio:.0%} of sha256sum's speed (median of paired runs): {verdict} the target (≥ 70 %)."
    )

    table = new_table(
        f"RFC 9162 root of a record table vs sha256sum of its bytes, median of {args.record_repeats}",
        [
            "case",
            "records",
            "bytes",
            "sha256sum s",
            "quotepart s",
            "1 process s",
            "speed vs sha256sum",
            "target",
        ],
        caption=f"quotepart = merkle_root_packed with {args.workers} worker processes; sha256sum is one process",
    )
    for result in tables:
        table.add_row(
            result["case"],
            f"{result['records']:,}",
            f"{result['bytes']:,}",
            f"{median(result['seconds']['sha256sum']):.2f}",
            f"{median(result['seconds']['merkle_root_packed']):.2f}",
            f"{result['single_process_s']:.2f}",
            fmt_pct(result["ratio_median"]),
            fmt_pct(TARGET_RATIO),
        )
    stdout.print(table)
    write_results(
        results_path("digest", quick=args.quick, override=args.output),
        {
            "benchmark": "digest",
            "parameters": {
                "size_mib": size_mib,
                "repeats": args.repeats,
                "quick": args.quick,
                "records": records,
                "record_repeats": args.record_repeats,
                "workers": args.workers,
                "seed": args.seed,
            },
            "target": {
                "ratio_to_sha256sum_min": TARGET_RATIO,
                "met": ratio >= TARGET_RATIO,
                "record_sets_met": {result["case"]: result["met"] for result in tables},
            },
            "results": file_results,
            "record_sets": tables,
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
