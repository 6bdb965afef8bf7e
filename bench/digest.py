"""Content digest of a large file: `quotepart.provenance.digest_file` vs `sha256sum`.

Target (issue "Provenance SDK"): at least 70 % of sha256sum's speed on the same bytes,
measured in the same run. Both read the same file; each is run `--repeats` times,
alternating, after one untimed warm-up read so that both see the page cache alike.

    python bench/digest.py [--quick] [--size-mib 1024]
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

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

from quotepart.provenance import digest_file

TARGET_RATIO = 0.70


def write_file(path: Path, size_mib: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as handle:
        for _ in range(size_mib):
            handle.write(block)


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1 GiB)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    size_mib = 64 if args.quick else args.size_mib
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-digest-") as folder:
        path = Path(folder) / "blob.bin"
        log(f"writing {size_mib} MiB of random bytes")
        write_file(path, size_mib)
        expected = subprocess.run(
            ["sha256sum", str(path)], check=True, capture_output=True, text=True
        ).stdout.split()[0]
        if digest_file(path).hex != expected:
            raise SystemExit("digest_file and sha256sum disagree")
        seconds: dict[str, list[float]] = {"sha256sum": [], "digest_file": []}
        for repeat in range(args.repeats):
            with stopwatch() as elapsed:
                subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
            seconds["sha256sum"].append(elapsed[0])
            with stopwatch() as elapsed:
                digest_file(path)
            seconds["digest_file"].append(elapsed[0])
            log(
                f"repeat {repeat + 1}: sha256sum {seconds['sha256sum'][-1]:.2f} s, digest_file {seconds['digest_file'][-1]:.2f} s"
            )
    ratios = [s / d for s, d in zip(seconds["sha256sum"], seconds["digest_file"], strict=True)]
    ratio = median(ratios)
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
    write_results(
        results_path("digest", quick=args.quick, override=args.output),
        {
            "benchmark": "digest",
            "parameters": {"size_mib": size_mib, "repeats": args.repeats, "quick": args.quick},
            "target": {"ratio_to_sha256sum_min": TARGET_RATIO, "met": ratio >= TARGET_RATIO},
            "results": {"seconds": seconds, "paired_ratios": ratios, "ratio_median": ratio},
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
