"""Contribution valuation: exact and sampled Shapley and Banzhaf values, and KNN-Shapley.

A pure library (numpy and scikit-learn only; it imports neither the log nor the store):

```python
from quotepart.valuation import shapley, banzhaf, knn_shapley, ModelUtility
utility = ModelUtility(LogisticRegression(), X, y, X_test, y_test, groups=cohorts)
result = shapley(utility, utility.players, seed=0)
result.values, result.stderr, result.evaluations, result.converged
```
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterable
from typing import Any, Literal

from quotepart.errors import InputError
from quotepart.valuation.auto import AutoShapley, choice_record
from quotepart.valuation.exact import MAX_EXACT_PLAYERS, ExactBanzhaf, ExactShapley
from quotepart.valuation.knn import SetValues, knn_shapley, knn_shapley_sets
from quotepart.valuation.models import ModelUtility
from quotepart.valuation.oob import data_oob
from quotepart.valuation.records import RecordSetValues, first_holders, value_record_sets
from quotepart.valuation.regression import RegressionShapley
from quotepart.valuation.result import ValuationResult
from quotepart.valuation.sampling import (
    KernelBanzhaf,
    MSRBanzhaf,
    NotConvergedWarning,
    PermutationShapley,
    StratifiedShapley,
)
from quotepart.valuation.utility import (
    CachedUtility,
    Utility,
    UtilityError,
    as_cached,
    check_players,
)

SAMPLERS: dict[str, Any] = {
    "stratified": StratifiedShapley,
    "permutation": PermutationShapley,
    "regression": RegressionShapley,
    "kernel": KernelBanzhaf,
    "msr": MSRBanzhaf,
}

AUTO_EXACT_EVALUATIONS = 1 << 14
"""`method="auto"` enumerates when 2^n coalitions fit in this (or in max_evaluations)."""


class _ProgressBar:
    """A tqdm bar of distinct utility evaluations, fed by the estimators' progress calls.

    `enabled`: True always shows it, False never, None (the default) shows it on a
    terminal once a run has lasted two seconds: short runs and logs stay quiet.
    """

    def __init__(self, label: str, enabled: bool | None) -> None:
        self.label, self.enabled = label, enabled
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.enabled is False:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                desc=self.label,
                unit=" evaluations",
                unit_scale=True,
                disable=None if self.enabled is None else False,
                delay=2.0 if self.enabled is None else 0.0,
                leave=True,
            )
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _exact_affordable(n: int, max_evaluations: int | None) -> bool:
    return n <= MAX_EXACT_PLAYERS and (1 << n) <= (max_evaluations or AUTO_EXACT_EVALUATIONS)


def _value(
    kind: Literal["shapley", "banzhaf"],
    utility: Utility,
    players: Iterable[Hashable],
    method: str,
    max_evaluations: int | None,
    target_stderr: float | None,
    seed: int | None,
    n_jobs: int,
    progress: bool | None,
    executor: str | None,
    truncation: float = 0.0,
) -> ValuationResult:
    found = check_players(players)
    cached = as_cached(utility, executor)
    # sampled "auto": Shapley picks its sampler on the game (AutoShapley: a permutation
    # pilot predicts both candidates' errors); Banzhaf's kernel sampler won every game of
    # bench/valuation.py (quotepart's candidates and pyDVL's, same games)
    samplers = {"shapley": "pilot", "banzhaf": "kernel"}
    others = {"shapley": {"stratified", "permutation", "regression"}, "banzhaf": {"msr"}}[kind]
    allowed = {"auto", "exact"} | others | ({samplers[kind]} - {"pilot"})
    if method not in allowed:
        raise InputError(
            f"unknown {kind} method {method!r}", hint=f"use one of {', '.join(sorted(allowed))}"
        )
    requested = method
    if method == "auto":
        # Shapley: enumerate up to 2^8 coalitions unless given a budget that affords more;
        # 9 to 14 players run AutoShapley's surrogate (about a third of the coalitions)
        from quotepart.valuation.auto import AUTO_ENUMERATE

        bound = max_evaluations or (AUTO_ENUMERATE if kind == "shapley" else None)
        method = "exact" if _exact_affordable(len(found), bound) else samplers[kind]
    if truncation and (method != "permutation" or not 0 < truncation < 1):
        raise InputError(
            f"truncation={truncation!r} with method={requested!r}",
            hint="truncation (e.g. 0.01: stop a permutation once within 1 % of v(N)) applies "
            "to method='permutation' only, and lies between 0 and 1",
        )
    show = _ProgressBar(f"{kind} ({'auto' if method == 'pilot' else method})", progress)
    estimator: Any
    if method == "pilot":
        estimator = AutoShapley(
            max_evaluations=max_evaluations,
            target_stderr=target_stderr,
            n_jobs=n_jobs,
            random_state=seed,
            progress=show,
        )
    elif method == "exact":
        estimator = (ExactShapley if kind == "shapley" else ExactBanzhaf)(
            n_jobs=n_jobs, progress=show
        )
    else:
        options = {"truncation": truncation} if method == "permutation" else {}
        estimator = SAMPLERS[method](
            max_evaluations=max_evaluations,
            target_stderr=target_stderr,
            n_jobs=n_jobs,
            random_state=seed,
            progress=show,
            **options,
        )
    # Warnings wait until the bar is closed (else they print onto its line), and then
    # point at the caller's line, not at this module.
    with warnings.catch_warnings(record=True) as raised:
        try:
            estimator.fit(cached, found)
        finally:
            show.close()
    for caught in raised:
        warnings.warn(caught.message, caught.category, stacklevel=3)
    parameters = estimator.get_params()
    if method == "pilot":  # the valuation entry says what ran, and why
        method = f"auto:{estimator.choice_}"
        parameters.update(choice_record(estimator))
    return ValuationResult(
        values={p: float(v) for p, v in zip(found, estimator.values_, strict=True)},
        stderr={p: float(v) for p, v in zip(found, estimator.stderr_, strict=True)},
        evaluations=cached.evaluations,
        converged=estimator.converged_,
        method=f"{kind}/{method}",
        parameters=parameters,
        seed=estimator.seed_,
    )


def shapley(
    utility: Utility,
    players: Iterable[Hashable],
    method: str = "auto",
    max_evaluations: int | None = None,
    target_stderr: float | None = None,
    seed: int | None = 0,
    n_jobs: int = 1,
    progress: bool | None = None,
    executor: str | None = None,
    truncation: float = 0.0,
) -> ValuationResult:
    """Shapley values of `players` to `utility` (a callable on frozensets of players).

    `method`: "exact" (enumeration, each coalition once), "stratified" (stratified
    SVARM: every evaluation serves every player), "permutation" (antithetic Monte Carlo),
    "regression" (a boosted-tree proxy whose Shapley values are exact, plus importance-
    weighted sampling of the residual: Witter et al. 2025), or "auto" (exact when 2^n is affordable, else the sampler a short permutation pilot
    predicts to be the more accurate on this game: `AutoShapley`; the result's method
    then reads e.g. "shapley/auto:regression" or "shapley/auto:permutation" and its
    parameters hold the pilot's predictions). Sampled results carry
    standard errors and stop on `target_stderr` or `max_evaluations`. Evaluations run on
    `executor`: "joblib" (`n_jobs` processes) or "ray" (a running Ray cluster, or one
    started on 127.0.0.1 with `n_jobs` CPUs); the values never depend on either. `progress`: True shows
    a progress bar, False never, None on a terminal once the run passes two seconds.
    `truncation` (permutation only; Ghorbani & Zou's TMC, e.g. 0.01) stops scanning a
    permutation once its prefix is within that share of v(N): for thousands of records
    on a small budget it is the better sampler (bench/valuation.py, noisy labels).
    """
    return _value(
        "shapley",
        utility,
        players,
        method,
        max_evaluations,
        target_stderr,
        seed,
        n_jobs,
        progress,
        executor,
        truncation,
    )


def banzhaf(
    utility: Utility,
    players: Iterable[Hashable],
    method: str = "auto",
    max_evaluations: int | None = None,
    target_stderr: float | None = None,
    seed: int | None = 0,
    n_jobs: int = 1,
    progress: bool | None = None,
    executor: str | None = None,
) -> ValuationResult:
    """Banzhaf values: "exact", "kernel" (paired least squares, Kernel Banzhaf), "msr"
    (Maximum Sample Reuse) or "auto" (exact when 2^n is affordable, else kernel)."""
    return _value(
        "banzhaf",
        utility,
        players,
        method,
        max_evaluations,
        target_stderr,
        seed,
        n_jobs,
        progress,
        executor,
    )


def leave_one_out(
    utility: Utility, players: Iterable[Hashable], n_jobs: int = 1, executor: str | None = None
) -> ValuationResult:
    """v(N) − v(N ∖ {i}) for each player: n + 1 evaluations, exact, no error bars.

    Cheap, but blind to redundancy: two copies of the same data each score about zero.
    """
    found = check_players(players)
    cached = as_cached(utility, executor)
    everyone = frozenset(found)
    scores = cached.many([everyone, *(everyone - {player} for player in found)], n_jobs)
    return ValuationResult(
        values={p: float(scores[0] - scores[i + 1]) for i, p in enumerate(found)},
        stderr=dict.fromkeys(found, 0.0),
        evaluations=cached.evaluations,
        converged=True,
        method="leave_one_out",
        parameters={"n_jobs": n_jobs},
    )


__all__ = [
    "AutoShapley",
    "CachedUtility",
    "ExactBanzhaf",
    "ExactShapley",
    "KernelBanzhaf",
    "MSRBanzhaf",
    "ModelUtility",
    "NotConvergedWarning",
    "PermutationShapley",
    "RecordSetValues",
    "RegressionShapley",
    "SetValues",
    "StratifiedShapley",
    "Utility",
    "UtilityError",
    "ValuationResult",
    "banzhaf",
    "data_oob",
    "first_holders",
    "knn_shapley",
    "knn_shapley_sets",
    "leave_one_out",
    "shapley",
    "value_record_sets",
]
