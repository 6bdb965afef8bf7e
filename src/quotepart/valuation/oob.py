"""Data-OOB (Kwon & Zou, ICML 2023): record values from a bagged model's out-of-bag votes.

Each record's value is the share of the bootstrap models that did *not* train on it and
still predicted its label correctly. Mislabelled or atypical records score low. It
needs no retraining per coalition: one bagging fit values every record.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quotepart.errors import InputError


def data_oob(
    x: Any,
    y: Any,
    *,
    estimator: Any = None,
    n_estimators: int = 200,
    random_state: int = 0,
    n_jobs: int = 1,
) -> np.ndarray:
    """One value in [0, 1] per record: its out-of-bag accuracy across `n_estimators`
    bootstrap models (decision trees unless `estimator` is given).

    Raises:
        InputError: mismatched shapes, too few estimators, or records that no model
            left out of its bootstrap sample (raise `n_estimators`).
    """
    from sklearn.ensemble import BaggingClassifier
    from sklearn.tree import DecisionTreeClassifier

    features, labels = np.asarray(x), np.asarray(y)
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels):
        raise InputError(
            f"features of shape {features.shape} and labels of shape {labels.shape} do not match",
            hint="pass X with one row per record and one label per row",
        )
    if n_estimators < 10:
        raise InputError(
            f"n_estimators={n_estimators} is too few for out-of-bag estimates",
            hint="use 100 or more",
        )
    bag = BaggingClassifier(
        estimator=estimator if estimator is not None else DecisionTreeClassifier(),
        n_estimators=n_estimators,
        bootstrap=True,
        random_state=random_state,
        n_jobs=n_jobs,
    ).fit(features, labels)
    correct = np.zeros(len(labels))
    counted = np.zeros(len(labels))
    for model, sample in zip(bag.estimators_, bag.estimators_samples_, strict=True):
        out = np.ones(len(labels), dtype=bool)
        out[sample] = False
        rows = np.flatnonzero(out)
        if rows.size:
            predicted = bag.classes_[np.asarray(model.predict(features[rows]), dtype=np.int64)]
            correct[rows] += predicted == labels[rows]
            counted[rows] += 1
    if np.any(counted == 0):
        raise InputError(
            f"{int(np.sum(counted == 0))} records were in every bootstrap sample",
            hint="raise n_estimators so that every record is left out at least once",
        )
    return correct / counted
