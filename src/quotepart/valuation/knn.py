"""Exact KNN-Shapley (Jia et al. 2019): closed-form values for a K-nearest-neighbour classifier.

For one test point, sort the N training points by distance (nearest first, ties by
index) and let m_i = 1 when the i-th nearest has the test label. Then

    s_N = m_N / N,    s_i = s_{i+1} + (m_i − m_{i+1}) / K · min(K, i) / i,

and a training point's value is its s averaged over the test points. The recursion is a
reversed cumulative sum, so a chunk of test points is computed with a handful of array
operations; chunks are sized to keep memory bounded.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from quotepart.errors import InputError

DEFAULT_MEMORY = 512 * 2**20  # bytes of working arrays per chunk
CHUNK_POINTS = 64


def _check(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, k: int
) -> None:
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}", hint="e.g. k=5")
    if x_train.ndim != 2 or x_test.ndim != 2:
        raise InputError(
            f"features must be 2-D arrays, got shapes {x_train.shape} and {x_test.shape}",
            hint="pass X with one row per record",
        )
    if x_train.shape[1] != x_test.shape[1]:
        raise InputError(
            f"training points have {x_train.shape[1]} features, test points {x_test.shape[1]}",
            hint="use the same features for both",
        )
    for name, x, y in (("training", x_train, y_train), ("test", x_test, y_test)):
        if y.ndim != 1 or len(y) != len(x):
            raise InputError(
                f"{len(x)} {name} points but labels of shape {y.shape}",
                hint="pass one label per point",
            )
        if len(x) == 0:
            raise InputError(f"there are no {name} points", hint="pass at least one")
        if not np.all(np.isfinite(x)):
            raise InputError(
                f"the {name} features hold NaN or infinite values", hint="clean them first"
            )


def _nearest_first(distances: np.ndarray) -> np.ndarray:
    """Training points by distance, ties broken by index.

    Introsort is 4x faster than a stable sort on 100,000 distances, and ties only occur
    where points repeat (duplicated records do happen), so only the rows that hold a
    tie are sorted again, stably.
    """
    order = np.argsort(distances, axis=1)
    ranked = np.take_along_axis(distances, order, axis=1)
    tied = np.any(ranked[:, 1:] == ranked[:, :-1], axis=1)
    if tied.any():
        order[tied] = np.argsort(distances[tied], axis=1, kind="stable")
    return order


def knn_shapley(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    k: int = 5,
    *,
    memory_bytes: int = DEFAULT_MEMORY,
    workers: int | None = None,
) -> np.ndarray:
    """One float64 value per training point: its exact Shapley value to a KNN classifier's
    accuracy on the test points (Jia et al. 2019, Theorem 1). `memory_bytes` bounds the
    working arrays of one chunk of test points; `workers` threads (default: all cores)
    each hold one chunk."""
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    _check(x_train, y_train, x_test, y_test, k)
    n = len(x_train)
    train_norms = np.einsum("ij,ij->i", x_train, x_train)
    ranks = np.arange(1, n, dtype=np.float64)  # i = 1 .. N-1 (1-based)
    factor = np.minimum(k, ranks) / (k * ranks)
    # At most CHUNK_POINTS test points per chunk, so that even small jobs spread over the
    # threads; never more than the memory bound allows.
    chunk = max(1, min(len(x_test), memory_bytes // (8 * 5 * n), CHUNK_POINTS))
    starts = range(0, len(x_test), chunk)

    def part(start: int) -> np.ndarray:
        points, labels = x_test[start : start + chunk], y_test[start : start + chunk]
        distances = train_norms[None, :] - 2.0 * (points @ x_train.T)  # + |x_test|², same order
        order = _nearest_first(distances)
        del distances
        matches = (y_train[order] == labels[:, None]).astype(np.float64)
        steps = (matches[:, :-1] - matches[:, 1:]) * factor  # d_i for i = 1 .. N-1
        # s_i = m_N / N + d_{N-1} + … + d_i, summed from the far end as the recursion does.
        tail = np.concatenate([matches[:, -1:] / n, steps[:, ::-1]], axis=1)
        scores = np.cumsum(tail, axis=1)[:, ::-1]
        return np.bincount(order.ravel(), weights=scores.ravel(), minlength=n)

    values = np.zeros(n)
    # numpy sorts without the GIL, so threads use every core; chunks are fixed by
    # `memory_bytes` alone and added in order, so the result never depends on `workers`.
    workers = max(1, min(workers or os.cpu_count() or 1, len(starts)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for partial in pool.map(part, starts):
            values += partial
    return values / len(x_test)
