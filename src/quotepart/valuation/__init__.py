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

import sys
import time
from collections.abc import Hashable, Iterable
from typing import Any, Literal

from quotepart.errors import InputError
from quotepart.valuation.exact import MAX_EXACT_PLAYERS, ExactBanzhaf, ExactShapley
from quotepart.valuation.knn import knn_shapley
from quotepart.valuation.models import ModelUtility
from quotepart.valuation.oob import data_oob
from quotepart.valuation.result import ValuationResult
from quotepart.valuation.sampling import (
    KernelBanzhaf,
    MSRBanzhaf,
    NotConvergedWarning,
    PermutationShapley,
    Progress,
    StratifiedShapley,
)
from quotepart.valuation.utility import CachedUtility, Utility, UtilityError, check_players

AUTO_EXACT_EVALUATIONS = 1 << 14
"""`method="auto"` enumerates when 2^n coalitions fit in this (or in max_evaluations)."""


def _progress_printer(label: str) -> Progress:
    """A one-line progress display on stderr, redrawn at most twice a second."""
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:
            last[0] = now
            sys.stderr.write(f"\r{label}: {done:,}/{total:,} evaluations")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return show


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
    progress: bool,
) -> ValuationResult:
    found = check_players(players)
    cached = utility if isinstance(utility, CachedUtility) else CachedUtility(utility)
    samplers = {
        "shapley": "stratified",
        "banzhaf": "kernel",
    }  # the winners of bench/valuation_samplers.py and bench/valuation.py
    others = {"shapley": {"permutation"}, "banzhaf": {"msr"}}[kind]
    allowed = {"auto", "exact", samplers[kind]} | others
    if method not in allowed:
        raise InputError(
            f"unknown {kind} method {method!r}", hint=f"use one of {', '.join(sorted(allowed))}"
        )
    if method == "auto":
        method = "exact" if _exact_affordable(len(found), max_evaluations) else samplers[kind]
    show = _progress_printer(f"{kind} ({method})") if progress else None
    estimator: Any
    if method == "exact":
        estimator = (ExactShapley if kind == "shapley" else ExactBanzhaf)(n_jobs=n_jobs)
    elif method == "stratified":
        estimator = StratifiedShapley(
            max_evaluations=max_evaluations,
            target_stderr=target_stderr,
            n_jobs=n_jobs,
            random_state=seed,
            progress=show,
        )
    elif method == "permutation":
        estimator = PermutationShapley(
            max_evaluations=max_evaluations,
            target_stderr=target_stderr,
            n_jobs=n_jobs,
            random_state=seed,
            progress=show,
        )
    else:
        estimator = (KernelBanzhaf if method == "kernel" else MSRBanzhaf)(
            max_evaluations=max_evaluations,
            target_stderr=target_stderr,
            n_jobs=n_jobs,
            random_state=seed,
            progress=show,
        )
    estimator.fit(cached, found)
    return ValuationResult(
        values={p: float(v) for p, v in zip(found, estimator.values_, strict=True)},
        stderr={p: float(v) for p, v in zip(found, estimator.stderr_, strict=True)},
        evaluations=cached.evaluations,
        converged=estimator.converged_,
        method=f"{kind}/{method}",
        parameters=estimator.get_params(),
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
    progress: bool = False,
) -> ValuationResult:
    """Shapley values of `players` to `utility` (a callable on frozensets of players).

    `method`: "exact" (enumeration, each coalition once), "stratified" (stratified
    SVARM: every evaluation serves every player), "permutation" (antithetic Monte Carlo),
    or "auto" (exact when 2^n is affordable, else stratified). Sampled results carry
    standard errors and stop on `target_stderr` or `max_evaluations`.
    """
    return _value(
        "shapley", utility, players, method, max_evaluations, target_stderr, seed, n_jobs, progress
    )


def banzhaf(
    utility: Utility,
    players: Iterable[Hashable],
    method: str = "auto",
    max_evaluations: int | None = None,
    target_stderr: float | None = None,
    seed: int | None = 0,
    n_jobs: int = 1,
    progress: bool = False,
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
    )


def leave_one_out(
    utility: Utility, players: Iterable[Hashable], n_jobs: int = 1
) -> ValuationResult:
    """v(N) − v(N ∖ {i}) for each player: n + 1 evaluations, exact, no error bars.

    Cheap, but blind to redundancy: two copies of the same data each score about zero.
    """
    found = check_players(players)
    cached = utility if isinstance(utility, CachedUtility) else CachedUtility(utility)
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
    "CachedUtility",
    "ExactBanzhaf",
    "ExactShapley",
    "KernelBanzhaf",
    "MSRBanzhaf",
    "ModelUtility",
    "NotConvergedWarning",
    "PermutationShapley",
    "StratifiedShapley",
    "Utility",
    "UtilityError",
    "ValuationResult",
    "banzhaf",
    "data_oob",
    "knn_shapley",
    "leave_one_out",
    "shapley",
]
