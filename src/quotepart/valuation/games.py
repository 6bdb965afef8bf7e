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
        n, total = self.n, sum(self.weights)
        values = np.zeros(n)
        for player in range(n):
            # ways[s][w]: coalitions of the others with size s and weight w (exact integers)
            ways = [[0] * (total + 1) for _ in range(n)]
            ways[0][0] = 1
            for other in range(n):
                if other == player:
                    continue
                weight = self.weights[other]
                for size in range(n - 2, -1, -1):
                    row, up = ways[size], ways[size + 1]
                    for w in range(total - weight, -1, -1):
                        if row[w]:
                            up[w + weight] += row[w]
            low = max(self.quota - self.weights[player], 0)
            exact = sum(
                math.factorial(s) * math.factorial(n - s - 1) * sum(ways[s][low : self.quota])
                for s in range(n)
            )
            values[player] = exact / math.factorial(n)
        return values
