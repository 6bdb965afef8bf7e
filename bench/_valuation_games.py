"""The closed-form games of bench/valuation.py's fixed-budget part, built from a spec.

Imported by both interpreters of that benchmark (pyDVL's Python 3.11 venv and shapiq's
3.12 venv, each with quotepart installed), so both value the very same game: a spec is
a family name and a size, and the game is drawn from a seed fixed here. These games and
seeds were not used while developing `method="auto"` (tests/valuation/test_auto.py draws
its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quotepart.valuation.games import AirportGame, UnanimitySum, WeightedVotingGame

FAMILIES = {
    "unanimity": 60,  # sparse, high-order: 12 unanimity terms of 3 to 7 players
    "airport": 40,
    "weighted voting": 50,
    "additive + noise": 50,  # additive, plus 100 small terms of 2 to 4 players
}
SEED = 2025


def build(family: str, n: int) -> Any:
    """The game of `family` on n players: a callable on frozensets with shapley_values()."""
    rng = np.random.default_rng([SEED, n, list(FAMILIES).index(family)])
    if family == "unanimity":
        carriers = [
            (tuple(int(j) for j in rng.choice(n, int(rng.integers(3, 8)), replace=False)), w)
            for w in rng.uniform(0.5, 2.0, n // 5)
        ]
        return UnanimitySum(n, carriers)
    if family == "airport":
        return AirportGame(rng.integers(1, 100, size=n))
    if family == "weighted voting":
        return WeightedVotingGame(list(rng.integers(1, 10, size=n)), int(2.4 * n))
    if family == "additive + noise":
        terms: list[tuple[tuple[int, ...], float]] = [
            ((i,), float(a)) for i, a in enumerate(rng.uniform(0.0, 1.0, n))
        ]
        terms += [
            (tuple(int(j) for j in rng.choice(n, int(rng.integers(2, 5)), replace=False)), w)
            for w in rng.normal(0.0, 0.05, 2 * n)
        ]
        return UnanimitySum(n, terms)
    raise ValueError(family)
