"""KNN-Shapley throughput: quotepart against pyDVL 0.10 on the same data, same values.

Issue "Contribution valuation", target: at least 10x pyDVL's throughput at 10,000
training x 1,000 test points and at 100,000 x 100, with identical values (1e-9).

pyDVL 0.10 requires numpy < 2, so it runs in its own virtual environment and the two
compare through files: this script writes the data (seeded, 10 features, 2 classes),
runs `pydvl.value.shapley.knn.knn_shapley` there on a `KNeighborsClassifier(k)`
utility, times it inside that process, and reads its values back. pyDVL returns the
sum over test points; quotepart the mean (the Shapley value of mean accuracy), so
pyDVL's values are divided by the number of test points before comparing.

    python3.11 -m venv /tmp/pydvl-venv && /tmp/pydvl-venv/bin/pip install pydvl==0.10.0 'numpy<2' scikit-learn
    python bench/valuation_knn.py [--quick] [--pydvl-python /tmp/pydvl-venv/bin/python]

Also (not with --quick) 1,000,000 training x 1,000 test points, quotepart alone (pyDVL
would take about half an hour), against the issue's absolute target: under 2 minutes
with peak memory under 4 GiB, measured in a child process (its peak resident set).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_ratio,
    log,
    machine_info,
    new_table,
    results_path,
    stdout,
    stopwatch,
    write_results,
)

from quotepart.valuation import knn_shapley

TARGET_SPEEDUP = 10.0

PYDVL_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier
    from pydvl.utils import Dataset, Utility
    from pydvl.value.shapley.knn import knn_shapley
    import pydvl

    data = np.load(sys.argv[1])
    k = int(sys.argv[2])
    dataset = Dataset(data["x_train"], data["y_train"], data["x_test"], data["y_test"])
    utility = Utility(KNeighborsClassifier(n_neighbors=k), dataset)
    start = time.perf_counter()
    result = knn_shapley(utility, progress=False)
    seconds = time.perf_counter() - start
    order = np.argsort(result.indices)
    np.save(sys.argv[3], np.asarray(result.values)[order])
    print(json.dumps({"seconds": seconds, "pydvl": pydvl.__version__, "numpy": np.__version__}))
    """
)


def run_case(
    folder: Path, pydvl_python: str, n_train: int, n_test: int, k: int, seed: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x_train, x_test = rng.normal(size=(n_train, 10)), rng.normal(size=(n_test, 10))
    y_train = (x_train[:, 0] + 0.5 * rng.normal(size=n_train) > 0).astype(np.int64)
    y_test = (x_test[:, 0] + 0.5 * rng.normal(size=n_test) > 0).astype(np.int64)
    data = folder / f"knn-{n_train}-{n_test}.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    log(f"{n_train:,} x {n_test:,}: quotepart")
    with stopwatch() as ours:
        values = knn_shapley(x_train, y_train, x_test, y_test, k=k)
    log(f"{n_train:,} x {n_test:,}: pyDVL (its own venv)")
    script = folder / "pydvl_knn.py"
    script.write_text(PYDVL_SCRIPT)
    out = folder / f"pydvl-{n_train}-{n_test}.npy"
    done = subprocess.run(
        [pydvl_python, str(script), str(data), str(k), str(out)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    rival = np.load(out) / n_test
    difference = float(np.max(np.abs(values - rival)))
    return {
        "n_train": n_train,
        "n_test": n_test,
        "k": k,
        "quotepart_seconds": ours[0],
        "pydvl_seconds": theirs["seconds"],
        "speedup": theirs["seconds"] / ours[0],
        "max_abs_difference": difference,
        "pydvl_version": theirs["pydvl"],
        "pydvl_numpy": theirs["numpy"],
    }


MILLION_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from quotepart.valuation import knn_shapley

    n, t, k, seed = (int(a) for a in sys.argv[1:5])
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    xt = rng.normal(size=(t, 10))
    yt = (xt[:, 0] > 0).astype(np.int64)
    start = time.perf_counter()
    values = knn_shapley(x, y, xt, yt, k=k)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "finite": bool(np.isfinite(values).all())}))
    """
)


def run_million(folder: Path, k: int, seed: int) -> dict[str, Any]:
    log("1,000,000 x 1,000: quotepart alone, in a child process")
    script = folder / "million.py"
    script.write_text(MILLION_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), "1000000", "1000", str(k), str(seed)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"n_train": 1_000_000, "n_test": 1_000, "k": k, **found}


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument(
        "--pydvl-python",
        default=os.environ.get("QUOTEPART_PYDVL_PYTHON", "/tmp/pydvl-venv/bin/python"),
        help="python of a venv holding pydvl==0.10.0 and numpy<2",
    )
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    cases = [(2_000, 200), (20_000, 20)] if args.quick else [(10_000, 1_000), (100_000, 100)]
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-knn-") as tmp:
        results = [
            run_case(Path(tmp), args.pydvl_python, n, t, args.k, args.seed) for n, t in cases
        ]
        million = None if args.quick else run_million(Path(tmp), args.k, args.seed)
    table = new_table(
        "KNN-Shapley, exact (Jia et al. 2019), same data and k",
        ["training x test", "quotepart s", "pyDVL 0.10 s", "speed-up", "max |Δ value|"],
        caption=f"target: speed-up ≥ {TARGET_SPEEDUP:.0f}x with values equal to 1e-9",
    )
    for r in results:
        table.add_row(
            f"{r['n_train']:,} x {r['n_test']:,}",
            f"{r['quotepart_seconds']:.2f}",
            f"{r['pydvl_seconds']:.2f}",
            fmt_ratio(r["speedup"]),
            f"{r['max_abs_difference']:.1e}",
        )
    stdout.print(table)
    met = all(r["speedup"] >= TARGET_SPEEDUP and r["max_abs_difference"] <= 1e-9 for r in results)
    if million is not None:
        million_met = million["seconds"] < 120 and million["peak_bytes"] < 4 * 2**30
        stdout.print(
            f"1,000,000 x 1,000: {million['seconds']:.1f} s, peak {million['peak_bytes'] / 2**30:.2f} GiB "
            f"(target < 120 s and < 4 GiB: {'met' if million_met else 'NOT met'})"
        )
        met = met and million_met
    log(f"target: {'met' if met else 'NOT met'}")
    write_results(
        results_path("valuation-knn", quick=args.quick, override=args.output),
        {
            "benchmark": "valuation-knn",
            "issue": "Contribution valuation: exact and sampled Shapley/Banzhaf — ahead of pyDVL",
            "machine": machine_info(),
            "parameters": {"k": args.k, "seed": args.seed, "features": 10, "quick": args.quick},
            "target": {"speedup_min": TARGET_SPEEDUP, "max_abs_difference": 1e-9, "met": met},
            "results": results,
            "million": million,
        },
    )


if __name__ == "__main__":
    main()
