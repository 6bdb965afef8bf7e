"""Utilities: the value of a coalition of players, evaluated at most once each.

A utility is any callable taking a `frozenset` of players and returning a float.
`CachedUtility` wraps one so that every estimator shares one cache, counts distinct
evaluations (what a valuation costs), and refuses results that would poison every
value silently: an exception or a non-finite score names the coalition that caused it.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from quotepart.errors import InputError, QuotepartError

Utility = Callable[[frozenset[Any]], float]


class UtilityError(QuotepartError):
    """The utility failed or returned a non-finite value on one coalition."""

    exit_code = 2


def check_players(players: Iterable[Hashable]) -> tuple[Hashable, ...]:
    found = tuple(players)
    if not found:
        raise InputError("there are no players to value", hint="pass at least one player")
    repeated = [player for player, count in Counter(found).items() if count > 1]
    if repeated:
        raise InputError(
            f"player {repeated[0]!r} appears more than once", hint="players must be distinct"
        )
    return found


EXECUTORS = ("joblib", "ray")


def check_executor(executor: str) -> str:
    if executor not in EXECUTORS:
        raise InputError(
            f"unknown executor {executor!r}", hint=f"use one of {', '.join(EXECUTORS)}"
        )
    return executor


def as_cached(utility: Utility, executor: str | None = None) -> CachedUtility:
    """One cache per valuation (or the caller's, shared across valuations); `executor`
    None keeps the cache's own, joblib for a new one."""
    if isinstance(utility, CachedUtility):
        if executor is not None:
            utility.executor = check_executor(executor)
        return utility
    return CachedUtility(utility, executor or "joblib")


class CachedUtility:
    """A utility evaluated at most once per coalition (a frozenset of players).

    `executor` runs the uncached evaluations of a batch: "joblib" (`n_jobs` processes on
    this machine; n_jobs=1 evaluates in this process) or "ray" (always: a running
    cluster, or one started on 127.0.0.1 with `n_jobs` CPUs).
    """

    def __init__(self, utility: Utility, executor: str = "joblib") -> None:
        self.utility = utility
        self.executor = check_executor(executor)
        self.cache: dict[frozenset[Any], float] = {}
        self._ray_utility: Any = None  # the utility, put in Ray's object store once

    @property
    def evaluations(self) -> int:
        return len(self.cache)

    def __call__(self, coalition: frozenset[Any]) -> float:
        cached = self.cache.get(coalition)
        if cached is not None:
            return cached
        value = self._evaluate(coalition)
        self.cache[coalition] = value
        return value

    def _evaluate(self, coalition: frozenset[Any]) -> float:
        try:
            raw = self.utility(coalition)
        except QuotepartError:
            raise
        except Exception as exc:
            raise _raised(exc, coalition) from exc
        return _validated(raw, coalition)

    def many(self, coalitions: Sequence[frozenset[Any]], n_jobs: int = 1) -> np.ndarray:
        """Values of many coalitions; the uncached ones evaluated in parallel with joblib.

        Results do not depend on `n_jobs`: each coalition's value is its own.
        """
        missing = list(dict.fromkeys(c for c in coalitions if c not in self.cache))
        if len(missing) > 1 and (n_jobs != 1 or self.executor == "ray"):
            if self.executor == "ray":
                computed = self._on_ray(missing, n_jobs)
            else:
                from joblib import Parallel, delayed

                computed = Parallel(n_jobs=n_jobs)(
                    delayed(_evaluate_one)(self.utility, coalition) for coalition in missing
                )
            for coalition, value in zip(missing, computed, strict=True):
                if isinstance(value, BaseException):
                    raise _raised(value, coalition) from value
                self.cache[coalition] = _validated(value, coalition)
        return np.fromiter((self(c) for c in coalitions), dtype=np.float64, count=len(coalitions))

    def _on_ray(self, missing: list[frozenset[Any]], n_jobs: int) -> list[Any]:
        """Evaluate on Ray in a few chunks per CPU (one task per coalition costs more in
        scheduling than a fast utility does to run)."""
        ray = _ray(n_jobs)
        if self._ray_utility is None:
            self._ray_utility = ray.put(self.utility)
        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        size = max(1, -(-len(missing) // (4 * cpus)))
        chunks = [missing[start : start + size] for start in range(0, len(missing), size)]
        task = ray.remote(_evaluate_chunk)
        done = ray.get([task.remote(self._ray_utility, chunk) for chunk in chunks])
        return [value for chunk in done for value in chunk]


def _ray(n_jobs: int) -> Any:
    """Ray, joined if already running (a cluster the user started), else started locally.

    Ray binds the machine's external address unless told otherwise: a local start is
    kept on 127.0.0.1, with usage statistics off and a small object store (utilities
    are put once; values come back as floats).
    """
    for name, value in (
        ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"),
        ("RAY_AUTH_MODE", "disabled"),
        ("RAY_USAGE_STATS_ENABLED", "0"),
        ("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0"),  # else a FutureWarning on every start
    ):
        os.environ.setdefault(name, value)
    try:
        import ray
        from ray._private import ray_constants
    except ImportError as exc:
        raise InputError(
            "executor='ray' needs Ray, which is not installed",
            hint="pip install 'quotepart[ray]', or use executor='joblib'",
        ) from exc
    if not ray.is_initialized():
        if ray_constants.ENABLE_RAY_CLUSTER:  # read once, when ray was first imported
            raise InputError(
                "Ray was imported before quotepart could keep a local start on 127.0.0.1; "
                "started now it would listen on this machine's external address",
                hint="set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray, or "
                "start Ray yourself with ray.init(...) and quotepart will use it",
            )
        ray.init(
            num_cpus=None if n_jobs == -1 else n_jobs,
            include_dashboard=False,
            object_store_memory=200 * 2**20,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    return ray


def _evaluate_chunk(utility: Utility, coalitions: list[frozenset[Any]]) -> list[Any]:
    return [_evaluate_one(utility, coalition) for coalition in coalitions]


def _raised(exc: BaseException, coalition: frozenset[Any]) -> UtilityError:
    return UtilityError(
        f"the utility raised {type(exc).__name__}: {exc} on coalition {_show(coalition)}",
        hint="make the utility handle every coalition (the empty one included)",
    )


def _validated(raw: Any, coalition: frozenset[Any]) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise UtilityError(
            f"the utility returned {raw!r}, not a number, on coalition {_show(coalition)}",
            hint="return a float score",
        ) from exc
    if not math.isfinite(value):
        raise UtilityError(
            f"the utility returned {value} on coalition {_show(coalition)}",
            hint="a valuation cannot use NaN or infinite scores; fix the utility "
            "(quotepart never replaces them with a default)",
        )
    return value


def _evaluate_one(utility: Utility, coalition: frozenset[Any]) -> Any:
    try:
        return utility(coalition)
    except Exception as exc:  # reported by the parent, naming the coalition
        return exc


def _show(coalition: frozenset[Any]) -> str:
    items = sorted(map(repr, coalition))
    if len(items) > 8:
        return "{" + ", ".join(items[:8]) + f", … ({len(items)} players)" + "}"
    return "{" + ", ".join(items) + "}"


def check_n_jobs(n_jobs: int) -> int:
    if not isinstance(n_jobs, int) or (n_jobs < 1 and n_jobs != -1):
        raise InputError(
            f"n_jobs must be a positive integer or -1, got {n_jobs!r}", hint="e.g. n_jobs=2"
        )
    return n_jobs
