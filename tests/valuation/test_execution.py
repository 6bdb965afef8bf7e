"""Where utility evaluations run (joblib, Ray) and what a long valuation shows meanwhile."""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from quotepart.errors import InputError
from quotepart.valuation import NotConvergedWarning, banzhaf, shapley
from quotepart.valuation.games import AirportGame, UnanimitySum

GAME = AirportGame(np.random.default_rng(3).integers(1, 100, size=30))


@pytest.fixture
def ray_session() -> Iterator[Any]:
    """Ray as quotepart starts it: not imported before (its address mode is read on import)."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is in the test extra: pip install -e '.[test]'")
    assert "ray" not in sys.modules, "another test imported ray first"
    yield lambda: sys.modules["ray"]
    ray = sys.modules.get("ray")
    if ray is None:
        return
    with warnings.catch_warnings():  # Ray's shutdown leaves Popen objects of exited workers
        warnings.simplefilter("ignore", ResourceWarning)
        ray.shutdown()
        gc.collect()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's own imports
# Ray leaves /dev/null handles and worker Popen objects open; its hygiene, not ours
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ray_gives_the_joblib_values_and_listens_on_localhost_only(ray_session: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        on_ray = shapley(GAME, range(30), seed=4, max_evaluations=2_000, n_jobs=2, executor="ray")
        on_joblib = shapley(GAME, range(30), seed=4, max_evaluations=2_000, n_jobs=2)
    assert on_ray.values == on_joblib.values
    assert on_ray.stderr == on_joblib.stderr
    assert on_ray.evaluations == on_joblib.evaluations
    ray = ray_session()
    assert ray.is_initialized()
    assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")

    def broken(coalition: frozenset[Any]) -> float:
        if 7 in coalition and len(coalition) == 3:
            raise ValueError("cannot fit")
        return float(len(coalition))

    from quotepart.valuation import UtilityError

    with pytest.raises(UtilityError, match="raised ValueError: cannot fit on coalition"):
        shapley(broken, range(10), executor="ray")

    from quotepart.valuation import CachedUtility

    def process_id(coalition: frozenset[Any]) -> float:
        return float(os.getpid())

    on_workers = CachedUtility(process_id, executor="ray").many(
        [frozenset({i}) for i in range(4)], n_jobs=1
    )
    assert float(os.getpid()) not in on_workers  # n_jobs=1 still runs on Ray's workers


def test_an_unknown_executor_is_refused() -> None:
    with pytest.raises(InputError, match="unknown executor 'dask'"):
        shapley(GAME, range(30), executor="dask")


def test_a_progress_bar_counts_evaluations_when_asked_and_stays_quiet_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    game = UnanimitySum(10, [((0, 1), 1.0), ((2, 3, 4), 2.0)])
    shapley(game, range(10), method="exact", progress=True)
    shown = capsys.readouterr().err
    assert "shapley (exact)" in shown
    assert "100%" in shown
    assert "1.02k/1.02k" in shown  # 2^10 coalitions, each once
    banzhaf(game, range(10), progress=False)
    shapley(game, range(10))  # default: only on a terminal, and only after two seconds
    assert capsys.readouterr().err == ""
