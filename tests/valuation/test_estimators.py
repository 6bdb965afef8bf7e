"""Valuation estimators against known answers: closed-form games, brute force, the axioms."""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotepart.errors import InputError
from quotepart.valuation import (
    NotConvergedWarning,
    UtilityError,
    banzhaf,
    leave_one_out,
    shapley,
)
from quotepart.valuation.games import AirportGame, GloveGame, UnanimitySum, WeightedVotingGame


def as_array(values: dict[Any, float], n: int) -> np.ndarray:
    return np.array([values[i] for i in range(n)])


class TableGame:
    """A game given by a value for every coalition (bitmask), for brute-force checks."""

    def __init__(self, table: list[float]) -> None:
        self.table = table
        self.n = int(math.log2(len(table)))

    def __call__(self, coalition: frozenset[Any]) -> float:
        return self.table[sum(1 << i for i in coalition)]


def brute_force_shapley(game: TableGame) -> np.ndarray:
    """Average marginal contribution over all n! orders: the definition itself."""
    n = game.n
    values = np.zeros(n)
    for order in itertools.permutations(range(n)):
        members: set[int] = set()
        for player in order:
            before = game(frozenset(members))
            members.add(player)
            values[player] += game(frozenset(members)) - before
    return values / math.factorial(n)


tables = st.integers(min_value=1, max_value=5).flatmap(
    lambda n: st.lists(
        st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=1 << n, max_size=1 << n
    )
)


@settings(max_examples=60, deadline=None)
@given(table=tables, other=tables)
def test_exact_shapley_is_the_definition_and_keeps_the_axioms(
    table: list[float], other: list[float]
) -> None:
    game = TableGame(table)
    n = game.n
    players = range(n)
    values = as_array(shapley(game, players, method="exact").values, n)
    np.testing.assert_allclose(values, brute_force_shapley(game), atol=1e-9)
    # efficiency: the values share out v(N) - v(empty)
    assert values.sum() == pytest.approx(table[-1] - table[0], abs=1e-9)
    # additivity: the value of a sum of games is the sum of the values
    if len(other) == len(table):
        summed = TableGame([a + b for a, b in zip(table, other, strict=True)])
        parts = values + as_array(shapley(TableGame(other), players, method="exact").values, n)
        np.testing.assert_allclose(as_array(shapley(summed, players).values, n), parts, atol=1e-9)


def test_symmetric_players_get_equal_values_and_null_players_nothing() -> None:
    game = UnanimitySum(6, [((0, 1), 3.0), ((0, 1, 2), 1.5)])  # 0 and 1 symmetric; 3-5 null
    for value in (shapley(game, range(6)), banzhaf(game, range(6))):
        assert value.values[0] == pytest.approx(value.values[1])
        assert [value.values[i] for i in (3, 4, 5)] == [0.0, 0.0, 0.0]
        assert value.converged
        assert value.stderr == dict.fromkeys(range(6), 0.0)


@pytest.mark.parametrize(
    "game",
    [
        UnanimitySum(8, [((0, 1, 2), 3.0), ((2, 5), 1.0), ((7,), 0.5)]),
        AirportGame([1, 1, 2, 3, 5, 8, 13, 21]),
        GloveGame(4),
        WeightedVotingGame([5, 4, 3, 2, 2, 1, 1], 10),
    ],
    ids=["unanimity", "airport", "glove", "weighted-voting"],
)
def test_exact_values_of_closed_form_games(game: Any) -> None:
    result = shapley(game, range(game.n), method="exact")
    np.testing.assert_allclose(as_array(result.values, game.n), game.shapley_values(), atol=1e-12)
    assert result.evaluations == 1 << game.n  # each coalition exactly once


def test_exact_banzhaf_of_unanimity_games() -> None:
    game = UnanimitySum(7, [((0, 1, 2), 4.0), ((3, 4), 1.0)])
    result = banzhaf(game, range(7), method="exact")
    np.testing.assert_allclose(as_array(result.values, 7), game.banzhaf_values(), atol=1e-12)


SAMPLED = [
    AirportGame(np.random.default_rng(1).integers(1, 100, size=50)),
    WeightedVotingGame(list(np.random.default_rng(2).integers(1, 10, size=50)), 120),
    UnanimitySum(50, [(tuple(range(i, i + 5)), 1.0 + i % 3) for i in range(0, 45, 5)]),
]


BUDGET_ONLY = pytest.mark.filterwarnings(
    "ignore::quotepart.valuation.sampling.NotConvergedWarning"  # these runs stop on budget
)


@BUDGET_ONLY
@pytest.mark.parametrize("method", ["permutation", "stratified"])
@pytest.mark.parametrize("game", SAMPLED, ids=["airport-50", "voting-50", "unanimity-50"])
def test_sampled_shapley_lies_within_its_error_bars(game: Any, method: str) -> None:
    exact = game.shapley_values()
    inside = total = 0
    for seed in range(5):
        result = shapley(game, range(game.n), method=method, seed=seed, max_evaluations=20_000)
        values = as_array(result.values, game.n)
        stderr = as_array(result.stderr, game.n)
        if method == "permutation":  # each permutation shares out v(N) - v(empty) exactly
            assert values.sum() == pytest.approx(exact.sum(), rel=1e-9)
        inside += int(np.sum(np.abs(values - exact) <= 2.0 * stderr + 1e-12))
        total += game.n
    assert inside / total >= 0.9  # ≈ 95 % expected at two standard errors


@BUDGET_ONLY
@pytest.mark.parametrize("method", ["msr", "kernel"])
def test_sampled_banzhaf_lies_within_its_error_bars(method: str) -> None:
    game = UnanimitySum(30, [(tuple(range(i, i + 3)), 1.0) for i in range(0, 30, 3)])
    exact = game.banzhaf_values()
    inside = 0
    for seed in range(5):
        result = banzhaf(game, range(30), method=method, seed=seed, max_evaluations=20_000)
        values, stderr = as_array(result.values, 30), as_array(result.stderr, 30)
        inside += int(np.sum(np.abs(values - exact) <= 2.0 * stderr + 1e-12))
    assert inside / 150 >= 0.9


def test_a_target_standard_error_stops_sampling_and_says_converged() -> None:
    game = SAMPLED[0]
    result = shapley(game, range(50), method="permutation", target_stderr=0.5, seed=3)
    assert result.converged
    assert max(result.stderr.values()) <= 0.5


def test_running_out_of_budget_is_reported_never_hidden() -> None:
    game = SAMPLED[1]
    with pytest.warns(NotConvergedWarning, match="stopped after") as warned:
        result = shapley(
            game, range(50), method="permutation", target_stderr=1e-6, max_evaluations=500
        )
    assert warned[0].filename == __file__  # the warning points at the caller's line
    assert not result.converged
    assert result.evaluations >= 500


@pytest.mark.parametrize("method", ["permutation", "stratified", "msr", "kernel"])
def test_the_same_seed_gives_the_same_values_whatever_n_jobs(method: str) -> None:
    game = SAMPLED[0]
    value = banzhaf if method in ("msr", "kernel") else shapley
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        one = value(game, range(50), method=method, seed=7, max_evaluations=3_000)
        two = value(game, range(50), method=method, seed=7, max_evaluations=3_000, n_jobs=2)
        other = value(game, range(50), method=method, seed=8, max_evaluations=3_000)
    assert one.values == two.values
    assert one.stderr == two.stderr
    assert one.values != other.values


@BUDGET_ONLY
def test_auto_enumerates_small_games_and_samples_large_ones() -> None:
    assert shapley(GloveGame(3), range(6)).method == "shapley/exact"
    assert banzhaf(GloveGame(3), range(6)).method == "banzhaf/exact"
    large = shapley(SAMPLED[0], range(50), max_evaluations=2_000)
    assert large.method.startswith("shapley/auto:")  # the sampler it chose on this game
    assert banzhaf(SAMPLED[0], range(50), max_evaluations=2_000).method == "banzhaf/kernel"


@BUDGET_ONLY
def test_kernel_banzhaf_recovers_an_additive_game_exactly_and_beats_msr_near_it() -> None:
    """On v(S) = Σ_{i∈S} w_i the paired differences are exactly linear in the signs, so
    least squares is exact once ZᵀZ is invertible; MSR still carries Var(v) as noise."""
    weights = np.random.default_rng(5).normal(size=40)

    def additive(coalition: frozenset[Any]) -> float:
        return float(sum(weights[i] for i in coalition))

    kernel = banzhaf(additive, range(40), method="kernel", seed=1, max_evaluations=400)
    assert as_array(kernel.values, 40) == pytest.approx(weights, abs=1e-9)
    assert max(kernel.stderr.values()) < 1e-6
    msr = banzhaf(additive, range(40), method="msr", seed=1, max_evaluations=400)
    assert np.abs(as_array(msr.values, 40) - weights).max() > 0.1


def test_bad_players_budgets_and_utilities_are_clear_errors() -> None:
    game = GloveGame(2)
    with pytest.raises(InputError, match="no players"):
        shapley(game, [])
    with pytest.raises(InputError, match="appears more than once"):
        shapley(game, [0, 1, 1])
    with pytest.raises(InputError, match="n_jobs"):
        shapley(game, range(4), n_jobs=0)
    with pytest.raises(InputError, match="unknown shapley method"):
        shapley(game, range(4), method="magic")
    with pytest.raises(InputError, match="max_evaluations=1"):
        shapley(game, range(4), method="permutation", max_evaluations=1)

    def nan_on_pairs(coalition: frozenset[Any]) -> float:
        return float("nan") if len(coalition) == 2 else float(len(coalition))

    with pytest.raises(UtilityError, match=r"returned nan on coalition \{"):
        shapley(nan_on_pairs, range(3))

    def broken(coalition: frozenset[Any]) -> float:
        if 2 in coalition:
            raise ValueError("cannot fit")
        return 1.0

    with pytest.raises(UtilityError, match="raised ValueError: cannot fit on coalition"):
        shapley(broken, range(3))


@BUDGET_ONLY
def test_truncated_permutations_skip_the_tail_and_refuse_other_methods() -> None:
    """TMC: once a prefix is within `truncation` of v(N), the rest of the permutation is
    not evaluated. On a game that saturates after its first player, that leaves only the
    prefixes up to the first member of the carrier."""
    game = UnanimitySum(30, [((0,), 1.0)])  # v(S) = 1 as soon as player 0 is in S
    full = shapley(game, range(30), method="permutation", seed=2, max_evaluations=400)
    cut = shapley(
        game, range(30), method="permutation", seed=2, max_evaluations=400, truncation=0.01
    )
    assert cut.values[0] == pytest.approx(1.0)
    assert all(cut.values[i] == 0.0 for i in range(1, 30))
    assert cut.evaluations < full.evaluations
    with pytest.raises(InputError, match=r"truncation=0\.01 with method='stratified'") as refused:
        shapley(game, range(30), method="stratified", truncation=0.01)
    assert "applies to method='permutation' only" in str(refused.value.hint)
    with pytest.raises(InputError, match=r"truncation=1\.5 with method='permutation'"):
        shapley(game, range(30), method="permutation", truncation=1.5)


def test_leave_one_out_is_the_last_marginal_and_blind_to_copies() -> None:
    game = UnanimitySum(5, [((0, 1), 2.0), ((2,), 1.0)])
    result = leave_one_out(game, range(5))
    assert as_array(result.values, 5).tolist() == [2.0, 2.0, 1.0, 0.0, 0.0]
    assert result.evaluations == 6

    def either_copy(coalition: frozenset[Any]) -> float:
        return 1.0 if coalition & {"copy a", "copy b"} else 0.0

    copies = leave_one_out(either_copy, ["copy a", "copy b"])
    assert copies.values == {"copy a": 0.0, "copy b": 0.0}  # Shapley would give 1/2 each
    assert shapley(either_copy, ["copy a", "copy b"]).values == {"copy a": 0.5, "copy b": 0.5}
