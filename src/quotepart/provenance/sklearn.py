"""Record a scikit-learn `fit` without further code: `ws.track(estimator, operator=lab)`.

`fit(X, y)` on the wrapper becomes one recorded run: the training data is registered
as a dataset (derived from the cohorts or datasets named in `uses`, when given), the
fitted model is registered with model-card fields (estimator, parameters, framework,
training data, metrics on `evaluate_on`), and the run links them. The evaluation data
is recorded as used in the role `evaluation`, not as an input the model learned from: it
earns nothing unless the model's policy gives the `evaluation` role a part. Any estimator or
Pipeline works; everything else (`predict`, `score`, attributes) passes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from quotepart.errors import AlreadyRegisteredError
from quotepart.ids import Digest, PartyId
from quotepart.provenance.assets import Described, describe_data, estimator_parameters
from quotepart.provenance.runs import AssetRef, Run, digests

if TYPE_CHECKING:
    from quotepart.provenance.service import Provenance


class TrackedEstimator:
    """A scikit-learn estimator whose `fit` is recorded in the workspace's log."""

    def __init__(
        self,
        recorder: Provenance,
        estimator: Any,
        *,
        operator: PartyId,
        name: str | None = None,
        uses: Sequence[AssetRef] = (),
        intended_use: str | None = None,
        limitations: str | None = None,
        evaluate_on: tuple[Any, Any] | None = None,
        license: str | None = None,
    ) -> None:
        self.estimator = estimator
        self.model_name = name or type(estimator).__name__
        self.model: Digest | None = None
        self.last_run: Run | None = None
        self._recorder = recorder
        self._operator = operator
        self._uses = digests(uses)
        self._intended_use = intended_use
        self._limitations = limitations
        self._evaluate_on = evaluate_on
        self._license = license

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> TrackedEstimator:  # noqa: N803
        recorder, operator = self._recorder, self._operator
        parameters = {f"estimator.{k}": v for k, v in estimator_parameters(self.estimator).items()}
        parameters.update({f"fit.{k}": v for k, v in fit_params.items()})
        with recorder.run(
            f"fit {self.model_name}", operator=operator, parameters=parameters
        ) as run:
            self.last_run = run
            training = self._training_asset((X, y) if y is not None else X)
            run.use(training, *self._uses)
            if self._evaluate_on is not None:
                described = describe_data(
                    self._evaluate_on, name=f"evaluation data of {self.model_name}"
                )
                run.evaluate_with(self._used(described))
            self.estimator.fit(X, y, **fit_params)
            metrics = {}
            if self._evaluate_on is not None:
                metrics["score"] = self.estimator.score(*self._evaluate_on)
            self.model = recorder.register_model(
                self.estimator,
                name=self.model_name,
                by=operator,
                intended_use=self._intended_use,
                limitations=self._limitations,
                metrics=metrics,
                training_data=[training],
                license=self._license,
            )
            run.produce(self.model)
        return self

    def _training_asset(self, data: Any) -> Digest:
        """The training set as an asset: the one asset in `uses` when it is exactly that
        content, otherwise a dataset derived from everything in `uses`."""
        name = f"training data of {self.model_name}"
        described = describe_data(data, name=name, derived_from=self._uses)
        if described.digest in self._uses:
            return described.digest
        return self._used(described)

    def _used(self, described: Described) -> Digest:
        """Data the run uses: registered in the operator's name, unless another party
        registered that content first (then it is theirs, and used as it may be)."""
        try:
            return self._recorder.register_described(described, by=self._operator)
        except AlreadyRegisteredError:
            return described.digest

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.estimator, attribute)
