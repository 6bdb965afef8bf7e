"""Regression-adjusted Shapley sampling (Witter et al. 2025), with a boosted-tree proxy.

"Regression-adjusted Monte Carlo estimators for Shapley values and probabilistic
values" (Witter, Musco, Musco et al. 2025; shapiq's RegressionMSR): draw coalitions,
fit a model f(S) ≈ v(S) to them, take f's Shapley values exactly, and estimate only
those of the residual v − f by importance-weighted Maximum Sample Reuse on the same
draws:

    φ_i = φ_i(f) + (r(N) − r(∅)) / n + E_S[ r(S) (1{i∈S} / (|S| q_|S|) − 1{i∉S} / ((n − |S|) q_|S|)) ]

with r = v − f and sizes s ∈ [1, n − 1] drawn with probability q_s ∝ 1 / √(s (n − s)),
uniformly among coalitions of that size, each with its complement (paired). The last
term is unbiased for any f; the better f fits, the smaller its variance.

The proxy is a least-squares linear model on the membership bits (its Shapley values:
the coefficients) plus scikit-learn's HistGradientBoostingRegressor on its residual: 100 boosting iterations up to 15,000
draws, growing with them to 300 at 45,000 (at 60,000 evaluations 100 left the proxy
underfitted: unanimity-60 0.0074 / 0.0084 / 0.0067 against 0.0047 / 0.0055 / 0.0043 with
300, seeds 0–2; airport-40 0.0012–0.0015 against 0.0011–0.0012; at 5,000, 300
overfitted a test game: relative L2 0.17 where 100 stayed under 0.15).
On 0/1 inputs each leaf of a tree is the game 1[A ⊆ S, B ∩ S = ∅] (A: features its
path requires, B: features it excludes), whose Shapley values are exact: a player of A
gets (a − 1)! b! / (a + b)!, one of B −a! (b − 1)! / (a + b)!. Summing over leaves gives
φ(f) with no sampling. Standard errors come from the spread of the per-pair terms.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable
from typing import Any, Self

import numpy as np

from quotepart.valuation.sampling import Monitor, Progress, _Sampler
from quotepart.valuation.utility import Utility


class RegressionShapley(_Sampler):
    _extra: tuple[np.ndarray, np.ndarray] | None = None
    """More coalitions (bits, values) for the proxy's fit only: AutoShapley's pilot."""

    def __init__(
        self,
        *,
        max_evaluations: int | None = None,
        target_stderr: float | None = None,
        batch_size: int = 64,
        max_iter: int | None = None,
        n_jobs: int = 1,
        random_state: int | None = None,
        progress: Progress | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.monitor = monitor

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        cached, rng = self._setup(utility, players)
        n = len(self.players_)
        if n < 4:
            from quotepart.valuation.exact import ExactShapley

            exact = ExactShapley(n_jobs=self.n_jobs).fit(cached, self.players_)
            self.values_, self.n_evaluations_ = exact.values_, cached.evaluations
            self.stderr_, self.converged_, self.target_stderr_ = exact.stderr_, True, 0.0
            return self
        full, empty, target, budget = self._anchor(cached)
        sizes = np.arange(1, n)
        weights = 1.0 / np.sqrt(sizes * (n - sizes))
        shares = weights / weights.sum()
        masks: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        values, stderr = np.zeros(n), np.full(n, np.inf)
        draws = 0
        estimated_at = 0
        while True:
            # a whole batch is always drawn (so a longer run with this seed replays a
            # shorter one's draws exactly), and only what the budget leaves is evaluated
            drawn = rng.choice(sizes, size=self.batch_size, p=shares)
            batch = np.zeros((self.batch_size, n), dtype=bool)
            for row, size in enumerate(drawn):
                batch[row, rng.choice(n, size=int(size), replace=False)] = True
            room = max((budget - cached.evaluations + 1) // 2, 1)
            batch = batch[:room]
            pair = np.concatenate([batch, ~batch])
            masks.append(pair)
            scores.append(cached.many(self._coalitions(pair), self.n_jobs))
            draws += len(pair)
            spent = cached.evaluations >= budget or draws >= 4 * budget
            # the proxy is refitted each time the draws quadruple (and at the end): the fits
            # cost about 4/3 of the last one in all, and the target can stop a run early
            if spent or draws >= 4 * max(estimated_at, 8 * n):
                values, stderr = self._estimate(masks, scores, full, empty, shares)
                estimated_at = draws
            self._report(cached, values, stderr, budget)
            if spent or self._done(cached, stderr, target, budget, draws):
                break
        self.values_ = values
        self.n_pairs_ = draws // 2
        self._finish(cached, stderr, target)
        return self

    def _proxy(self, x: np.ndarray, y: np.ndarray) -> Any:
        """The boosted trees fitted to membership bits `x` and values `y`; `max_iter` None:
        100 boosting iterations up to 15,000 rows, growing with them to 300 at 45,000."""
        iterations = self.max_iter
        if iterations is None:
            iterations = int(np.clip(round(100 * len(x) / 15_000), 100, 300))
        return _fit_proxy(iterations, self.seed_, x, y)

    def _extra_helps(
        self,
        x: np.ndarray,
        y: np.ndarray,
        extra: tuple[np.ndarray, np.ndarray],
        shares: np.ndarray,
    ) -> bool:
        """Whether the extra coalitions (drawn otherwise than q: AutoShapley's permutation
        prefixes) improve the proxy where it counts. Proxies fitted on the first half of
        the pairs, with and without them, are scored on the second half by the
        importance-weighted squared residual n r² / (q_s² s (n − s)) that the estimate's
        variance sums; the extra coalitions help nearly additive games and airport, and
        hurt sparse unanimity games at 15,000 evaluations (their sizes crowd the middle)."""
        n = x.shape[2]
        half = x.shape[1] // 2
        if half < 8:
            return True
        train_x = x[:, :half].reshape(-1, n).astype(np.float64)
        train_y = y[:, :half].ravel()
        test_x = x[:, half:].reshape(-1, n).astype(np.float64)
        test_y = y[:, half:].ravel()
        size = test_x.sum(axis=1).astype(int)
        weight = n / (shares[size - 1] ** 2 * size * (n - size))

        def score(proxy: Any) -> float:
            return float(np.mean(weight * (test_y - proxy.predict(test_x)) ** 2))

        alone = score(self._proxy(train_x, train_y))
        both = score(
            self._proxy(np.vstack([train_x, extra[0]]), np.concatenate([train_y, extra[1]]))
        )
        return both <= alone

    def _estimate(
        self,
        masks: list[np.ndarray],
        scores: list[np.ndarray],
        full: float,
        empty: float,
        shares: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([m.reshape(2, -1, m.shape[1]) for m in masks], axis=1)
        y = np.concatenate([v.reshape(2, -1) for v in scores], axis=1)
        n = x.shape[2]
        flat_x = x.reshape(-1, n).astype(np.float64)
        extra = self._extra
        if extra is not None and self._extra_helps(x, y, extra, shares):
            proxy = self._proxy(
                np.vstack([flat_x, extra[0]]), np.concatenate([y.ravel(), extra[1]])
            )
        else:
            proxy = self._proxy(flat_x, y.reshape(-1))
        self.proxy_ = proxy
        self.draws_ = (x, y)  # (2, pairs, n) membership bits and (2, pairs) values
        residual = y - proxy.predict(flat_x).reshape(y.shape)
        ends = proxy.predict(np.array([np.ones(n), np.zeros(n)]))
        base = proxy.shapley(n) + ((full - ends[0]) - (empty - ends[1])) / n
        size = x.sum(axis=2)  # (2, pairs)
        q = shares[size - 1]
        inside = residual / (size * q)
        outside = residual / ((n - size) * q)
        # per draw, per player: inside if a member else −outside; averaged over each pair
        terms = np.where(x, inside[..., None], -outside[..., None]).mean(axis=0)
        pairs = terms.shape[0]
        values = base + terms.mean(axis=0)
        stderr = terms.std(axis=0, ddof=1) / math.sqrt(pairs) if pairs > 1 else np.inf
        return values, np.broadcast_to(stderr, (n,)).astype(np.float64)


LINEAR_SHARE = 0.95
"""The share of the variance a linear fit must explain for the proxy to keep it."""


class _Proxy:
    """A linear model on the membership bits plus boosted trees on what it leaves, when the
    linear model explains at least LINEAR_SHARE of the variance (nearly additive games,
    whose sums of 50 terms trees fit badly); boosted trees alone otherwise (airport 40:
    0.0024 against 0.0073 with the linear stage, at 30,000 evaluations). The linear
    part's Shapley values are its coefficients, the trees' come leaf by leaf."""

    def __init__(self, max_iter: int, seed: int) -> None:
        self.max_iter, self.seed = max_iter, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Proxy:
        from sklearn.ensemble import HistGradientBoostingRegressor

        n = x.shape[1]
        design = np.hstack([x, np.ones((len(x), 1))])
        gram = design.T @ design + 1e-8 * len(x) * np.eye(n + 1)
        solved = np.linalg.solve(gram, design.T @ y)
        self.coef_, self.intercept_ = solved[:n], float(solved[n])
        explained = 1.0 - float(np.var(y - design @ solved)) / max(float(np.var(y)), 1e-300)
        if explained < LINEAR_SHARE:  # not nearly additive: the trees alone fit better
            self.coef_, self.intercept_ = np.zeros(n), 0.0
        self.trees_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter, early_stopping=False, random_state=self.seed % 2**32
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.trees_.fit(x, y - x @ self.coef_ - self.intercept_)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        predicted: np.ndarray = x @ self.coef_ + self.intercept_ + self.trees_.predict(x)
        return predicted

    def shapley(self, n: int) -> np.ndarray:
        values: np.ndarray = self.coef_ + proxy_shapley(self.trees_, n)
        return values


def _fit_proxy(max_iter: int, seed: int, x: np.ndarray, y: np.ndarray) -> _Proxy:
    return _Proxy(max_iter, seed).fit(x, y)


def proxy_shapley(model: Any, n: int) -> np.ndarray:
    """Exact Shapley values of S ↦ model(1_S) for a fitted HistGradientBoostingRegressor."""
    values = np.zeros(n)
    for (tree,) in model._predictors:
        nodes = tree.nodes
        stack: list[tuple[int, frozenset[int], frozenset[int]]] = [(0, frozenset(), frozenset())]
        while stack:
            index, required, excluded = stack.pop()
            node = nodes[index]
            if node["is_leaf"]:
                a, b = len(required), len(excluded)
                if a + b == 0:
                    continue
                total = math.comb(a + b, a)
                leaf = float(node["value"])
                for j in required:
                    values[j] += leaf / (a * total)
                for j in excluded:
                    values[j] -= leaf / (b * math.comb(a + b, b))
                continue
            feature = int(node["feature_idx"])
            threshold = float(node["num_threshold"])
            left, right = int(node["left"]), int(node["right"])
            # x ≤ threshold goes left; on 0/1 inputs a threshold in [0, 1) splits out | in
            if 0.0 <= threshold < 1.0:
                stack.append((left, required, excluded | {feature}))
                stack.append((right, required | {feature}, excluded))
            elif threshold < 0.0:
                stack.append((right, required, excluded))
            else:
                stack.append((left, required, excluded))
    return values


SURROGATE_MAX_PLAYERS = 14
"""`SurrogateShapley` keeps a table of all 2^n coalitions: 16,384 at most."""

SURROGATE_RELATIVE_ERROR = 0.04
"""With no target_stderr, `SurrogateShapley` stops once its estimated relative L2 error,
√Σ stderr² / ‖φ‖, is at most this. Those standard errors are the cross-fitted
estimate's (each fold's proxy fitted on half the middle coalitions); the values returned
use them all and come closer (10-cohort model game, 16 seeds: stopped at 320–384
evaluations of 1,024, relative L2 0.022–0.042 against exact, 0.031 median)."""


class SurrogateShapley(_Sampler):
    """Shapley values of a small game (4 ≤ n ≤ 14 players) from a fraction of its coalitions.

    Exact enumeration spends 2^n evaluations, yet in φ_i = Σ_S c_iS v(S) a coalition of
    size s weighs 1 / (n C(n−1, s)): the few coalitions of sizes ≤ 2 and ≥ n − 2 carry
    most of the weight, the many of middle size little each. This evaluates all of the
    former, then middle coalitions in a random order (each with its complement), and
    fills the rest of the table with the `_Proxy` model fitted to what was evaluated.

    The error of that fill-in is checked out of sample (cross-fitting): the evaluated
    middle coalitions are split in two folds; for each, a proxy fitted without that fold
    fills the coalitions not evaluated outside it, and the fold's residuals r = v − f
    correct the fill-in, scaled up size by size (an unbiased estimate of Σ c_iS r(S) over
    the unknown coalitions: the fold is a random sample of them). The two folds'
    estimates are averaged, and their finite-population sampling variances give the
    standard errors. The run stops when every standard error meets `target_stderr`, or,
    when none was given, when √Σ stderr² ≤ SURROGATE_RELATIVE_ERROR × ‖φ‖; or when every
    coalition is evaluated (then the values are exact).
    """

    def __init__(
        self,
        *,
        max_evaluations: int | None = None,
        target_stderr: float | None = None,
        batch_size: int = 16,
        max_iter: int = 100,
        n_jobs: int = 1,
        random_state: int | None = None,
        progress: Progress | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.monitor = monitor

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        from quotepart.errors import InputError

        cached, rng = self._setup(utility, players)
        n = len(self.players_)
        if not 4 <= n <= SURROGATE_MAX_PLAYERS:
            raise InputError(
                f"SurrogateShapley values 4 to {SURROGATE_MAX_PLAYERS} players, got {n}",
                hint="use RegressionShapley or StratifiedShapley for larger games",
            )
        self._anchor(cached)  # v(N), v(∅) first, as every sampler does
        budget = self.max_evaluations if self.max_evaluations is not None else 1 << n
        size_tab = 1 << n
        bits = (np.arange(size_tab)[:, None] >> np.arange(n)) & 1
        sizes = bits.sum(axis=1)
        self._coef = self._coefficients(n, bits, sizes)
        self._bits, self._sizes = bits.astype(np.float64), sizes
        values = np.full(size_tab, np.nan)
        extreme = np.flatnonzero((sizes <= 2) | (sizes >= n - 2))
        middle = np.flatnonzero((sizes > 2) & (sizes < n - 2))
        # the middle in a random order of pairs (S, N∖S): the half with bit n−1 unset
        # stands for each pair
        halves = middle[bits[middle, n - 1] == 0]
        order = rng.permutation(halves)
        queue = [int(m) for m in extreme]
        fold = np.full(size_tab, -1)
        for k, mask in enumerate(order):
            fold[mask] = fold[size_tab - 1 - mask] = k % 2
        pending = [m for mask in order for m in (int(mask), size_tab - 1 - int(mask))]
        estimate, stderr = np.zeros(n), np.full(n, np.inf)
        batch, converged, target = queue, False, float("inf")
        while True:
            room = max(budget - cached.evaluations, 0)
            new = [m for m in batch if np.isnan(values[m])][:room]
            if new:
                values[new] = cached.many(self._coalitions(bits[new].astype(bool)), self.n_jobs)
            known = np.isfinite(values)
            if known.all():
                estimate, stderr = self._coef @ values, np.zeros(n)
            elif np.isfinite(values[middle]).sum() >= 4 * len(np.unique(sizes[middle])) + 8:
                estimate, stderr = self._estimate(values, fold, middle)
            self._report(cached, estimate, stderr, budget)
            scale = float(np.linalg.norm(estimate))
            if self.target_stderr is not None:
                target = float(self.target_stderr)
                converged = bool(np.all(stderr <= target))
            else:  # a rule on the norm; its per-player equivalent is what is recorded
                target = SURROGATE_RELATIVE_ERROR * scale / math.sqrt(n)
                converged = float(np.linalg.norm(stderr)) <= SURROGATE_RELATIVE_ERROR * scale
                if converged:
                    target = max(target, float(np.max(stderr)))
            if converged or known.all() or not pending or cached.evaluations >= budget:
                break
            # batches grow with what is known (a tenth): the proxies are refitted O(log) times
            step = max(self.batch_size, int(0.1 * np.isfinite(values[middle]).sum()))
            batch, pending = pending[:step], pending[step:]
        self.values_ = estimate
        self.n_known_ = int(np.isfinite(values).sum())
        self._finish(cached, stderr, target)
        return self

    @staticmethod
    def _coefficients(n: int, bits: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """c (players × 2^n): φ = c v. The coefficient of v(T) in φ_i is w(|T| − 1) if
        i ∈ T, −w(|T|) if not, with w(s) = 1 / (n C(n − 1, s))."""
        weight = np.array([1.0 / (n * math.comb(n - 1, s)) for s in range(n)] + [0.0])
        below = np.concatenate([[0.0], weight[:-1]])
        coef: np.ndarray = np.where(bits.T == 1, below[sizes][None, :], -weight[sizes][None, :])
        return coef

    def _estimate(
        self, values: np.ndarray, fold: np.ndarray, middle: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        n = self._bits.shape[1]
        known = np.isfinite(values)
        estimates, variances = [], []
        for k in (0, 1):
            held = known & (fold == k)
            train = known & ~held
            proxy = _fit_proxy(self.max_iter, self.seed_ + k, self._bits[train], values[train])
            table = np.where(train, values, 0.0)
            unknown = ~train
            table[unknown] = proxy.predict(self._bits[unknown])
            estimate = self._coef @ table
            variance = np.zeros(n)
            residual = values[held] - table[held]
            held_at = np.flatnonzero(held)
            for s in np.unique(self._sizes[middle]):
                in_size = self._sizes[held_at] == s
                count = int(in_size.sum())
                total = int((unknown & (self._sizes == s)).sum())
                if total == 0:
                    continue
                if count < 2:
                    return np.zeros(n), np.full(n, np.inf)
                terms = self._coef[:, held_at[in_size]] * residual[in_size]
                estimate += total * terms.mean(axis=1)
                variance += total**2 * (1 - count / total) * terms.var(axis=1, ddof=1) / count
            estimates.append(estimate)
            variances.append(variance)
        # the values: every evaluated coalition as is, the proxy fitted on all of them for
        # the rest (more data than either fold's: its error is at most the folds')
        proxy = _fit_proxy(self.max_iter, self.seed_, self._bits[known], values[known])
        self.proxy_ = proxy
        table = np.where(known, values, 0.0)
        table[~known] = proxy.predict(self._bits[~known])
        self.crossfit_ = (estimates[0] + estimates[1]) / 2
        stderr = np.sqrt(np.maximum(variances[0] + variances[1], 0.0)) / 2
        return self._coef @ table, stderr
