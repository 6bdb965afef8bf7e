"""The estimators keep scikit-learn's estimator contract without subclassing BaseEstimator."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.base import clone

from quotepart.errors import InputError
from quotepart.valuation import SAMPLERS, ExactBanzhaf, ExactShapley, PermutationShapley

ESTIMATORS = [ExactShapley, ExactBanzhaf, *SAMPLERS.values()]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_get_params_are_the_init_keywords_sorted(estimator: type) -> None:
    keywords = [p for p in inspect.signature(estimator.__init__).parameters if p != "self"]
    params = estimator().get_params()
    assert list(params) == sorted(keywords)
    assert params == {
        p.name: p.default
        for p in inspect.signature(estimator.__init__).parameters.values()
        if p.name != "self"
    }


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_scikit_learn_clones_them(estimator: type) -> None:
    original = estimator(n_jobs=2)
    copy = clone(original)
    assert copy is not original
    assert type(copy) is estimator
    assert copy.get_params() == original.get_params()


def test_set_params_sets_known_names_and_refuses_others() -> None:
    estimator = PermutationShapley()
    assert estimator.set_params(max_evaluations=50, random_state=3) is estimator
    assert (estimator.max_evaluations, estimator.random_state) == (50, 3)
    with pytest.raises(InputError, match="no parameter 'max_evals'"):
        estimator.set_params(max_evals=50)


def test_repr_shows_the_parameters_that_differ_from_their_defaults() -> None:
    assert repr(PermutationShapley()) == "PermutationShapley()"
    assert repr(PermutationShapley(max_evaluations=5, random_state=3)) == (
        "PermutationShapley(max_evaluations=5, random_state=3)"
    )
    estimator = PermutationShapley().set_params(monitor=np.zeros(3))  # compares element-wise
    assert repr(estimator).startswith("PermutationShapley(monitor=array(")
