"""scikit-learn's estimator contract (`get_params`, `set_params`, its repr) without scikit-learn.

The estimators follow scikit-learn (STYLE rule 10) but need nothing else from it, and
subclassing `sklearn.base.BaseEstimator` would import scikit-learn with
`quotepart.valuation`, a second or more, even for valuing a closed-form game. The
parameters are `__init__`'s keyword arguments, stored under their own names, as
scikit-learn requires; `sklearn.base.clone` works on these estimators as on its own.
"""

from __future__ import annotations

import inspect
from typing import Any, Self

from quotepart.errors import InputError


class Estimator:
    """Base of the valuation estimators: parameters read back from `__init__`'s signature."""

    @classmethod
    def _parameters(cls) -> dict[str, inspect.Parameter]:
        if cls.__init__ is object.__init__:
            return {}
        found = inspect.signature(cls.__init__).parameters.values()
        return {
            p.name: p
            for p in sorted(found, key=lambda p: p.name)
            if p.name != "self" and p.kind is not p.VAR_KEYWORD
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters by name, sorted; `deep` adds those of nested estimators as `name__key`."""
        params: dict[str, Any] = {}
        for name in self._parameters():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{key}", v) for key, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params: Any) -> Self:
        """Set parameters by name and return `self`, as scikit-learn's estimators do.

        Raises:
            InputError: a name that is not a parameter of this estimator.
        """
        known = self._parameters()
        for name, value in params.items():
            if name not in known:
                raise InputError(
                    f"{type(self).__name__} has no parameter {name!r}",
                    hint=f"its parameters are {', '.join(known)}",
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """The class and the parameters that differ from their defaults, as scikit-learn prints."""
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name, parameter in self._parameters().items()
            if not _is_default(getattr(self, name), parameter.default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if default is inspect.Parameter.empty:
        return False
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # arrays and the like compare element-wise
        return False
