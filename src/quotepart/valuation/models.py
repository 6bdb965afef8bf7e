"""A ready-made utility: train a scikit-learn estimator on a coalition's records, score it.

Players are groups of training records (cohorts, datasets) or single records. The
coalitions a model cannot be trained on are handled explicitly, never by a silent
default:

* the empty coalition scores `empty_score`; by default the score of always predicting
  the most frequent label of the whole training set (a fixed, documented baseline);
* a coalition whose records hold one class only scores a model that always predicts
  that class (most classifiers refuse to fit one class).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from quotepart.errors import InputError

# scikit-learn is imported where a model is fitted: `import quotepart.valuation` must not pay for it.


class ModelUtility:
    """v(S) = score on (x_test, y_test) of `estimator` trained on the records of S."""

    def __init__(
        self,
        estimator: Any,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        *,
        groups: Mapping[Hashable, Sequence[int]] | None = None,
        empty_score: float | None = None,
    ) -> None:
        self.estimator = estimator
        self.x_train, self.y_train = np.asarray(x_train), np.asarray(y_train)
        self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test)
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise InputError(
                f"features and labels differ in length: train {len(self.x_train)} vs "
                f"{len(self.y_train)}, test {len(self.x_test)} vs {len(self.y_test)}",
                hint="pass one label per row",
            )
        if groups is None:
            groups = {i: [i] for i in range(len(self.y_train))}
        self.groups = {player: np.asarray(rows, dtype=np.int64) for player, rows in groups.items()}
        for player, rows in self.groups.items():
            if rows.size == 0 or rows.min() < 0 or rows.max() >= len(self.y_train):
                raise InputError(
                    f"player {player!r} names no records or records outside the training set",
                    hint=f"record indices run from 0 to {len(self.y_train) - 1}",
                )
        if empty_score is None:
            from sklearn.dummy import DummyClassifier

            baseline = DummyClassifier(strategy="most_frequent").fit(self.x_train, self.y_train)
            empty_score = float(baseline.score(self.x_test, self.y_test))
        self.empty_score = empty_score

    @property
    def players(self) -> list[Hashable]:
        return list(self.groups)

    def __call__(self, coalition: frozenset[Any]) -> float:
        from sklearn.base import clone
        from sklearn.dummy import DummyClassifier

        if not coalition:
            return self.empty_score
        rows = np.concatenate([self.groups[player] for player in sorted(coalition, key=repr)])
        labels = self.y_train[rows]
        if np.unique(labels).size == 1:
            model: Any = DummyClassifier(strategy="constant", constant=labels[0])
        else:
            model = clone(self.estimator)
        model.fit(self.x_train[rows], labels)
        return float(model.score(self.x_test, self.y_test))
