"""shapiq's side of bench/valuation.py's fixed-budget part: run in shapiq's own venv.

    /tmp/shapiq-venv/bin/python bench/_valuation_shapiq.py < jobs.json > results.json

Reads a JSON list of jobs {"family", "n", "method", "budget", "seed"}; writes one JSON
line per job as it finishes: the estimate, the coalitions asked for and the distinct ones
(shapiq counts what it asks for; quotepart's and pyDVL's rows count distinct coalitions,
so both counts are kept), and seconds.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _valuation_games import build

METHODS = (
    "PermutationSamplingSV",
    "KernelSHAP",
    "LeverageSHAP",
    "RegressionMSR",
    "SPEX",
    "SVARM",
)


def run(job: dict[str, Any]) -> dict[str, Any]:
    import shapiq

    game = build(job["family"], job["n"])
    n = game.n
    empty = game(frozenset())
    seen: set[bytes] = set()
    calls = [0]

    def value(coalitions: np.ndarray) -> np.ndarray:
        rows = np.asarray(coalitions, dtype=bool)
        calls[0] += len(rows)
        out = np.empty(len(rows))
        for k, row in enumerate(rows):
            seen.add(np.packbits(row).tobytes())
            out[k] = game(frozenset(np.flatnonzero(row).tolist())) - empty
        return out

    method, seed, budget = job["method"], job["seed"], job["budget"]
    approximator: Any
    if method == "PermutationSamplingSV":
        approximator = shapiq.PermutationSamplingSV(n=n, random_state=seed)
    elif method == "KernelSHAP":
        approximator = shapiq.KernelSHAP(n=n, random_state=seed)
    elif method == "LeverageSHAP":
        approximator = shapiq.LeverageSHAP(n=n, random_state=seed)
    elif method == "RegressionMSR":
        approximator = shapiq.RegressionMSR(n=n, index="SV", random_state=seed)
    elif method == "SPEX":
        approximator = shapiq.SPEX(n=n, index="SV", max_order=1, random_state=seed)
    elif method == "SVARM":
        approximator = shapiq.SVARM(n=n, index="SV", random_state=seed)
    else:
        raise ValueError(method)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = approximator.approximate(budget=budget, game=value)
    seconds = time.perf_counter() - start
    values = np.array([float(result[(i,)]) for i in range(n)])
    return {
        **job,
        "values": values.tolist(),
        "calls": calls[0],
        "distinct": len(seen),
        "seconds": seconds,
    }


def main() -> None:
    jobs = json.load(sys.stdin)
    for job in jobs:
        try:
            found = run(job)
        except Exception as exc:  # one method failing on one game is a result too
            found = {**job, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
