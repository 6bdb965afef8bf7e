"""`method="auto"`: a pilot predicts each candidate sampler's error on the game; the best runs.

No one sampler wins every game (bench/valuation.py, fixed budgets): antithetic
permutations win on nearly additive games (an additive game's marginals do not vary at
all), stratified SVARM with Neyman allocation on threshold games (weighted voting), and
regression-adjusted sampling with a boosted-tree proxy (`RegressionShapley`, Witter et
al. 2025) on games a tree ensemble fits well (airport, sparse unanimity games).

Games of 4 to 14 players (unless the budget is too small for it) run `SurrogateShapley`
with no pilot: the coalitions that weigh most in the Shapley sum are evaluated, a proxy
fills in the rest, and a cross-fitted error estimate stops it (10-cohort model game: 324
of 1,024 coalitions, relative L2 ≤ 4 %). `shapley(..., method="auto")` enumerates only up
to 8 players when given no budget.

On larger games `AutoShapley` first draws a few antithetic permutation pairs
(`pilot_share` of the budget up to 15,000 evaluations, growing as √budget beyond) on the
shared cache. Their standard errors predict the permutation sampler's
error at the full budget, and their prefixes (uniform draws of every coalition size)
give the variance of v at each size, from which `_stratified_error` predicts
stratified SVARM's error under its Neyman allocation. A second pilot of the same share
runs `RegressionShapley`, whose own standard errors predict its error (scaled as
m^-1.5: its proxy improves with more draws). Where that improvement rate, read from a
small pilot, decides the choice (the best rival's prediction lies between regression's
with no improvement and with the fastest), the regression pilot runs on by half its
size and the geometric mean of its two predictions stands. The candidate with the least predicted
error gets the budget and is rerun with the seed its pilot used, which replays that
pilot from the cache (those evaluations are reused, not repeated). The other pilots are
the price of the choice (about 5–10 % of the budget up to 15,000, 2.5–5 % at 60,000);
when regression wins, the permutation pilot's coalitions also train its proxy if they
improve it out of sample (`RegressionShapley._extra_helps`). `pilot_` holds the predictions
and `choice_` what ran; `quotepart.valuation.shapley` writes both into the result.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Self

import numpy as np

from quotepart.errors import InputError
from quotepart.valuation.regression import (
    SURROGATE_MAX_PLAYERS,
    SURROGATE_RELATIVE_ERROR,
    RegressionShapley,
    SurrogateShapley,
)
from quotepart.valuation.sampling import (
    Monitor,
    NotConvergedWarning,
    PermutationShapley,
    Progress,
    StratifiedShapley,
    _Sampler,
)
from quotepart.valuation.utility import CachedUtility, Utility

CANDIDATES = ("stratified", "permutation", "regression")
SMALL = "surrogate"
"""What runs on small games (4 to SURROGATE_MAX_PLAYERS players), with no pilot:
`SurrogateShapley`, the evaluated coalitions plus a proxy for the rest."""
AUTO_ENUMERATE = 1 << 8
"""`method="auto"` enumerates a game of up to 8 players (2^n ≤ 256 coalitions) when
given no budget; from 9 to SURROGATE_MAX_PLAYERS it runs `SurrogateShapley`, which
reaches a relative L2 error of a few per cent in about a third of the 2^n coalitions
(10-cohort model game: 336 of 1,024). `method="exact"` enumerates any game of up to
22 players."""
MAX_REGRESSION_CELLS = 50_000_000
"""Regression keeps every draw's membership bits (budget × players): beyond this many,
it is not a candidate (thousands of records; stratified or permutation run there)."""


class _Ledger(CachedUtility):
    """A view of a shared cache that counts the coalitions one estimator asked for.

    Values come from (and go to) the shared cache, so nothing is evaluated twice.
    `evaluations` is the shared count (an estimator's budget is the valuation's) and
    `own` the coalitions this estimator asked for (what it would have cost alone).
    """

    def __init__(self, shared: CachedUtility) -> None:
        super().__init__(shared.utility, shared.executor)
        self.shared = shared

    @property
    def evaluations(self) -> int:
        return self.shared.evaluations

    @property
    def own(self) -> int:
        return len(self.cache)

    def __call__(self, coalition: frozenset[Any]) -> float:
        value = self.cache.get(coalition)
        if value is None:
            value = self.cache[coalition] = self.shared(coalition)
        return value

    def many(self, coalitions: Sequence[frozenset[Any]], n_jobs: int = 1) -> np.ndarray:
        missing = [c for c in dict.fromkeys(coalitions) if c not in self.cache]
        if missing:
            found = self.shared.many(missing, n_jobs)
            self.cache.update(zip(missing, (float(v) for v in found), strict=True))
        return np.fromiter((self.cache[c] for c in coalitions), np.float64, len(coalitions))


class AutoShapley(_Sampler):
    """A pilot of every candidate, then the budget to the best (see the module docstring).

    `pilot_shares`: the share of the budget each candidate's pilot may use, by name
    (stratified gets more: its standard errors need every size stratum sampled twice).
    `candidates`: a subset of "stratified" and "permutation".
    """

    def __init__(
        self,
        *,
        max_evaluations: int | None = None,
        target_stderr: float | None = None,
        candidates: Sequence[str] = CANDIDATES,
        pilot_share: float = 0.05,
        n_jobs: int = 1,
        random_state: int | None = None,
        progress: Progress | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.max_evaluations = max_evaluations
        self.target_stderr = target_stderr
        self.candidates = candidates
        self.pilot_share = pilot_share
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.monitor = monitor

    def fit(self, utility: Utility, players: Iterable[Hashable]) -> Self:
        unknown = sorted(set(self.candidates) - set(CANDIDATES))
        if unknown or not self.candidates:
            raise InputError(
                f"unknown candidate samplers {unknown or list(self.candidates)!r}",
                hint=f"choose among {', '.join(CANDIDATES)}",
            )
        if not 0 < self.pilot_share < 0.5:
            raise InputError(
                f"pilot_share={self.pilot_share!r}", hint="a share of the budget, below 0.5"
            )
        cached, _ = self._setup(utility, players)
        n = len(self.players_)
        if self._small(n):
            small = SurrogateShapley(
                max_evaluations=self.max_evaluations,
                target_stderr=self.target_stderr,
                n_jobs=self.n_jobs,
                random_state=self.seed_,
                progress=self.progress,
                monitor=self.monitor,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotConvergedWarning)
                small.fit(_Ledger(cached), self.players_)
            self.values_, self.choice_, self.pilot_ = small.values_, SMALL, {}
            self._finish(cached, small.stderr_, small.target_stderr_)
            return self
        _, _, target, budget = self._anchor(cached)
        candidates = [c for c in CANDIDATES if c in self.candidates]
        if n < 4:  # stratified enumerates such games; nothing to choose
            candidates = ["stratified"]
        if budget * n > MAX_REGRESSION_CELLS and len(candidates) > 1:
            candidates = [c for c in candidates if c != "regression"]
        figures: dict[str, float] = {}
        choice = candidates[0]
        done: PermutationShapley | StratifiedShapley | RegressionShapley | None = None
        if len(candidates) > 1:
            pilot_size = _pilot_size(self.pilot_share, budget)
            pairs = max(3, round(pilot_size / (2 * max(n - 1, 1))))
            view = _Ledger(cached)
            pilot = PermutationShapley(
                max_evaluations=cached.evaluations + 1,  # stopped by the count of pairs
                target_stderr=target,
                batch_size=pairs,
                n_jobs=self.n_jobs,
                random_state=self.seed_,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotConvergedWarning)
                pilot.fit(view, self.players_)
            figures["pilot_evaluations"] = float(view.own)
            figures["permutation"] = float(np.sum(pilot.stderr_**2)) * view.own / budget
            figures["stratified"] = _stratified_error(view, self.players_, budget)
            prefixes = dict(view.cache)  # the permutation pilot's coalitions
            if pilot.converged_:
                done, choice = pilot, "permutation"
            elif "regression" in candidates:
                view = _Ledger(cached)
                trial = self._candidate(
                    "regression",
                    cached.evaluations + int(pilot_size),
                    target,
                    budget,
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotConvergedWarning)
                    trial.fit(view, self.players_)
                figures["pilot_evaluations"] += view.own
                assert isinstance(trial, RegressionShapley)
                figures["regression"] = _regression_error(trial, prefixes, self.players_, budget)
                rivals = [figures[c] for c in candidates if c != "regression"]
                if rivals and _undecided(trial, prefixes, self.players_, budget, min(rivals)):
                    # the improvement rate decides, and half the pilot's pairs cannot tell
                    # it: the regression pilot runs on by half its size (its draws are
                    # reused if it wins) and predicts again; the two predictions' geometric
                    # mean decides (see `_undecided`)
                    own = view.own
                    first = figures["regression"]
                    trial = self._candidate(
                        "regression",
                        cached.evaluations + int(PILOT_EXTENSION * pilot_size),
                        target,
                        budget,
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", NotConvergedWarning)
                        trial.fit(view, self.players_)
                    figures["pilot_evaluations"] += view.own - own
                    figures["pilot_extended"] = 1.0
                    assert isinstance(trial, RegressionShapley)
                    again = _regression_error(trial, prefixes, self.players_, budget)
                    figures["regression"] = math.sqrt(first * again)
            if done is None:
                choice = min(candidates, key=lambda c: figures[c])
        if done is None:
            done = self._candidate(choice, budget, target, budget)
            if isinstance(done, RegressionShapley) and figures:
                # the permutation pilot's coalitions train the proxy too (not the residual
                # term, whose draws must follow q) where a held-out half of its own draws
                # says they help: they do on airport and additive games, not on unanimity
                done._extra = _as_bits(prefixes, self.players_)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotConvergedWarning)
                done.fit(_Ledger(cached), self.players_)
        self.values_ = done.values_
        self.choice_ = choice
        self.pilot_ = figures
        self._finish(cached, done.stderr_, target)
        return self

    def _small(self, n: int) -> bool:
        """Whether `SurrogateShapley` runs: 4 to SURROGATE_MAX_PLAYERS players, "regression"
        among the candidates, and a budget (if any) of at least twice the coalitions of
        sizes ≤ 2 and ≥ n − 2, which it evaluates first."""
        if not 4 <= n <= SURROGATE_MAX_PLAYERS or "regression" not in self.candidates:
            return False
        extremes = 2 * (1 + n + n * (n - 1) // 2)
        return self.max_evaluations is None or self.max_evaluations >= 2 * extremes

    def _candidate(
        self,
        name: str,
        evaluations: int,
        target: float,
        budget: int,
    ) -> PermutationShapley | StratifiedShapley | RegressionShapley:
        """The candidate as it runs for the whole budget, only stopped at `evaluations`: the
        same seed and the same warm-up, so its full run replays its pilot."""
        common: dict[str, Any] = {
            "max_evaluations": evaluations,
            "target_stderr": target,
            "n_jobs": self.n_jobs,
            "random_state": self.seed_,
            "progress": self.progress,
            "monitor": self.monitor,
        }
        if name == "permutation":  # one pair a batch: it stops within a pair of the budget
            return PermutationShapley(batch_size=1, **common)
        if name == "regression":
            return RegressionShapley(**common)
        n = len(self.players_)
        round_cost = sum(n // s for s in range(2, n - 1))
        warm_up = 2 if 2 * n + 2 + 2 * round_cost <= budget // 2 else 0
        return StratifiedShapley(warm_up_rounds=warm_up, **common)


PILOT_FULL_BUDGET = 15_000
"""Up to this budget each pilot gets `pilot_share` of it; beyond, its size grows as the
square root of the budget (60,000: half the share), since a pilot's predictions need
some draws, not a fixed share of them."""


PILOT_EXTENSION = 0.5
"""When the regression pilot's prediction is undecided (`_undecided`), it runs on by this
share of its size. Doubling it (1.0) decided as well, but where stratified won after
all (weighted voting, 5,000 evaluations) the extra pilot cost it 5–10 % of its error."""


def _pilot_size(share: float, budget: int) -> float:
    if budget <= PILOT_FULL_BUDGET:
        return share * budget
    return float(share * PILOT_FULL_BUDGET * math.sqrt(budget / PILOT_FULL_BUDGET))


def _as_bits(
    found: dict[frozenset[Any], float], players: Sequence[Hashable]
) -> tuple[np.ndarray, np.ndarray]:
    """Membership bits (coalitions × players) and values of cached coalitions."""
    index = {p: j for j, p in enumerate(players)}
    bits = np.zeros((len(found), len(players)))
    for row, coalition in enumerate(found):
        bits[row, [index[p] for p in coalition]] = 1.0
    return bits, np.fromiter(found.values(), np.float64, len(found))


def _stratified_error(view: _Ledger, players: Sequence[Hashable], budget: int) -> float:
    """The squared error (Σ_i) StratifiedShapley would reach on `budget` evaluations,
    predicted from the coalitions a permutation pilot evaluated: its prefixes are uniform
    draws of every size s, from which σ²_s, the variance of v over coalitions of size s.
    SVARM's strata of player i (with i at size s, without i at size s) have about that
    variance; a share q_s of m draws at size s gives Σ_i Var φ_i ≈ Σ_s σ²_s n /
    (m q_s s (n − s)), with q the Neyman sizes ∝ √(σ²_s n / (s (n − s))) mixed 70/30 with
    the fixed prior ∝ 1 / (s (n − s)), as StratifiedShapley allocates them."""
    n = len(players)
    if n < 4:
        return 0.0
    by_size: dict[int, list[float]] = {}
    for coalition, value in view.cache.items():
        by_size.setdefault(len(coalition), []).append(value)
    sizes = np.arange(2, n - 1)
    variances = np.array(
        [
            np.var(by_size[s], ddof=1) if len(by_size.get(s, [])) > 1 else np.nan
            for s in range(2, n - 1)
        ]
    )
    known = np.isfinite(variances)
    if not known.any():
        return float("inf")
    variances = np.where(known, variances, np.nanmean(variances))
    spread = variances * n / (sizes * (n - sizes))
    prior = 1.0 / (sizes * (n - sizes))
    prior /= prior.sum()
    root = np.sqrt(spread)
    neyman = root / root.sum() if root.sum() > 0 else prior
    shares = 0.7 * neyman + 0.3 * prior
    draws = max(budget - 2 * n - 2, 1)
    return float(np.sum(spread / shares) / draws)


def _undecided(
    trial: RegressionShapley,
    prefixes: dict[frozenset[Any], float],
    players: Sequence[Hashable],
    budget: int,
    rival: float,
) -> bool:
    """Whether the proxy's improvement rate decides between regression and its best
    rival: the rival's predicted error lies between regression's with no improvement
    (β = 0) and with the fastest (β = 1). The rate is read from a split of a small pilot
    (about 130 pairs at 5,000 evaluations), and is noise there: on a sparse unanimity
    game and on weighted voting alike it came out anywhere in [0, 1] across seeds, and
    regression's true error differed from stratified's by 3× either way. The longer
    pilot's prediction is noisy too (the proxies' test errors swing with a pair more or
    less), so the decision takes the geometric mean of both predictions: on those games
    at 5,000 evaluations it sent every unanimity seed to regression (0.044–0.051 where
    stratified reaches 0.10–0.13) and 4 of 5 weighted-voting seeds to stratified."""
    slow = _regression_error(trial, prefixes, players, budget, rate=0.0)
    fast = _regression_error(trial, prefixes, players, budget, rate=1.0)
    return fast < rival < slow


def _regression_error(
    trial: RegressionShapley,
    prefixes: dict[frozenset[Any], float],
    players: Sequence[Hashable],
    budget: int,
    rate: float | None = None,
) -> float:
    """The squared error (Σ_i) RegressionShapley would reach on `budget` evaluations, from
    its pilot's proxy scored out of sample on the permutation pilot's coalitions (drawn
    independently of the proxy's: in-sample residuals of boosted trees are far too small
    on threshold games). With e²_s the proxy's mean squared error at size s and q_s its
    size distribution, the importance-weighted residual terms give Σ_i Var φ_i ≈
    n Σ_s e²_s / (m q_s s (n − s)), the form of `_stratified_error` with e²_s for σ²_s.
    The proxy fitted on the whole budget's draws fits better: e² is scaled by the
    improvement seen from half the pilot's pairs to all of them, extrapolated (or, given
    `rate`, by (pilot draws / budget)^rate)."""
    n = len(players)
    if getattr(trial, "proxy_", None) is None:
        return float("inf")
    index = {p: j for j, p in enumerate(players)}
    found = [(c, v) for c, v in prefixes.items() if 2 <= len(c) <= n - 2]
    if len(found) < 2:
        return float("inf")
    bits = np.zeros((len(found), n))
    for row, (coalition, _) in enumerate(found):
        bits[row, [index[p] for p in coalition]] = 1.0
    values = np.array([v for _, v in found])
    errors = (values - trial.proxy_.predict(bits)) ** 2
    # how fast the proxy improves: refitted on half the pilot's pairs, scored alike;
    # e² ∝ m^-β with β within [0, 1], carried on to the whole budget
    x, y = trial.draws_
    half = x.shape[1] // 2
    improvement = 1.0
    if rate is not None:  # the rate given, not estimated
        improvement = (2 * x.shape[1] / budget) ** rate
    elif half >= 8:
        proxy = trial._proxy(x[:, :half].reshape(-1, n).astype(np.float64), y[:, :half].ravel())
        early = float(np.mean((values - proxy.predict(bits)) ** 2))
        late = float(np.mean(errors))
        if early > 0 and late > 0:
            beta = float(np.clip(np.log(early / late) / np.log(x.shape[1] / half), 0.0, 1.0))
            improvement = (2 * x.shape[1] / budget) ** beta
    sizes = bits.sum(axis=1).astype(int)
    known = np.arange(2, n - 1)
    by_size = np.array([errors[sizes == s].mean() if np.any(sizes == s) else np.nan for s in known])
    by_size = np.where(np.isfinite(by_size), by_size, np.nanmean(by_size))
    shares = 1.0 / np.sqrt(np.arange(1, n) * (n - np.arange(1, n)))
    shares /= shares.sum()
    q = shares[known - 1]
    draws = max(budget - 2, 1)
    return float(n * np.sum(by_size / (q * known * (n - known))) / draws) * improvement


def choice_record(estimator: AutoShapley) -> dict[str, Any]:
    """What auto chose and why, for the valuation entry's parameters."""
    if estimator.choice_ == SMALL:
        return {
            "choice": SMALL,
            "stopping": "target_stderr per player"
            if estimator.target_stderr is not None
            else f"cross-fitted relative L2 error ≤ {SURROGATE_RELATIVE_ERROR}",
            "pilot_evaluations": 0,
        }
    return {
        "choice": estimator.choice_,
        "predicted_squared_error": {k: v for k, v in estimator.pilot_.items() if k in CANDIDATES},
        "pilot_evaluations": int(estimator.pilot_.get("pilot_evaluations", 0)),
        "pilot_extended": bool(estimator.pilot_.get("pilot_extended", 0)),
    }
