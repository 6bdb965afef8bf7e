"""Cooperative games with known Shapley values: the answers valuation tests check against.

Each game is a picklable utility (a callable on frozensets of player indices 0..n-1)
with `shapley_values()` computed in closed form or by exact counting, never by the
estimators under test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class UnanimitySum:
    """v(S) = Σ_T c_T · [T ⊆ S]. Shapley: each member of T gets c_T / |T|; Banzhaf: c_T / 2^(|T|−1)."""

    def __init__(self, n: int, carriers: Sequence[tuple[Sequence[int], float]]) -> None:
        self.n = n
        self.carriers = [(frozenset(members), float(weight)) for members, weight in carriers]

    def __call__(self, coalition: frozenset[Any]) -> float:
        return sum(weight for members, weight in self.carriers if members <= coalition)

    def shapley_values(self) -> np.ndarray:
        values = np.zeros(self.n)
        for members, weight in self.carriers:
            for player in members:
                values[player] += weight / len(members)
        return values

    def banzhaf_values(self) -> np.ndarray:
        values = np.zeros(self.n)
        for members, weight in self.carriers:
            for player in members:
                values[player] += weight / 2 ** (len(members) - 1)
        return values


class AirportGame:
    """v(S) = max_{i∈S} c_i (the runway S needs). Shapley (Littlechild & Owen 1973): with
    costs sorted ascending, φ_(i) = Σ_{j≤i} (c_(j) − c_(j−1)) / (n − j + 1)."""

    def __init__(self, costs: Sequence[float]) -> None:
        self.costs = np.asarray(costs, dtype=np.float64)
        self.n = len(self.costs)

    def __call__(self, coalition: frozenset[Any]) -> float:
        return float(max((self.costs[i] for i in coalition), default=0.0))

    def shapley_values(self) -> np.ndarray:
        order = np.argsort(self.costs, kind="stable")
        sorted_costs = self.costs[order]
        steps = np.diff(np.concatenate([[0.0], sorted_costs])) / (self.n - np.arange(self.n))
        values = np.empty(self.n)
        values[order] = np.cumsum(steps)
        return values


class GloveGame:
    """v(S) = min(left gloves in S, right gloves in S); with as many left as right
    holders, symmetry and efficiency give everyone 1/2."""

    def __init__(self, pairs: int) -> None:
        self.n = 2 * pairs
        self.left = frozenset(range(pairs))

    def __call__(self, coalition: frozenset[Any]) -> float:
        left = len(coalition & self.left)
        return float(min(left, len(coalition) - left))

    def shapley_values(self) -> np.ndarray:
        return np.full(self.n, 0.5)


class WeightedVotingGame:
    """v(S) = 1 when the weights in S reach the quota. Shapley by exact counting: player i
    is pivotal for the coalitions S ∌ i of size s with quota − w_i ≤ w(S) < quota."""

    def __init__(self, weights: Sequence[int], quota: int) -> None:
        self.weights = [int(w) for w in weights]
        self.quota = int(quota)
        self.n = len(self.weights)

    def __call__(self, coalition: frozenset[Any]) -> float:
        return 1.0 if sum(self.weights[i] for i in coalition) >= self.quota else 0.0

    def shapley_values(self) -> np.ndarray:
        """Counting by dynamic programming over (size, weight < quota), once per distinct
        weight (equal weights are symmetric players). Counts are float64: C(n, s) stays far
        below its range for n up to about 1,000, at 1e-16 relative precision."""
        n, quota = self.n, self.quota
        # s!(n−s−1)!/n! = 1 / (n · C(n−1, s)): the chance that i follows exactly a given S
        chance = np.array([1.0 / (n * math.comb(n - 1, s)) for s in range(n)])
        weights_of: dict[int, float] = {}
        for weight in set(self.weights):
            others = list(self.weights)
            others.remove(weight)
            ways = np.zeros((n, quota))  # ways[s, w]: coalitions of the others, size s, weight w
            ways[0, 0] = 1.0
            for other in others:
                if other < quota:
                    ways[1:, other:] += ways[:-1, : quota - other].copy()
            low = max(quota - weight, 0)
            pivotal = ways[:, low:quota].sum(axis=1)
            weights_of[weight] = float((chance * pivotal).sum())
        return np.array([weights_of[w] for w in self.weights])
