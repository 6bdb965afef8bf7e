"""Exact Shapley and Banzhaf values by enumerating every coalition once (n ≤ ~20)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Self

import numpy as np

from quotepart.errors import InputError
from quotepart.valuation._estimator import Estimator
from quotepart.valuation.utility import (
    CachedUtility,
    Utility,
    as_cached,
    check_n_jobs,
    check_players,
)

MAX_EXACT_PLAYERS = 22


def enumerate_values(
    utility: CachedUtility,
    players: tuple[Hashable, ...],
    n_jobs: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """v over all 2^n coalitions indexed by bitmask (bit j = player j), and each mask's size."""
    n = len(players)
    if n > MAX_EXACT_PLAYERS:
        raise InputError(
            f"exact enumeration of {n} players needs 2^{n} utility evaluations",
            hint=f"use a sampling method for more than {MAX_EXACT_PLAYERS} players (method='auto')",
        )
    masks = np.arange(1 << n, dtype=np.int64)
    coalitions = [
        frozenset(players[j] for j in range(n) if mask >> j & 1) for mask in range(1 << n)
    ]
    total = len(coalitions)
    chunk = max(64, total // 200)  # progress every 0.5 %, in batches that still fill workers
    values = np.empty(total)
    for start in range(0, total, chunk):
        values[start : start + chunk] = utility.many(coalitions[start : start + chunk], n_jobs)
        if progress is not None:
            progress(min(start + chunk, total), total)
    sizes = np.zeros(1 << n, dtype=np.int64)
    for j in range(n):
        sizes += (masks >> j) & 1
    return values, sizes


def _marginals(values: np.ndarray, n: int, player: int) -> tuple[np.ndarray, np.ndarray]:
    masks = np.arange(1 << n, dtype=np.int64)
    without = masks[(masks >> player) & 1 == 0]
    return without, values[without | (1 << player)] - values[without]


class _Exact(Estimator):
    def __init__(
        self, *, n_jobs: int = 1, progress: Callable[[int, int], None] | None = None
    ) -> None:
        self.n_jobs = n_jobs
        self.progress = progress

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        check_n_jobs(self.n_jobs)
        self.players_ = check_players(players)
        cached = as_cached(utility)
        values, sizes = enumerate_values(cached, self.players_, self.n_jobs, self.progress)
        n = len(self.players_)
        weights = self._weights(n)
        self.values_ = np.array(
            [
                float(np.sum(weights[sizes[w]] * d))
                for w, d in (_marginals(values, n, i) for i in range(n))
            ]
        )
        self.stderr_ = np.zeros(n)
        self.n_evaluations_ = cached.evaluations
        self.converged_ = True
        self.seed_: int | None = None
        return self

    def _weights(self, n: int) -> np.ndarray:
        raise NotImplementedError


class ExactShapley(_Exact):
    """φ_i = Σ_{S ⊆ N∖{i}} |S|!(n−|S|−1)!/n! · (v(S∪{i}) − v(S))."""

    def _weights(self, n: int) -> np.ndarray:
        return np.array(
            [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
            + [0.0]
        )


class ExactBanzhaf(_Exact):
    """β_i = 2^−(n−1) Σ_{S ⊆ N∖{i}} (v(S∪{i}) − v(S))."""

    def _weights(self, n: int) -> np.ndarray:
        return np.full(n + 1, 2.0 ** -(n - 1))


def result_values(estimator: Any) -> dict[Hashable, float]:
    return {p: float(v) for p, v in zip(estimator.players_, estimator.values_, strict=True)}
