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

from quotepart.errors import InputError
from quotepart.valuation._estimator import Estimator
from quotepart.valuation.utility import (
    CachedUtility,
    Utility,
    as_cached,
    check_n_jobs,
    check_players,
)

Progress = Callable[[int, int], None]
Monitor = Callable[[int, np.ndarray, np.ndarray], None]
"""Called after every batch with (distinct evaluations, estimates, standard errors)."""


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


def _variances(
    means: np.ndarray, squares: np.ndarray | float, counts: np.ndarray | int
) -> np.ndarray:
    """Unbiased (n − 1) variances of samples kept as running sums, from their `means`, the
    sums of their `squares` and their `counts`. Not clipped: rounding can leave a tiny
    negative, and a count under two gives nan or inf, which each caller handles its way."""
    variances: np.ndarray = (squares / counts - means * means) * counts / (counts - 1)
    return variances


class _Sampler(Estimator):
    """Shared loop: draw a batch, update running sums, check the stopping rule."""

    max_evaluations: int | None
    target_stderr: float | None
    n_jobs: int
    random_state: int | None
    progress: Progress | None
    monitor: Monitor | None

    def _setup(
        self, utility: Utility, players: Iterable[Hashable]
    ) -> tuple[CachedUtility, np.random.Generator]:
        """Check the parameters, record the players and the seed, and return the cached
        utility and the generator (built here, in `fit`, so that refitting repeats)."""
        check_n_jobs(self.n_jobs)
        _check_budget(self.max_evaluations, self.target_stderr)
        self.players_ = check_players(players)
        self.seed_ = self.random_state if self.random_state is not None else secrets.randbits(63)
        return as_cached(utility), np.random.default_rng(self.seed_)

    def _anchor(self, cached: CachedUtility) -> tuple[float, float, float, int]:
        """v(N) and v(∅), evaluated in that order before any draw, and the stopping rule's
        standard error target (from their span) and evaluation budget."""
        full = cached(frozenset(self.players_))
        empty = cached(frozenset())
        return full, empty, self._target(full - empty), self._budget(len(self.players_))

    def _coalitions(self, masks: Iterable[np.ndarray]) -> list[frozenset[Hashable]]:
        """The coalition of each boolean mask over the players (True: member)."""
        players = self.players_
        return [frozenset(players[j] for j in np.flatnonzero(mask)) for mask in masks]

    def _budget(self, n: int) -> int:
        return self.max_evaluations if self.max_evaluations is not None else 2_000 * n

    def _target(self, span: float) -> float:
        """The requested standard error, or 5 % of the average |value|, |v(N) − v(∅)| / n,
        when none was asked: a fixed share of the span would be loose for thousands of
        records, whose values are each a tiny part of it."""
        if self.target_stderr is not None:
            return float(self.target_stderr)
        return max(0.05 * abs(span) / len(self.players_), 1e-12)

    def _report(
        self, cached: CachedUtility, values: np.ndarray, stderr: np.ndarray, budget: int
    ) -> None:
        """Tell the progress display and the monitor (convergence traces) about a batch."""
        if self.progress is not None:
            self.progress(min(cached.evaluations, budget), budget)
        if self.monitor is not None:
            self.monitor(cached.evaluations, values.copy(), stderr.copy())

    def _done(
        self, cached: CachedUtility, stderr: np.ndarray, target: float, budget: int, draws: int
    ) -> bool:
        """The one stopping rule: every standard error on target, or the budget spent.

        `draws` (coalitions or permutations drawn, cached or not) caps games whose few
        coalitions are all cached already, where new evaluations would never come.
        """
        on_target = bool(np.all(stderr <= target))  # inf (too few samples) is never on target
        return on_target or cached.evaluations >= budget or draws >= 4 * budget

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
        monitor: Monitor | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.antithetic = antithetic
        self.truncation = truncation
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.monitor = monitor

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        cached, rng = self._setup(utility, players)
        n = len(self.players_)
        full, _, target, budget = self._anchor(cached)
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
                stderr = np.sqrt(np.maximum(_variances(mean, squares, count), 0.0) / count)
            self._report(cached, mean, stderr, budget)
            if self._done(cached, stderr, target, budget, draws=count):
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
        monitor: Monitor | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.monitor = monitor

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        cached, rng = self._setup(utility, players)
        n = len(self.players_)
        _, _, target, budget = self._anchor(cached)
        sums = np.zeros((2, n))  # [out, in]
        squares = np.zeros((2, n))
        counts = np.zeros((2, n))
        stderr = np.full(n, np.inf)
        values = np.zeros(n)
        while True:
            members = rng.random((self.batch_size, n)) < 0.5
            scores = cached.many(self._coalitions(members), self.n_jobs)
            inside = members.astype(np.float64)
            for side, weight in ((1, inside), (0, 1.0 - inside)):
                sums[side] += weight.T @ scores
                squares[side] += weight.T @ (scores * scores)
                counts[side] += weight.sum(axis=0)
            if np.all(counts >= 2):
                means = sums / counts
                variances = np.maximum(_variances(means, squares, counts), 0.0)
                values = means[1] - means[0]
                stderr = np.sqrt(variances[1] / counts[1] + variances[0] / counts[0])
            self._report(cached, values, stderr, budget)
            if self._done(cached, stderr, target, budget, draws=int(counts[:, 0].sum())):
                break
        self.values_ = values
        self.n_samples_ = int(counts[:, 0].sum())
        self._finish(cached, stderr, target)
        return self


class StratifiedShapley(_Sampler):
    """Stratified SVARM (Kolpaczki et al., AAAI 2024): every evaluation serves every player.

    φ_i = 1/n Σ_ℓ (E[v(A) | i ∈ A, |A| = ℓ+1] − E[v(A) | i ∉ A, |A| = ℓ]). The strata of
    sizes 0, 1, n−1 and n are computed exactly (2n + 2 evaluations); for the others a
    coalition A is drawn with a size s ∈ [2, n−2] of probability ∝ 1/(s(n−s)) and
    uniformly among those of that size, and its value updates the "with" stratum s−1 of
    each member and the "without" stratum s of each non-member. A warm-up of random
    partitions gives every stratum samples before the random draws begin. With
    `allocation="neyman"` (the default) the size distribution then follows the strata's
    observed variances (see `_neyman`), mixed with the fixed one by `exploration`: on
    50-player games this needs 1.5× (airport), 1.6× (unanimity) and 6.5× (weighted
    voting) fewer evaluations than the fixed 1/(s(n−s)) for the same accuracy. The standard
    error of φ_i sums the strata's variances; a stratum with fewer than two samples
    counts as unknown, so such a result never claims convergence.
    """

    def __init__(
        self,
        *,
        max_evaluations: int | None = None,
        target_stderr: float | None = None,
        batch_size: int = 64,
        warm_up_rounds: int = 2,
        allocation: str = "neyman",
        exploration: float = 0.3,
        n_jobs: int = 1,
        random_state: int | None = None,
        progress: Progress | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.batch_size = batch_size
        self.warm_up_rounds = warm_up_rounds
        self.allocation = allocation
        self.exploration = exploration
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.monitor = monitor

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        cached, rng = self._setup(utility, players)
        players_ = self.players_
        n = len(players_)
        if n < 4:  # no sampled strata: the exact strata are all there is
            from quotepart.valuation.exact import ExactShapley

            exact = ExactShapley(n_jobs=self.n_jobs).fit(cached, players_)
            self.values_, self.n_evaluations_ = exact.values_, cached.evaluations
            self.stderr_, self.converged_, self.target_stderr_ = exact.stderr_, True, 0.0
            return self
        everyone = frozenset(players_)
        full, empty, target, budget = self._anchor(cached)
        singles = cached.many([frozenset([p]) for p in players_], self.n_jobs)
        leave_outs = cached.many([everyone - {p} for p in players_], self.n_jobs)
        # sums[side, i, l]: side 1 = "with i, size l+1", side 0 = "without i, size l"
        self._sums = np.zeros((2, n, n))
        self._squares = np.zeros((2, n, n))
        self._counts = np.zeros((2, n, n))
        sizes = np.arange(2, n - 1)
        weights = 1.0 / (sizes * (n - sizes))
        size_probabilities = weights / weights.sum()
        # The warm-up costs Σ_s ⌊n/s⌋ ≈ n·ln n evaluations a round: skipped when that would
        # take more than half the budget (thousands of players, small budgets); strata left
        # empty then count as unknown, never as converged.
        round_cost = int(sum(n // int(size) for size in sizes))
        rounds = (
            self.warm_up_rounds
            if 2 * n + 2 + self.warm_up_rounds * round_cost <= budget // 2
            else 0
        )
        for _ in range(rounds):
            for size in sizes:
                order = rng.permutation(n)
                blocks = [order[start : start + size] for start in range(0, n - size + 1, size)]
                self._update(cached, [self._mask(n, block) for block in blocks])
        stderr = np.full(n, np.inf)
        values = np.zeros(n)
        draws = 0
        while True:
            if self.allocation == "neyman":
                size_probabilities = self._neyman(sizes, weights / weights.sum())
            drawn = rng.choice(sizes, size=self.batch_size, p=size_probabilities)
            masks = [self._mask(n, rng.choice(n, size=int(s), replace=False)) for s in drawn]
            self._update(cached, masks)
            values, stderr = self._estimate(full, empty, singles, leave_outs)
            self._report(cached, values, stderr, budget)
            draws += self.batch_size
            if self._done(cached, stderr, target, budget, draws):
                break
        self.values_ = values
        self._finish(cached, stderr, target)
        return self

    def _neyman(self, sizes: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Size probabilities ∝ √A_s, which minimise Σ_i Var(φ_i) for the variances seen so
        far: A_s = Σ_i σ²(with i, size s)/s + Σ_i σ²(without i, size s)/(n − s), since a
        coalition of size s feeds the first kind of stratum of its s members and the second
        of the n − s others. Mixed with the fixed prior so no size starves on a variance
        estimate that happens to be low."""
        n = len(self.players_)
        variances = self._strata()[1]
        known = np.isfinite(variances)
        variances = np.where(known, np.maximum(variances, 0.0), np.nan)
        fallback = np.nanmax(variances) if known.any() else 1.0
        variances = np.where(known, variances, fallback)
        with_i = variances[1][:, sizes - 1].sum(axis=0) / sizes
        without_i = variances[0][:, sizes].sum(axis=0) / (n - sizes)
        root = np.sqrt(with_i + without_i)
        if not root.sum() > 0:
            return prior
        mixed: np.ndarray = (1 - self.exploration) * root / root.sum() + self.exploration * prior
        return mixed

    def _strata(self) -> tuple[np.ndarray, np.ndarray]:
        """Each stratum's mean and unbiased variance: nan or inf where it holds fewer than
        two samples, left for the caller to mask."""
        counts = self._counts
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self._sums / counts
            return means, _variances(means, self._squares, counts)

    @staticmethod
    def _mask(n: int, members: np.ndarray) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[members] = True
        return mask

    def _update(self, cached: CachedUtility, masks: list[np.ndarray]) -> None:
        scores = cached.many(self._coalitions(masks), self.n_jobs)
        n = len(self.players_)
        for mask, score in zip(masks, scores, strict=True):
            size = int(mask.sum())
            inside = np.flatnonzero(mask)
            outside = np.flatnonzero(~mask)
            self._sums[1, inside, size - 1] += score
            self._squares[1, inside, size - 1] += score * score
            self._counts[1, inside, size - 1] += 1
            if size < n:
                self._sums[0, outside, size] += score
                self._squares[0, outside, size] += score * score
                self._counts[0, outside, size] += 1

    def _estimate(
        self, full: float, empty: float, singles: np.ndarray, leave_outs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.players_)
        means, variances = self._strata()
        with np.errstate(invalid="ignore", divide="ignore"):
            error = np.maximum(variances, 0.0) / self._counts
        # Exact strata: with i at sizes 1 and n; without i at sizes 0, 1 and n-1; with i at n-1.
        means[1, :, 0], error[1, :, 0] = singles, 0.0
        means[1, :, n - 1], error[1, :, n - 1] = full, 0.0
        means[0, :, 0], error[0, :, 0] = empty, 0.0
        means[0, :, 1], error[0, :, 1] = (singles.sum() - singles) / (n - 1), 0.0
        means[0, :, n - 1], error[0, :, n - 1] = leave_outs, 0.0
        means[1, :, n - 2], error[1, :, n - 2] = (leave_outs.sum() - leave_outs) / (n - 1), 0.0
        error = np.where(np.isfinite(error), error, np.inf)  # fewer than two samples: unknown
        # φ_i is the average over sizes of the strata differences. Where a size has no
        # sample on one side yet (tiny budgets, many players), average the sizes that do:
        # biased towards them, but never the wild numbers that a zero stand-in would give.
        # The standard error of such a player stays infinite.
        differences = means[1] - means[0]
        known = np.isfinite(differences)
        counted = known.sum(axis=1)
        values = np.where(known, differences, 0.0).sum(axis=1) / np.maximum(counted, 1)
        stderr = np.sqrt(error.sum(axis=(0, 2))) / n
        return values, stderr


class KernelBanzhaf(_Sampler):
    """Kernel Banzhaf (Liu, Witter & Musco 2024): Banzhaf values as regression coefficients.

    Under the uniform distribution on coalitions the membership signs z_j = ±1 are
    independent with E[z zᵀ] = I, so the population least-squares coefficients of
    d(S) = v(S) − v(N ∖ S) on z are exactly the Banzhaf values: E[d z_j] = β_j. Each
    coalition is drawn with its complement (paired sampling), which cancels the constant
    and every even-order interaction; ordinary least squares then removes the other
    players' linear terms from each estimate, the variance MSR carries. Only ZᵀZ, Zᵀd
    and dᵀd are kept (memory n², not one row per sample). Standard errors: s²·(ZᵀZ)⁻¹,
    which equals the heteroskedasticity-robust form to first order because z_j² = 1.
    Until there are 2n pairs the plain moment estimate mean(d z_j) is used (unbiased,
    with its own standard error), so small budgets still give honest error bars.
    """

    def __init__(
        self,
        *,
        max_evaluations: int | None = None,
        target_stderr: float | None = None,
        batch_size: int = 32,
        n_jobs: int = 1,
        random_state: int | None = None,
        progress: Progress | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.monitor = monitor

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        cached, rng = self._setup(utility, players)
        n = len(self.players_)
        everyone = frozenset(self.players_)
        _, _, target, budget = self._anchor(cached)
        gram = np.zeros((n, n))  # Σ z zᵀ
        moments = np.zeros(n)  # Σ d z
        squares = 0.0  # Σ d², also Σ (d z_j)² for every j since z_j² = 1
        pairs = 0
        solve_every = max(1, n // 256)  # an n³ solve per batch would dominate for large n
        values, stderr = np.zeros(n), np.full(n, np.inf)
        batches = 0
        while True:
            signs = np.where(rng.random((self.batch_size, n)) < 0.5, 1.0, -1.0)
            inside = self._coalitions(signs > 0)
            scores = cached.many([*inside, *(everyone - s for s in inside)], self.n_jobs)
            differences = scores[: self.batch_size] - scores[self.batch_size :]
            gram += signs.T @ signs
            moments += signs.T @ differences
            squares += float(differences @ differences)
            pairs += self.batch_size
            batches += 1
            if pairs >= 2 * n and batches % solve_every == 0:
                values, stderr = self._least_squares(gram, moments, squares, pairs)
            elif pairs < 2 * n and pairs >= 2:
                values = moments / pairs
                stderr = np.sqrt(np.maximum(_variances(values, squares, pairs), 0.0) / pairs)
            self._report(cached, values, stderr, budget)
            if self._done(cached, stderr, target, budget, draws=2 * pairs):
                break
        if pairs >= 2 * n:
            values, stderr = self._least_squares(gram, moments, squares, pairs)
        self.values_ = values
        self.n_pairs_ = pairs
        self._finish(cached, stderr, target)
        return self

    @staticmethod
    def _least_squares(
        gram: np.ndarray, moments: np.ndarray, squares: float, pairs: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(moments)
        try:
            factor = np.linalg.cholesky(gram)
        except np.linalg.LinAlgError:  # collinear signs (tiny games drawn over and over)
            return moments / pairs, np.full(n, np.inf)
        inverse_factor = np.linalg.solve(factor, np.eye(n))  # L⁻¹; (ZᵀZ)⁻¹ = L⁻ᵀ L⁻¹
        coefficients = inverse_factor.T @ (inverse_factor @ moments)
        residual = max(squares - float(coefficients @ moments), 0.0)
        noise = residual / max(pairs - n, 1)
        diagonal = (inverse_factor * inverse_factor).sum(axis=0)
        return coefficients, np.sqrt(noise * diagonal)
