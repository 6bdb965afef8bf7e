"""Sample efficiency of the Shapley samplers on closed-form games where enumeration is impossible.

Issue "Contribution valuation", estimators: "benchmark the candidates and keep the one
that wins". For each game with known Shapley values (50 players by default: airport,
weighted voting, a sum of unanimity games) and each sampler, the budget of distinct
utility evaluations is doubled until the relative L2 error is at most 5 %; the table
reports the median over seeds of the first budget that got there. The winner is what
`shapley(method="auto")` uses beyond exact enumeration.

Competitor in the same run: not yet pyDVL (its samplers run in a numpy<2 environment; the
KNN comparison in bench/valuation_knn.py shows how), only our own candidates.

    python bench/valuation_samplers.py [--quick] [--players 50]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    log,
    machine_info,
    new_table,
    results_path,
    stdout,
    write_results,
)

from quotepart.valuation import NotConvergedWarning, PermutationShapley, StratifiedShapley
from quotepart.valuation.games import AirportGame, UnanimitySum, WeightedVotingGame

TARGET_RELATIVE_L2 = 0.05
SAMPLERS = {"permutation (antithetic)": PermutationShapley, "stratified SVARM": StratifiedShapley}


def games(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    return {
        "airport": AirportGame(rng.integers(1, 100, size=n)),
        "weighted voting": WeightedVotingGame(list(rng.integers(1, 10, size=n)), int(2.4 * n)),
        "unanimity sum": UnanimitySum(
            n, [(tuple(range(i, i + 5)), 1.0 + i % 3) for i in range(0, n - 4, 5)]
        ),
    }


def budget_needed(
    sampler: Any, game: Any, exact: np.ndarray, seed: int, budgets: Sequence[int]
) -> int | None:
    for budget in budgets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotConvergedWarning)
            fitted = sampler(max_evaluations=budget, target_stderr=1e-12, random_state=seed).fit(
                game, range(game.n)
            )
        if np.linalg.norm(fitted.values_ - exact) / np.linalg.norm(exact) <= TARGET_RELATIVE_L2:
            return int(fitted.n_evaluations_)
    return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--players", type=int, default=50)
    parser.add_argument("--seeds", type=int, help="seeds per cell (5; quick 2)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    seeds = args.seeds or (2 if args.quick else 5)
    budgets = [500 * 2**i for i in range(8 if args.quick else 10)]
    results: dict[str, dict[str, Any]] = {}
    for game_name, game in games(args.players).items():
        exact = game.shapley_values()
        results[game_name] = {}
        for sampler_name, sampler in SAMPLERS.items():
            log(f"{game_name}: {sampler_name}")
            needed = [budget_needed(sampler, game, exact, seed, budgets) for seed in range(seeds)]
            reached = [x for x in needed if x is not None]
            median = float(np.median(reached)) if len(reached) == len(needed) else None
            results[game_name][sampler_name] = {"per_seed": needed, "median": median}
    table = new_table(
        f"Evaluations to reach relative L2 ≤ {TARGET_RELATIVE_L2:.0%} ({args.players} players, median of {seeds} seeds)",
        ["game", *SAMPLERS, "stratified / permutation"],
        caption=f"budgets doubled from {budgets[0]:,} to {budgets[-1]:,}; '—' = not reached",
    )
    for game_name, row in results.items():
        cells = [row[s]["median"] for s in SAMPLERS]
        ratio = cells[1] / cells[0] if all(c is not None for c in cells) else None
        table.add_row(
            game_name,
            *("—" if c is None else f"{c:,.0f}" for c in cells),
            "—" if ratio is None else f"{ratio:.2f}",
        )
    stdout.print(table)
    write_results(
        results_path("valuation-samplers", quick=args.quick, override=args.output),
        {
            "benchmark": "valuation-samplers",
            "issue": "Contribution valuation: exact and sampled Shapley/Banzhaf — ahead of pyDVL",
            "machine": machine_info(),
            "parameters": {
                "players": args.players,
                "seeds": seeds,
                "budgets": budgets,
                "target_relative_l2": TARGET_RELATIVE_L2,
            },
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
