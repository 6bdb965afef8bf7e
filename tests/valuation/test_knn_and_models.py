"""KNN-Shapley against the paper's recursion; the model utility on real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from quotepart.errors import InputError
from quotepart.valuation import ModelUtility, data_oob, knn_shapley, shapley


def plain_recursion(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, k: int
) -> np.ndarray:
    """Jia et al. 2019, Theorem 1, one test point at a time, exactly as written."""
    n = len(x_train)
    values = np.zeros(n)
    for point, label in zip(x_test, y_test, strict=True):
        order = np.argsort(np.linalg.norm(x_train - point, axis=1), kind="stable")
        s = np.zeros(n)
        s[order[-1]] = float(y_train[order[-1]] == label) / n
        for i in range(n - 2, -1, -1):  # 0-based position i is rank i + 1
            rank = i + 1
            here = float(y_train[order[i]] == label)
            after = float(y_train[order[i + 1]] == label)
            s[order[i]] = s[order[i + 1]] + (here - after) / k * min(k, rank) / rank
        values += s
    return values / len(x_test)


@pytest.mark.parametrize(
    ("n", "t", "k", "classes"), [(60, 7, 3, 2), (200, 25, 5, 3), (9, 4, 20, 2)]
)
def test_knn_shapley_equals_the_recursion(n: int, t: int, k: int, classes: int) -> None:
    rng = np.random.default_rng(n)
    x_train, x_test = rng.normal(size=(n, 4)), rng.normal(size=(t, 4))
    y_train, y_test = rng.integers(0, classes, n), rng.integers(0, classes, t)
    expected = plain_recursion(x_train, y_train, x_test, y_test, k)
    found = knn_shapley(x_train, y_train, x_test, y_test, k=k)
    assert found.dtype == np.float64
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12)
    # memory-bounded chunks (one test point at a time) give the same values
    chunked = knn_shapley(x_train, y_train, x_test, y_test, k=k, memory_bytes=1)
    np.testing.assert_allclose(chunked, expected, rtol=0, atol=1e-12)


def test_knn_shapley_is_efficient() -> None:
    """Values sum to the KNN classifier's accuracy on the test set minus v(∅) = 0."""
    rng = np.random.default_rng(5)
    x_train, x_test = rng.normal(size=(80, 3)), rng.normal(size=(30, 3))
    y_train, y_test = (x_train[:, 0] > 0).astype(int), (x_test[:, 0] > 0).astype(int)
    k = 5
    values = knn_shapley(x_train, y_train, x_test, y_test, k=k)
    accuracy = 0.0
    for point, label in zip(x_test, y_test, strict=True):
        nearest = np.argsort(np.linalg.norm(x_train - point, axis=1), kind="stable")[:k]
        accuracy += float(np.sum(y_train[nearest] == label)) / k  # the soft KNN utility
    assert values.sum() == pytest.approx(accuracy / len(x_test), abs=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": 0}, "k must be a positive integer"),
        ({"y_train": np.zeros(3)}, "labels of shape"),
        ({"x_test": np.zeros((4, 2))}, "features"),
        ({"x_train": np.full((10, 3), np.nan)}, "NaN"),
    ],
)
def test_knn_shapley_bad_input(change: dict[str, Any], message: str) -> None:
    rng = np.random.default_rng(0)
    arguments: dict[str, Any] = {
        "x_train": rng.normal(size=(10, 3)),
        "y_train": rng.integers(0, 2, 10),
        "x_test": rng.normal(size=(4, 3)),
        "y_test": rng.integers(0, 2, 4),
        "k": 3,
    }
    arguments.update(change)
    with pytest.raises(InputError, match=message):
        knn_shapley(**arguments)


def test_cohort_shapley_finds_the_cohort_with_flipped_labels() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    test, train = order[:170], order[170:]
    cohorts = dict(enumerate(np.array_split(train, 6)))
    y_noisy = y.copy()
    y_noisy[cohorts[3]] = 1 - y_noisy[cohorts[3]]  # one hospital's labels all wrong
    utility = ModelUtility(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        x,
        y_noisy,
        x[test],
        y[test],
        groups={f"cohort {i}": rows for i, rows in cohorts.items()},
    )
    result = shapley(utility, utility.players, method="exact")
    assert result.evaluations == 2**6
    assert result.ranking()[-1] == "cohort 3"
    assert result.values["cohort 3"] < 0
    full, empty = utility(frozenset(utility.players)), utility(frozenset())
    assert result.total() == pytest.approx(full - empty, abs=1e-9)


def test_model_utility_handles_empty_and_one_class_coalitions_explicitly() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    benign, malignant = np.flatnonzero(y == 1)[:20], np.flatnonzero(y == 0)[:20]
    utility = ModelUtility(
        LogisticRegression(max_iter=1000),
        x,
        y,
        x[100:200],
        y[100:200],
        groups={"benign only": benign, "malignant only": malignant},
    )
    majority = float(np.mean(y[100:200] == np.bincount(y).argmax()))
    assert utility(frozenset()) == pytest.approx(majority)
    assert utility(frozenset({"benign only"})) == pytest.approx(float(np.mean(y[100:200] == 1)))
    with pytest.raises(InputError, match="outside the training set"):
        ModelUtility(LogisticRegression(), x, y, x, y, groups={"bad": [10_000]})


def test_duplicated_training_points_are_ranked_by_index() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(size=(30, 2))
    x_train = np.vstack([base, base[:10]])  # ten exact duplicates: tied distances
    y_train = rng.integers(0, 2, len(x_train))
    x_test, y_test = rng.normal(size=(6, 2)), rng.integers(0, 2, 6)
    np.testing.assert_allclose(
        knn_shapley(x_train, y_train, x_test, y_test, k=3),
        plain_recursion(x_train, y_train, x_test, y_test, 3),
        rtol=0,
        atol=1e-12,
    )


def test_record_values_find_flipped_labels() -> None:
    """10 % of labels flipped: low values should point at them (AUROC well above chance)."""
    from sklearn.metrics import roc_auc_score

    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(3)
    order = rng.permutation(len(y))
    test, train = order[:150], order[150:]
    noisy = y[train].copy()
    flipped = rng.choice(len(train), size=len(train) // 10, replace=False)
    noisy[flipped] = 1 - noisy[flipped]
    is_flipped = np.zeros(len(train), dtype=bool)
    is_flipped[flipped] = True
    scaled = StandardScaler().fit(x[train])
    knn = knn_shapley(scaled.transform(x[train]), noisy, scaled.transform(x[test]), y[test], k=5)
    oob = data_oob(x[train], noisy, n_estimators=100, random_state=0)
    assert roc_auc_score(is_flipped, -knn) > 0.8
    assert roc_auc_score(is_flipped, -oob) > 0.8
    assert np.array_equal(oob, data_oob(x[train], noisy, n_estimators=100, random_state=0))
    with pytest.raises(InputError, match="do not match"):
        data_oob(x[train], noisy[:-1])


def test_knn_shapley_does_not_depend_on_the_number_of_threads() -> None:
    rng = np.random.default_rng(2)
    x_train, x_test = rng.normal(size=(300, 3)), rng.normal(size=(40, 3))
    y_train, y_test = rng.integers(0, 2, 300), rng.integers(0, 2, 40)
    small_chunks = 8 * 5 * 300 * 3  # three test points per chunk
    one = knn_shapley(x_train, y_train, x_test, y_test, memory_bytes=small_chunks, workers=1)
    two = knn_shapley(x_train, y_train, x_test, y_test, memory_bytes=small_chunks, workers=2)
    assert np.array_equal(one, two)
