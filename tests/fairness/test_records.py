"""The pure pieces: centred, neighbourhood-restricted KNN-Shapley, per-set sums, copies."""

from __future__ import annotations

import numpy as np
import pytest

from quotepart.errors import InputError
from quotepart.valuation import (
    first_holders,
    knn_shapley,
    knn_shapley_sets,
    value_record_sets,
)


def _data(seed: int = 0, n: int = 120, t: int = 40) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + t, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=n + t) > 0).astype(int)
    return x[:n], y[:n], x[n:], y[n:]


def test_far_records_are_worth_exactly_nothing_and_change_nobody() -> None:
    x, y, xt, yt = _data()
    far = np.random.default_rng(1).uniform(50, 60, size=(30, 4))
    labels = np.random.default_rng(2).integers(0, 2, 30)
    alone = knn_shapley(x, y, xt, yt, k=5, centre="label-prior", neighbours=50)
    both = knn_shapley(
        np.vstack([x, far]), np.concatenate([y, labels]), xt, yt, k=5,
        centre="label-prior", neighbours=50,
    )  # fmt: skip
    assert np.all(both[len(x) :] == 0.0)
    np.testing.assert_allclose(both[: len(x)], alone, rtol=0, atol=1e-15)


def test_records_beyond_reach_are_null_players_even_among_the_nearest() -> None:
    x, y, xt, yt = _data()
    rng = np.random.default_rng(3)
    far = rng.uniform(6, 8, size=(30, 4)) * rng.choice([-1, 1], size=(30, 4))
    labels = rng.integers(0, 2, 30)
    options = {"k": 5, "centre": "label-prior", "neighbours": 150, "reach": 2.0}
    alone = knn_shapley(x, y, xt, yt, **options)  # type: ignore[arg-type]
    both = knn_shapley(
        np.vstack([x, far]), np.concatenate([y, labels]), xt, yt, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    assert np.all(both[len(x) :] == 0.0)
    np.testing.assert_array_equal(both[: len(x)], alone)
    # without the reach, the same records are among the 150 nearest and move the others
    plain = knn_shapley(np.vstack([x, far]), np.concatenate([y, labels]), xt, yt, k=5,
                        centre="label-prior", neighbours=150)  # fmt: skip
    assert np.any(plain[len(x) :] != 0.0)


def test_a_reach_that_cuts_nothing_changes_nothing() -> None:
    x, y, xt, yt = _data()
    for centre in ("none", "label-prior"):
        cut = knn_shapley(x, y, xt, yt, k=5, centre=centre, neighbours=40, reach=1e9)  # type: ignore[arg-type]
        plain = knn_shapley(x, y, xt, yt, k=5, centre=centre, neighbours=40)  # type: ignore[arg-type]
        np.testing.assert_array_equal(cut, plain)


def test_a_reach_values_each_test_point_over_its_records_within_reach() -> None:
    x, y, xt, yt = _data()
    reach = 0.9
    cut = knn_shapley(x, y, xt, yt, k=3, centre="label-prior", neighbours=40, reach=reach)
    expected = np.zeros(len(x))
    for point, label in zip(xt, yt, strict=True):
        distance = np.sqrt(((x - point) ** 2).sum(axis=1))
        order = np.argsort(distance, kind="stable")[:40]
        inside = order[distance[order] <= reach]
        if inside.size:  # the same game on the records within reach only
            one = knn_shapley(x[inside], y[inside], point[None], np.array([label]), k=3)
            prior = np.mean(yt == label)
            expected[inside] += one - prior / inside.size
    np.testing.assert_allclose(cut, expected / len(xt), atol=1e-12)


def test_centred_values_sum_to_knn_accuracy_minus_the_label_prior() -> None:
    x, y, xt, yt = _data()
    k, m = 5, 40
    values = knn_shapley(x, y, xt, yt, k=k, centre="label-prior", neighbours=m)
    nearest = np.argsort(((xt[:, None, :] - x[None, :, :]) ** 2).sum(-1), axis=1)[:, :k]
    accuracy = (y[nearest] == yt[:, None]).mean()
    prior = np.mean([np.mean(yt == label) for label in yt])
    assert values.sum() == pytest.approx(accuracy - prior)


def test_the_defaults_are_jia_et_al_unchanged() -> None:
    x, y, xt, yt = _data()
    plain = knn_shapley(x, y, xt, yt, k=3)
    assert plain.sum() == pytest.approx(
        (y[np.argsort(((xt[:, None] - x[None]) ** 2).sum(-1), axis=1)[:, :3]] == yt[:, None]).mean()
    )
    every = knn_shapley(x, y, xt, yt, k=3, neighbours=len(x))
    np.testing.assert_allclose(plain, every)


def test_set_values_are_sums_of_records_and_splitting_keeps_the_sum() -> None:
    x, y, xt, yt = _data()
    sets = np.repeat([0, 1, 2], 40)
    found = knn_shapley_sets(x, y, xt, yt, sets, k=5, neighbours=50)
    for s in range(3):
        assert found.sets[s] == pytest.approx(found.records[sets == s].sum())
    split = np.where(sets == 2, 2 + np.arange(len(x)) % 4, sets)  # set 2 cut into 4
    again = knn_shapley_sets(x, y, xt, yt, split, k=5, neighbours=50)
    assert again.sets[2:].sum() == pytest.approx(found.sets[2])
    assert np.all(found.set_stderr > 0)


def test_the_standard_error_is_the_spread_over_test_points() -> None:
    x, y, xt, yt = _data(t=30)
    sets = np.zeros(len(x), dtype=int)
    # (uncentred: the label prior of one test point alone would be another baseline)
    found = knn_shapley_sets(x, y, xt, yt, sets, k=5, centre="none")
    per_point = [
        knn_shapley_sets(x, y, xt[i : i + 1], yt[i : i + 1], sets, k=5, centre="none")
        for i in range(30)
    ]
    sums = np.array([p.sets[0] for p in per_point])
    assert found.sets[0] == pytest.approx(sums.mean())
    assert found.set_stderr[0] == pytest.approx(sums.std(ddof=1) / np.sqrt(30))


def test_first_holders_follow_chains_and_repeats() -> None:
    a = np.array([[1, 10], [2, 20], [1, 11]])  # row 2 repeats row 0
    b = np.array([[3, 20], [4, 40]])  # row 0 copies a's row 1
    c = np.array([[5, 40], [6, 60]])  # row 0 copies b's row 1
    kept, holders = first_holders([a, b, c])
    assert [k.tolist() for k in kept] == [[True, True, False], [False, True], [False, True]]
    assert [h.tolist() for h in holders] == [[0, 0, 0], [0, 1], [1, 2]]


def test_value_record_sets_drops_copies_before_valuing() -> None:
    x, y, xt, yt = _data()
    first, second = (x[:60], y[:60]), (x[60:], y[60:])
    keys = [np.arange(60)[:, None], np.arange(60, 120)[:, None]]
    honest = value_record_sets([first, second], (xt, yt), keys=keys)
    copy = (x[:30][::-1], y[:30][::-1])
    copied = value_record_sets(
        [first, second, copy], (xt, yt), keys=[*keys, np.arange(30)[::-1, None]]
    )
    assert copied.values[2] == 0.0
    assert copied.copies == {(2, 0): 30}
    np.testing.assert_allclose(copied.values[:2], honest.values)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"centre": "median"}, "unknown centring"),
        ({"neighbours": 2}, "neighbours must be"),
        ({"neighbours": True}, "neighbours must be"),
        ({"reach": 0.0}, "reach must be"),
        ({"reach": -1.0}, "reach must be"),
        ({"reach": True}, "reach must be"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    x, y, xt, yt = _data()
    with pytest.raises(InputError, match=message):
        knn_shapley(x, y, xt, yt, k=5, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["breast-cancer", "generated"])
def test_the_noisy_label_cohort_earns_least_per_record(name: str) -> None:
    """The scene's fifth hospital has 30 % of its labels flipped: with the defaults (reach
    included) it is worth the least per record, at most half of any other's."""
    from tests.fairness.scene import cohorts

    _, test, honest = cohorts(name)
    found = value_record_sets(honest, test)
    per_record = np.array(found.values) / [len(y) for _, y in honest]
    assert per_record[-1] <= 0.5 * per_record[:-1].min()
