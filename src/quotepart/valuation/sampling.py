"""Sampled Shapley and Banzhaf values with standard errors and a stopping rule.

* `PermutationShapley`: Monte Carlo over permutations (Castro et al. 2009), with
  antithetic pairs (a permutation and its reverse, averaged: the marginals of early and
  late positions are negatively correlated, which cuts the variance) and optional
  truncation (Ghorbani & Zou 2019: stop scanning a permutation once the prefix is within
  `truncation` of v(N), counting the rest as zero).
* `MSRBanzhaf`: Maximum Sample Reuse (Wang & Jia 2023): every sampled coalition serves
  every player, β_i = mean v(S ∋ i) − mean v(S ∌ i).

Both stop when every player's standard error is at most `target_stderr`, or when the
budget of distinct utility evaluations is spent; then `converged_` is False and a
`NotConvergedWarning` says so. The draws depend only on the seed, never on `n_jobs`.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Hashable, Iterable
from typing import Self

import numpy as np
from sklearn.base import BaseEstimator

from quotepart.errors import InputError
from quotepart.valuation.utility import CachedUtility, Utility, check_n_jobs, check_players

Progress = Callable[[int, int], None]


class NotConvergedWarning(UserWarning):
    """The budget ran out before every standard error reached the target."""


def _check_budget(max_evaluations: int | None, target_stderr: float | None) -> None:
    if max_evaluations is not None and max_evaluations < 2:
        raise InputError(
            f"max_evaluations={max_evaluations} cannot value anything",
            hint="allow at least a few evaluations per player",
        )
    if target_stderr is not None and not target_stderr > 0:
        raise InputError(
            f"target_stderr must be positive, got {target_stderr}", hint="e.g. target_stderr=0.001"
        )


class _Sampler(BaseEstimator):  # type: ignore[misc]
    """Shared loop: draw a batch, update running sums, check the stopping rule."""

    def _setup(self, utility: Utility, players: Iterable[Hashable]) -> CachedUtility:
        check_n_jobs(self.n_jobs)
        _check_budget(self.max_evaluations, self.target_stderr)
        self.players_ = check_players(players)
        self.seed_ = self.random_state if self.random_state is not None else secrets.randbits(63)
        return utility if isinstance(utility, CachedUtility) else CachedUtility(utility)

    def _budget(self, n: int) -> int:
        return self.max_evaluations if self.max_evaluations is not None else 2_000 * n

    def _target(self, span: float) -> float:
        """The requested standard error, or 0.5 % of |v(N) − v(∅)| when none was asked."""
        return (
            self.target_stderr if self.target_stderr is not None else max(0.005 * abs(span), 1e-12)
        )

    def _finish(self, cached: CachedUtility, stderr: np.ndarray, target: float) -> None:
        self.stderr_ = stderr
        self.n_evaluations_ = cached.evaluations
        self.converged_ = bool(np.all(stderr <= target))
        self.target_stderr_ = target
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} stopped after {cached.evaluations} evaluations with a "
                f"largest standard error of {float(np.max(stderr)):.3g} (target {target:.3g}); "
                "raise max_evaluations or accept wider error bars",
                NotConvergedWarning,
                stacklevel=3,
            )


class PermutationShapley(_Sampler):
    def __init__(
        self,
        *,
        max_evaluations: int | None = None,
        target_stderr: float | None = None,
        antithetic: bool = True,
        truncation: float = 0.0,
        batch_size: int = 8,
        n_jobs: int = 1,
        random_state: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.antithetic = antithetic
        self.truncation = truncation
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        cached = self._setup(utility, players)
        players_ = self.players_
        n = len(players_)
        rng = np.random.default_rng(self.seed_)
        full = cached(frozenset(players_))
        empty = cached(frozenset())
        target, budget = self._target(full - empty), self._budget(n)
        total = np.zeros(n)
        squares = np.zeros(n)
        count = 0
        stderr = np.full(n, np.inf)
        while True:
            for _ in range(self.batch_size):
                order = rng.permutation(n)
                sample = self._marginals(cached, order, full)
                if self.antithetic:
                    sample = (sample + self._marginals(cached, order[::-1], full)) / 2
                total += sample
                squares += sample * sample
                count += 1
            mean = total / count
            if count >= 2:
                variance = np.maximum(squares / count - mean * mean, 0.0) * count / (count - 1)
                stderr = np.sqrt(variance / count)
            if self.progress is not None:
                self.progress(min(cached.evaluations, budget), budget)
            spent = cached.evaluations >= budget or count >= budget  # a cached game stops too
            if (count >= 2 and np.all(stderr <= target)) or spent:
                break
        self.values_ = mean
        self.n_permutations_ = count * (2 if self.antithetic else 1)
        self._finish(cached, stderr, target)
        return self

    def _marginals(self, cached: CachedUtility, order: np.ndarray, full: float) -> np.ndarray:
        players = self.players_
        marginals = np.zeros(len(order))
        prefixes = [frozenset(players[j] for j in order[:k]) for k in range(len(order) + 1)]
        if self.truncation > 0:
            previous = cached(prefixes[0])
            for k, player in enumerate(order):
                if abs(full - previous) <= self.truncation * abs(full):
                    break  # the rest of this permutation adds (almost) nothing
                current = cached(prefixes[k + 1])
                marginals[player] = current - previous
                previous = current
            return marginals
        values = cached.many(prefixes, self.n_jobs)
        marginals[order] = np.diff(values)
        return marginals


class MSRBanzhaf(_Sampler):
    def __init__(
        self,
        *,
        max_evaluations: int | None = None,
        target_stderr: float | None = None,
        batch_size: int = 64,
        n_jobs: int = 1,
        random_state: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        cached = self._setup(utility, players)
        players_ = self.players_
        n = len(players_)
        rng = np.random.default_rng(self.seed_)
        span = cached(frozenset(players_)) - cached(frozenset())
        target, budget = self._target(span), self._budget(n)
        sums = np.zeros((2, n))  # [out, in]
        squares = np.zeros((2, n))
        counts = np.zeros((2, n))
        stderr = np.full(n, np.inf)
        values = np.zeros(n)
        while True:
            members = rng.random((self.batch_size, n)) < 0.5
            coalitions = [frozenset(players_[j] for j in np.flatnonzero(row)) for row in members]
            scores = cached.many(coalitions, self.n_jobs)
            inside = members.astype(np.float64)
            for side, weight in ((1, inside), (0, 1.0 - inside)):
                sums[side] += weight.T @ scores
                squares[side] += weight.T @ (scores * scores)
                counts[side] += weight.sum(axis=0)
            if np.all(counts >= 2):
                means = sums / counts
                variances = (
                    np.maximum(squares / counts - means * means, 0.0) * counts / (counts - 1)
                )
                values = means[1] - means[0]
                stderr = np.sqrt(variances[1] / counts[1] + variances[0] / counts[0])
            if self.progress is not None:
                self.progress(min(cached.evaluations, budget), budget)
            drawn = int(counts[:, 0].sum())
            spent = cached.evaluations >= budget or drawn >= 4 * budget  # a cached game stops too
            if (np.all(counts >= 2) and np.all(stderr <= target)) or spent:
                break
        self.values_ = values
        self.n_samples_ = int(counts[:, 0].sum())
        self._finish(cached, stderr, target)
        return self
