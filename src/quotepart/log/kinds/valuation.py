"""`valuation.recorded`: contribution values of a model's inputs, with how they were found.

Values and error bars are decimal strings (entries hold no floats) read as exact
rationals. Method, parameters, seed and evaluation count are enough to run
`quotepart.valuation` again on the same assets and compare.
"""

from __future__ import annotations

import re
from dataclasses import field
from fractions import Fraction
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@entry_kind("valuation.recorded")
class ValuationRecorded(KindBody):
    model: Digest
    values: dict[Digest, str]  # player asset -> decimal string
    method: str
    evaluations: int
    converged: bool
    stderr: dict[Digest, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    utility: str | None = None  # what was scored, e.g. "accuracy on the held-out 20 %"

    def value_of(self, asset: Digest) -> Fraction | None:
        text = self.values.get(asset)
        return None if text is None else Fraction(text)

    def to_body(self) -> RawBody:
        body: RawBody = {
            "model": str(self.model),
            "values": {str(k): v for k, v in sorted(self.values.items())},
            "stderr": {str(k): v for k, v in sorted(self.stderr.items())},
            "method": self.method,
            "parameters": self.parameters,
            "evaluations": self.evaluations,
            "converged": self.converged,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.utility is not None:
            body["utility"] = self.utility
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "model", "values", "stderr", "method", "parameters", "evaluations", "converged",
            "seed", "utility",
        )  # fmt: skip
        model = Digest.parse(read.text("model"))
        values = _decimal_map(read, "values")
        stderr = _decimal_map(read, "stderr")
        if not values:
            raise MalformedEntryError(
                f"{cls.KIND}: a valuation values at least one player", hint="pass its values"
            )
        if model in values:
            raise MalformedEntryError(
                f"{cls.KIND}: model {model} is valued as its own input",
                hint="players are the model's inputs",
            )
        if not set(stderr) <= set(values):
            raise MalformedEntryError(
                f"{cls.KIND}: error bars for players that have no value",
                hint="stderr keys are a subset of values keys",
            )
        if any(Fraction(v) < 0 for v in stderr.values()):
            raise MalformedEntryError(f"{cls.KIND}: a negative error bar", hint="stderr >= 0")
        parameters = read.mapping("parameters", optional=True)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()):
            raise MalformedEntryError(
                f"{cls.KIND}: parameters map names to strings, got {parameters!r}",
                hint="entries hold no floats: write parameters as strings",
            )
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise MalformedEntryError(f"{cls.KIND}: seed must be an integer, got {seed!r}")
        return cls(
            model=model,
            values=values,
            method=read.text("method", max_length=64),
            evaluations=read.integer("evaluations"),
            converged=read.boolean("converged"),
            stderr=stderr,
            parameters=parameters,
            seed=seed,
            utility=read.text("utility", optional=True),
        )


def _decimal_map(read: BodyReader, name: str) -> dict[Digest, str]:
    raw = read.mapping(name, optional=True)
    out: dict[Digest, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _DIGEST_RE.match(key):
            raise MalformedEntryError(
                f"{read.kind}: {name} keys are asset digests, got {key!r}",
                hint="players are assets named sha256:<hex>",
            )
        read.decimal_value(f"{name}[{key}]", value)
        out[Digest.parse(key)] = value
    return out
