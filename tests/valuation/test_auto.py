"""`method="auto"` for Shapley: the pilot picks a sampler per game, hits closed-form answers,
repeats per seed, records its choice, and refuses bad input with a hint."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from quotepart.errors import InputError
from quotepart.valuation import AutoShapley, CachedUtility, NotConvergedWarning, shapley
from quotepart.valuation.games import AirportGame, UnanimitySum, WeightedVotingGame

BUDGET_ONLY = pytest.mark.filterwarnings("ignore::quotepart.valuation.sampling.NotConvergedWarning")


def additive_with_interactions(n: int, seed: int) -> UnanimitySum:
    """Σ_{i∈S} a_i plus 2n small unanimity terms of 2 to 4 players (interaction noise)."""
    rng = np.random.default_rng(seed)
    carriers: list[tuple[tuple[int, ...], float]] = [
        ((i,), float(a)) for i, a in enumerate(rng.uniform(0, 1, n))
    ]
    carriers += [
        (tuple(int(j) for j in rng.choice(n, int(rng.integers(2, 5)), replace=False)), w)
        for w in rng.normal(0, 0.05, 2 * n)
    ]
    return UnanimitySum(n, carriers)


GAMES = {
    "airport-40": (AirportGame(np.random.default_rng(40).integers(1, 100, size=40)), 0.1),
    "voting-50": (
        WeightedVotingGame(list(np.random.default_rng(50).integers(1, 10, size=50)), 120),
        0.12,
    ),
    "unanimity-60": (
        UnanimitySum(60, [(tuple(range(i, i + 5)), 1.0 + i % 3) for i in range(0, 55, 5)]),
        0.15,
    ),
    "additive-50": (additive_with_interactions(50, 51), 0.02),
}


def relative_l2(values: dict[Any, float], exact: np.ndarray) -> float:
    estimate = np.array([values[i] for i in range(len(exact))])
    return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


@BUDGET_ONLY
@pytest.mark.parametrize("name", list(GAMES))
def test_auto_hits_closed_form_answers_and_records_its_choice(name: str) -> None:
    game, tolerance = GAMES[name]
    result = shapley(game, range(game.n), max_evaluations=5_000, seed=3)
    assert relative_l2(result.values, game.shapley_values()) < tolerance
    choice = result.parameters["choice"]
    assert result.method == f"shapley/auto:{choice}"
    assert set(result.parameters["predicted_squared_error"]) == {
        "stratified",
        "permutation",
        "regression",
    }
    assert 0 < result.parameters["pilot_evaluations"] < 5_000
    assert result.evaluations <= 5_000 + 64  # the samplers stop after the batch that crosses it


@BUDGET_ONLY
def test_auto_picks_regression_or_permutations_near_additive_and_strata_on_thresholds() -> None:
    """The families where the samplers differ most (bench/valuation.py: 5–10×)."""
    additive = GAMES["additive-50"][0]
    voting = GAMES["voting-50"][0]
    airport = GAMES["airport-40"][0]
    near_additive = shapley(additive, range(50), max_evaluations=5_000).parameters["choice"]
    assert near_additive in ("regression", "permutation")
    assert shapley(voting, range(50), max_evaluations=5_000).parameters["choice"] == ("stratified")
    assert shapley(airport, range(40), max_evaluations=15_000).parameters["choice"] == (
        "regression"
    )


@BUDGET_ONLY
def test_auto_repeats_per_seed_and_reuses_its_pilot() -> None:
    game = GAMES["additive-50"][0]
    pair = ("permutation", "stratified")
    one = AutoShapley(max_evaluations=4_000, random_state=11, candidates=pair).fit(game, range(50))
    two = AutoShapley(max_evaluations=4_000, random_state=11, candidates=pair).fit(game, range(50))
    other = AutoShapley(max_evaluations=4_000, random_state=12, candidates=pair)
    other.fit(game, range(50))
    assert np.array_equal(one.values_, two.values_)
    assert one.choice_ == two.choice_
    assert not np.array_equal(one.values_, other.values_)
    # the chosen permutation run replays its pilot from the cache: the whole budget is
    # spent on one sampler, so it matches a plain permutation run with the same seed
    cached = CachedUtility(game)
    plain = AutoShapley(max_evaluations=4_000, random_state=11, candidates=["permutation"])
    plain.fit(cached, range(50))
    assert one.choice_ == "permutation"
    assert np.allclose(one.values_, plain.values_)
    assert cached.evaluations <= 4_000 + 8 * 49  # one batch of pairs past it at most


@BUDGET_ONLY
def test_an_undecided_regression_pilot_runs_on_and_is_reused() -> None:
    """Where the proxy's improvement rate decides (the rival's predicted error lies between
    regression's with β = 0 and β = 1), the regression pilot runs on by half its size and
    the two predictions' geometric mean decides; a winning regression replays it all."""
    from quotepart.valuation.auto import _regression_error, _undecided
    from quotepart.valuation.regression import RegressionShapley

    game = GAMES["unanimity-60"][0]
    trial = RegressionShapley(max_evaluations=600, random_state=0).fit(game, range(60))
    prefixes = {
        frozenset(int(j) for j in np.flatnonzero(row)): game(frozenset(np.flatnonzero(row)))
        for row in np.random.default_rng(1).random((300, 60)) < 0.5
    }
    slow = _regression_error(trial, prefixes, range(60), 5_000, rate=0.0)
    fast = _regression_error(trial, prefixes, range(60), 5_000, rate=1.0)
    assert fast < slow
    assert _undecided(trial, prefixes, range(60), 5_000, math.sqrt(fast * slow))
    assert not _undecided(trial, prefixes, range(60), 5_000, 2 * slow)
    assert not _undecided(trial, prefixes, range(60), 5_000, fast / 2)
    found = [
        shapley(game, range(60), max_evaluations=5_000, seed=seed).parameters for seed in range(3)
    ]
    assert any(p["pilot_extended"] for p in found)
    for p in found:
        assert isinstance(p["pilot_extended"], bool)
        assert 0 < p["pilot_evaluations"] < 0.25 * 5_000


def test_auto_stops_at_a_target_and_warns_when_the_budget_runs_out() -> None:
    game = GAMES["airport-40"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConvergedWarning)
        met = shapley(game, range(40), target_stderr=5.0, max_evaluations=50_000)
    assert met.converged
    assert met.evaluations < 50_000
    with pytest.warns(NotConvergedWarning, match="AutoShapley stopped"):
        missed = shapley(game, range(40), target_stderr=1e-6, max_evaluations=2_000)
    assert not missed.converged


def test_bad_methods_and_options_are_input_errors_with_hints() -> None:
    game = GAMES["airport-40"][0]
    with pytest.raises(InputError, match="unknown shapley method 'pilot'") as caught:
        shapley(game, range(40), method="pilot")
    assert "auto" in (caught.value.hint or "")
    with pytest.raises(InputError, match=r"truncation=0\.01 with method='auto'") as caught:
        shapley(game, range(40), method="auto", truncation=0.01, max_evaluations=3_000)
    assert "permutation" in (caught.value.hint or "")
    with pytest.raises(InputError, match="unknown candidate") as caught:
        AutoShapley(candidates=["kernel"]).fit(game, range(40))
    assert "stratified" in (caught.value.hint or "")
    with pytest.raises(InputError, match="pilot_share"):
        AutoShapley(pilot_share=0.9).fit(game, range(40))


def test_the_proxy_shapley_values_are_those_of_the_tree_game_exactly() -> None:
    """Each leaf is 1[A ⊆ S, B ∩ S = ∅]; summed over leaves, φ(f) equals enumeration."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from quotepart.valuation import ExactShapley
    from quotepart.valuation.regression import proxy_shapley

    rng = np.random.default_rng(4)
    x = rng.random((400, 6)) < 0.5
    y = x[:, 0] * x[:, 1] + 2 * x[:, 2] - x[:, 3] * (1 - x[:, 4]) + rng.normal(0, 0.1, 400)
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(x * 1.0, y)

    def tree_game(coalition: frozenset[Any]) -> float:
        bits = np.zeros((1, 6))
        bits[0, list(coalition)] = 1.0
        return float(model.predict(bits)[0])

    exact = ExactShapley().fit(tree_game, range(6)).values_
    assert np.allclose(proxy_shapley(model, 6), exact, atol=1e-9)


@BUDGET_ONLY
def test_regression_adjusted_sampling_hits_the_airport_game() -> None:
    game = GAMES["airport-40"][0]
    result = shapley(game, range(40), method="regression", max_evaluations=5_000, seed=1)
    assert relative_l2(result.values, game.shapley_values()) < 0.05
    assert result.method == "shapley/regression"


def test_auto_values_nine_to_fourteen_players_from_a_third_of_the_coalitions() -> None:
    """No budget, 10 players: not 1,024 evaluations but the surrogate's, on target, the
    values efficient (the filled table is a game), the same per seed; exact on request."""
    from quotepart.valuation.games import AirportGame

    game = AirportGame(np.random.default_rng(4).integers(1, 100, size=10))
    exact = game.shapley_values()
    one = shapley(game, range(10), seed=5)
    assert one.method == "shapley/auto:surrogate"
    assert one.parameters["choice"] == "surrogate"
    assert one.converged
    assert one.evaluations < 1024 // 2
    values = np.array([one.values[i] for i in range(10)])
    assert np.linalg.norm(values - exact) / np.linalg.norm(exact) <= 0.05
    assert values.sum() == pytest.approx(game(frozenset(range(10))) - game(frozenset()))
    assert shapley(game, range(10), seed=5).values == one.values
    assert shapley(game, range(10), method="exact").evaluations == 1024
    assert shapley(game, range(8)).method == "shapley/exact"  # 256 coalitions: enumerated
    assert shapley(game, range(10), max_evaluations=1024).method == "shapley/exact"


def test_the_surrogate_meets_a_per_player_target_and_is_exact_when_it_runs_out() -> None:
    from quotepart.valuation.games import WeightedVotingGame
    from quotepart.valuation.regression import SurrogateShapley

    game = WeightedVotingGame([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 2], 20)
    exact = game.shapley_values()
    met = SurrogateShapley(target_stderr=0.01, random_state=2).fit(game, range(12))
    assert met.converged_
    assert np.all(met.stderr_ <= 0.01)
    assert np.max(np.abs(met.values_ - exact)) <= 0.04
    every = SurrogateShapley(target_stderr=1e-12, random_state=2).fit(game, range(12))
    assert every.n_evaluations_ == 1 << 12
    np.testing.assert_allclose(every.values_, exact, atol=1e-12)
