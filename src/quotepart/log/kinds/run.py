"""`run.recorded`: an activity that used assets and generated assets (a PROV Activity).

Recorded once, when the run ends, with everything needed to say how an asset came to
be: inputs, outputs, parameters, code version, environment, times and status. A run
that raised is recorded too, as `failed` with its error, so failures stay in the record.

Version 2 tells what a run *learned from* apart from what it only *used*: `inputs` are
the assets its outputs were made from (they earn a share of what the outputs earn),
and `uses` maps every other asset it used to its role (`evaluation` for the data a
model is scored on, `code`, `tokenizer`, `reference`). In PROV both are `used`; the
role is the difference. A v1 entry decodes with `uses` empty: every asset it names
was learned from, as v1 meant.
"""

from __future__ import annotations

import re
from dataclasses import field
from datetime import datetime
from typing import Any, Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest, PartyId, RunId, format_timestamp, parse_timestamp
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

RUN_STATUSES = frozenset({"failed", "succeeded"})
USE_ROLES = frozenset({"code", "evaluation", "reference", "service", "tokenizer"})
"""Roles of an asset a run uses without learning from it (at most 11 characters: a
lineage edge's relation is `used:<role>`, in a 16-character column). `service`: the run
called a metered service (its usage is billed by the service's meters)."""
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _strings(read: BodyReader, field_name: str) -> dict[str, str]:
    value = read.mapping(field_name, optional=True)
    if not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 10_000 for k, v in value.items()
    ):
        raise MalformedEntryError(
            f"{read.kind}: {field_name} must map names to strings, got {value!r}",
            hint="parameters and versions are strings: entries hold no floats",
        )
    return value


def upcast_run_v1(body: RawBody) -> RawBody:
    """v1 runs named only `inputs`, all of them learned from."""
    return {**body, "uses": {}}


@entry_kind("run.recorded", version=2, upcasters={1: upcast_run_v1})
class RunRecorded(KindBody):
    run: RunId
    name: str
    operator: PartyId
    status: str
    started: datetime
    ended: datetime
    inputs: tuple[Digest, ...] = ()
    outputs: tuple[Digest, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)  # repository, commit, dirty, path
    environment: dict[str, str] = field(default_factory=dict)  # python, platform, packages
    error: str | None = None
    source: dict[str, str] = field(default_factory=dict)  # e.g. an ingested OpenLineage run
    uses: dict[Digest, str] = field(default_factory=dict)  # used, not learned from: role

    def used_as(self, role: str) -> tuple[Digest, ...]:
        """The assets this run used in `role` (e.g. "evaluation"), in digest order."""
        return tuple(sorted(d for d, r in self.uses.items() if r == role))

    def to_body(self) -> RawBody:
        body: RawBody = {
            "run": str(self.run),
            "name": self.name,
            "operator": str(self.operator),
            "status": self.status,
            "started": format_timestamp(self.started),
            "ended": format_timestamp(self.ended),
            "inputs": sorted({str(d) for d in self.inputs}),
            "outputs": sorted({str(d) for d in self.outputs}),
            "parameters": self.parameters,
            "code": self.code,
            "environment": self.environment,
            "uses": {str(d): role for d, role in sorted(self.uses.items())},
        }
        if self.error is not None:
            body["error"] = self.error
        if self.source:
            body["source"] = self.source
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "run", "name", "operator", "status", "started", "ended", "inputs", "outputs",
            "parameters", "code", "environment", "error", "source", "uses",
        )  # fmt: skip
        status = read.choice("status", RUN_STATUSES)
        inputs = tuple(Digest.parse(d) for d in read.text_list("inputs", pattern=_DIGEST_RE))
        outputs = tuple(Digest.parse(d) for d in read.text_list("outputs", pattern=_DIGEST_RE))
        uses = _uses(read)
        started = parse_timestamp(read.text("started"))
        ended = parse_timestamp(read.text("ended"))
        error = read.text("error", optional=True, max_length=10_000)
        if ended < started:
            raise MalformedEntryError(
                f"{cls.KIND}: the run ended ({body['ended']}) before it started ({body['started']})",
                hint="record the start and end times of the run",
            )
        if status == "succeeded" and not outputs:
            raise MalformedEntryError(
                f"{cls.KIND}: run {body.get('run')!r} succeeded but produced nothing",
                hint="call run.produce(asset) for what the run made, or record it as failed",
            )
        if set(inputs) & set(outputs):
            raise MalformedEntryError(
                f"{cls.KIND}: a run cannot both use and produce "
                f"{sorted(str(d) for d in set(inputs) & set(outputs))[0]}",
                hint="an asset that a run changes is a new asset with a new digest",
            )
        both = sorted(str(d) for d in set(uses) & (set(inputs) | set(outputs)))
        if both:
            raise MalformedEntryError(
                f"{cls.KIND}: {both[0]} is both in uses and among the run's inputs or outputs",
                hint="an asset a run learned from is an input; uses holds only what it did not",
            )
        if (status == "failed") != (error is not None):
            raise MalformedEntryError(
                f"{cls.KIND}: a failed run carries its error and only a failed run does",
                hint="set status 'failed' together with error",
            )
        return cls(
            run=RunId.parse(read.text("run")),
            name=read.name("name"),
            operator=PartyId.parse(read.text("operator")),
            status=status,
            started=started,
            ended=ended,
            inputs=inputs,
            outputs=outputs,
            parameters=_strings(read, "parameters"),
            code=_strings(read, "code"),
            environment=_strings(read, "environment"),
            error=error,
            source=_strings(read, "source"),
            uses=uses,
        )


def _uses(read: BodyReader) -> dict[Digest, str]:
    value = read.mapping("uses")
    if not all(
        isinstance(d, str) and _DIGEST_RE.match(d) and role in USE_ROLES
        for d, role in value.items()
    ):
        raise MalformedEntryError(
            f"{read.kind}: uses must map asset digests to a role, got {value!r}",
            hint=f"roles of an asset used but not learned from: {', '.join(sorted(USE_ROLES))}",
        )
    return {Digest.parse(d): role for d, role in value.items()}


def describe_value(value: Any) -> str:
    """A run parameter as text: entries hold no floats, and `repr` round-trips them."""
    return value if isinstance(value, str) else repr(value)
