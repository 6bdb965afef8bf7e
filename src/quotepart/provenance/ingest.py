"""Ingest OpenLineage run events (Airflow, Spark, dbt emit them) as runs and assets.

Pipelines that already report lineage need no quotepart code to join the log: their
events become `run.recorded` entries, and the datasets those runs read and wrote become
assets that contributions can then be recorded against.

* Events are paired by `run.runId`: a run is recorded once it has a COMPLETE, FAIL or
  ABORT event; its START, RUNNING and OTHER events add datasets and facets.
* A dataset is identified by its OpenLineage namespace, name and (if given) version:
  its digest is the SHA-256 of the canonical JSON of those (`canonical-json` scheme).
* The run id is the event's UUID as a ULID, so ingesting the same events again records
  nothing new: runs the log already holds are reported, not appended twice.
* Events that cannot become a run are reported in `IngestReport.skipped` with the
  reason; everything valid is appended in one transaction, or nothing is.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ulid import ULID

from quotepart.errors import InputError
from quotepart.ids import Digest, PartyId, RunId
from quotepart.log import canonicalize
from quotepart.log.kinds import AssetRegistered, EntryBody, RunRecorded
from quotepart.provenance.service import Provenance
from quotepart.store.queries import provenance as queries

EVENT_TYPES = frozenset({"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"})
TERMINAL_TYPES = frozenset({"COMPLETE", "ABORT", "FAIL"})

_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")  # what asset metadata accepts as a URL
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")  # Java emits nanoseconds; Python reads micros

FIELD_TYPES_IN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(bool|boolean)$"), "sc:Boolean"),
    (
        re.compile(r"^(tinyint|smallint|short|byte|int|int\d+|integer|bigint|long|uint\d+)$"),
        "sc:Integer",
    ),
    (re.compile(r"^(float|float\d+|double|real|decimal|numeric|number)\b"), "sc:Float"),
    (re.compile(r"^date$"), "sc:Date"),
    (re.compile(r"^(timestamp|datetime)"), "sc:DateTime"),
)
"""OpenLineage schema types (free text: Spark, SQL and dbt spellings) as Croissant types;
anything else is text."""


@dataclass(frozen=True, slots=True)
class SkippedEvent:
    """An event, or a whole run's events, that was not ingested, and why."""

    position: int | None  # 0-based place of the event in the input; None for a whole run
    run_id: str | None  # the OpenLineage runId, when the event had a readable one
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "run_id": self.run_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one `ingest_openlineage` call did."""

    recorded: tuple[RunId, ...] = ()  # runs appended now
    assets: tuple[Digest, ...] = ()  # datasets registered now
    already_recorded: tuple[RunId, ...] = ()  # runs the log held before this call
    skipped: tuple[SkippedEvent, ...] = ()
    leaf_indexes: tuple[int, ...] = ()  # of the entries appended now

    def to_json(self) -> dict[str, Any]:
        return {
            "recorded": [str(r) for r in self.recorded],
            "assets": [str(a) for a in self.assets],
            "already_recorded": [str(r) for r in self.already_recorded],
            "skipped": [s.to_json() for s in self.skipped],
            "leaf_indexes": list(self.leaf_indexes),
        }


class _SkipError(Exception):
    """Raised while reading one event or run: it is reported, not ingested."""


@dataclass(frozen=True, slots=True)
class _Dataset:
    namespace: str
    name: str
    version: str | None
    fields: tuple[tuple[str, str], ...]  # (name, Croissant type), empty without a schema facet

    @property
    def identity(self) -> dict[str, str]:
        document = {"namespace": self.namespace, "name": self.name}
        if self.version is not None:
            document["version"] = self.version
        return document

    @property
    def digest(self) -> Digest:
        return Digest.of_bytes(canonicalize(self.identity))


@dataclass(slots=True)
class _Event:
    position: int
    event_type: str
    time: datetime
    run_uuid: uuid.UUID
    job_namespace: str
    job_name: str
    producer: str
    run_facets: dict[str, Any]
    job_facets: dict[str, Any]
    inputs: list[_Dataset] = field(default_factory=list)
    outputs: list[_Dataset] = field(default_factory=list)


def dataset_digest(namespace: str, name: str, version: str | None = None) -> Digest:
    """The asset digest of an OpenLineage dataset (namespace, name and optional version)."""
    return _Dataset(namespace, name, version, ()).digest


def field_type(openlineage_type: str | None) -> str:
    """The Croissant data type of an OpenLineage schema field type."""
    text = (openlineage_type or "").strip().lower()
    for pattern, croissant in FIELD_TYPES_IN:
        if pattern.search(text):
            return croissant
    return "sc:Text"


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _SkipError(f"{what} is missing or not a string")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _SkipError(f"{what} is not a JSON object")
    return value


def _time(value: Any) -> datetime:
    text = _text(value, "eventTime")
    try:
        moment = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", text))
    except ValueError as exc:
        raise _SkipError(f"eventTime {text!r} is not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise _SkipError(f"eventTime {text!r} has no time zone")
    return moment


def _dataset(value: Any, what: str) -> _Dataset:
    item = _mapping(value, what)
    facets = _mapping(item.get("facets"), f"{what}.facets")
    version_facet = _mapping(facets.get("version"), f"{what}.facets.version")
    version = version_facet.get("datasetVersion")
    schema = _mapping(facets.get("schema"), f"{what}.facets.schema")
    fields = []
    for column in schema.get("fields") or []:
        if isinstance(column, dict) and isinstance(column.get("name"), str):
            name = column["name"]
            if name.strip() and len(name) <= 10_000:
                fields.append((name, field_type(column.get("type"))))
    return _Dataset(
        _text(item.get("namespace"), f"{what}.namespace"),
        _text(item.get("name"), f"{what}.name"),
        str(version) if version is not None else None,
        tuple(fields),
    )


def _datasets(value: Any, what: str) -> list[_Dataset]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _SkipError(f"{what} is not a list")
    return [_dataset(item, f"{what}[{i}]") for i, item in enumerate(value)]


def _parse_event(position: int, raw: Mapping[str, Any] | str | bytes) -> _Event:
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _SkipError(f"malformed JSON: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise _SkipError(f"not a JSON object but {type(raw).__name__}")
    run = _mapping(raw.get("run"), "run")
    if "runId" not in run:
        raise _SkipError("not a RunEvent: it has no run.runId (dataset and job events name no run)")
    run_id = _text(run.get("runId"), "run.runId")
    try:
        run_uuid = uuid.UUID(run_id)
    except ValueError as exc:
        raise _SkipError(f"run.runId {run_id!r} is not a UUID") from exc
    event_type = raw.get("eventType")
    if event_type not in EVENT_TYPES:
        raise _SkipError(
            f"unknown eventType {event_type!r}"
            if event_type is not None
            else "no eventType, so it cannot be paired with its run"
        )
    job = _mapping(raw.get("job"), "job")
    return _Event(
        position=position,
        event_type=event_type,
        time=_time(raw.get("eventTime")),
        run_uuid=run_uuid,
        job_namespace=_text(job.get("namespace"), "job.namespace"),
        job_name=_text(job.get("name"), "job.name"),
        producer=producer if isinstance(producer := raw.get("producer"), str) else "",
        run_facets=_mapping(run.get("facets"), "run.facets"),
        job_facets=_mapping(job.get("facets"), "job.facets"),
        inputs=_datasets(raw.get("inputs"), "inputs"),
        outputs=_datasets(raw.get("outputs"), "outputs"),
    )


def _dataset_url(dataset: _Dataset) -> str | None:
    """`namespace/name` when that is a URL (s3://bucket/key, postgres://host/db.table)."""
    if dataset.namespace == "file" and dataset.name.startswith("/"):
        candidate = f"file://{dataset.name}"
    elif "://" in dataset.namespace:
        candidate = f"{dataset.namespace.rstrip('/')}/{dataset.name.lstrip('/')}"
    else:
        return None
    return candidate if _URL_RE.match(candidate) and len(candidate) <= 10_000 else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _asset_body(dataset: _Dataset) -> AssetRegistered:
    description = f"OpenLineage dataset {dataset.name!r} in namespace {dataset.namespace!r}"
    if dataset.version is not None:
        description += f", version {dataset.version!r}"
    metadata: dict[str, Any] = {}
    url = _dataset_url(dataset)
    if url is not None:
        metadata["url"] = url
    if dataset.fields:
        metadata["fields"] = [{"name": name, "type": kind} for name, kind in dataset.fields]
    return AssetRegistered(
        asset=dataset.digest,
        asset_kind="dataset",
        name=_clip(dataset.name, 200),
        scheme="canonical-json",
        description=_clip(description, 10_000),
        metadata=metadata,
    )


def _strings(facet: Any, keys: Mapping[str, str]) -> dict[str, str]:
    """Facet fields (OpenLineage name -> quotepart name) that hold non-empty strings."""
    if not isinstance(facet, dict):
        return {}
    return {
        ours: _clip(facet[theirs], 10_000)
        for theirs, ours in keys.items()
        if isinstance(facet.get(theirs), str) and facet[theirs]
    }


def _merge(datasets: Iterable[_Dataset]) -> dict[Digest, _Dataset]:
    """One dataset per identity; the first with a schema gives the fields."""
    merged: dict[Digest, _Dataset] = {}
    for dataset in datasets:
        known = merged.get(dataset.digest)
        if known is None or (not known.fields and dataset.fields):
            merged[dataset.digest] = dataset
    return merged


def _versioned(datasets: dict[Digest, _Dataset]) -> dict[Digest, _Dataset]:
    """Drop a dataset named without a version where the same run also names a version
    of it: integrations often add the version facet only once a write has finished."""
    versioned = {(d.namespace, d.name) for d in datasets.values() if d.version is not None}
    return {
        digest: d
        for digest, d in datasets.items()
        if d.version is not None or (d.namespace, d.name) not in versioned
    }


def _error(events: list[_Event], final: _Event) -> str:
    for event in [final, *reversed(events)]:
        facet = event.run_facets.get("errorMessage")
        if isinstance(facet, dict) and isinstance(facet.get("message"), str) and facet["message"]:
            return _clip(facet["message"], 10_000)
    if final.event_type == "ABORT":
        return "aborted (OpenLineage ABORT event)"
    return "failed (OpenLineage FAIL event without an errorMessage facet)"


def _run_body(
    run_id: RunId, events: list[_Event], operator: PartyId
) -> tuple[RunRecorded, list[Digest]]:
    """The run entry of one run's events, and the digests of the datasets it names."""
    terminal = [e for e in events if e.event_type in TERMINAL_TYPES]
    if not terminal:
        raise _SkipError("the run has no COMPLETE, FAIL or ABORT event yet, so it has not ended")
    final = max(terminal, key=lambda e: (e.time, e.position))
    inputs = _versioned(_merge(d for e in events for d in e.inputs))
    outputs = {
        digest: dataset
        for digest, dataset in _versioned(_merge(d for e in events for d in e.outputs)).items()
        if digest not in inputs  # read and rewritten without a version: as Run.finish does
    }
    succeeded = final.event_type == "COMPLETE"
    if succeeded and not outputs:
        raise _SkipError(
            "a COMPLETE run with no outputs: quotepart records a successful run by what it made"
        )
    code = _strings(
        final.job_facets.get("sourceCodeLocation"),
        {"repoUrl": "repository", "url": "url", "version": "commit", "path": "path"},
    )
    engine = _strings(
        final.run_facets.get("processing_engine"),
        {"name": "engine", "version": "engine_version"},
    )
    body = RunRecorded(
        run=run_id,
        name=_clip(final.job_name, 200),
        operator=operator,
        status="succeeded" if succeeded else "failed",
        started=min(e.time for e in events),
        ended=max(e.time for e in events),
        inputs=tuple(sorted(inputs)),
        outputs=tuple(sorted(outputs)),
        code=code,
        environment=engine,
        error=None if succeeded else _error(events, final),
        source={
            "openlineage.run_id": str(final.run_uuid),
            "openlineage.job": _clip(f"{final.job_namespace}/{final.job_name}", 10_000),
            "openlineage.producer": _clip(final.producer, 10_000) or "unknown",
        },
    )
    return body, [*inputs, *outputs]


def _check(body: EntryBody) -> None:
    """The checks `sign_entry` makes, made here so one bad run is reported, not fatal."""
    try:
        type(body).from_body(body.to_body())
    except InputError as exc:
        raise _SkipError(exc.message) from exc


def ingest_openlineage(
    ws: Provenance,
    events: Iterable[Mapping[str, Any] | str | bytes],
    *,
    operator: PartyId,
) -> IngestReport:
    """Record the runs (and their datasets) that OpenLineage `events` describe.

    `events` are JSON objects or JSON text (one event each); `operator` is the party the
    runs are recorded for, whose key this workspace holds. Calling again with the same
    events (or more of them) records only runs the log does not hold yet.

    ```python
    report = ingest_openlineage(ws, map(json.loads, open("events.jsonl")), operator=etl)
    ```

    Raises:
        NotFoundError: `operator` is not registered, or its key is not held here.
        InputError: the valid runs together break a log rule (e.g. close a lineage
            cycle); nothing is written then.
    """
    ws.party_entry(operator)  # raises NotFoundError before anything is read
    skipped: list[SkippedEvent] = []
    by_run: dict[uuid.UUID, list[_Event]] = {}
    for position, raw in enumerate(events):
        try:
            event = _parse_event(position, raw)
        except _SkipError as exc:
            skipped.append(SkippedEvent(position, _run_id_of(raw), str(exc)))
            continue
        by_run.setdefault(event.run_uuid, []).append(event)

    run_ids = {key: RunId(str(ULID.from_uuid(key))) for key in by_run}
    with ws.ledger.read() as conn:
        known = set(queries.run_ids(conn, [str(r) for r in run_ids.values()]))
    # A dataset may be named by several runs, with its schema in only some events.
    every_dataset = _merge(
        d for evs in by_run.values() for e in evs for d in (*e.inputs, *e.outputs)
    )
    already: list[RunId] = []
    items: list[tuple[EntryBody, PartyId]] = []
    new_assets: dict[Digest, AssetRegistered] = {}
    recorded: list[RunId] = []
    for key, run_events in by_run.items():
        run_id = run_ids[key]
        if str(run_id) in known:
            already.append(run_id)
            continue
        try:
            body, datasets = _run_body(run_id, run_events, operator)
            _check(body)
            assets_needed = {}
            for digest in datasets:
                if digest not in new_assets and ws.asset_entry(digest) is None:
                    asset = _asset_body(every_dataset[digest])
                    _check(asset)
                    assets_needed[digest] = asset
        except _SkipError as exc:
            skipped.append(SkippedEvent(None, str(key), f"run {run_id}: {exc}"))
            continue
        new_assets.update(assets_needed)
        items.extend((asset, operator) for asset in assets_needed.values())
        items.append((body, operator))
        recorded.append(run_id)

    leaf_indexes: list[int] = []
    if items:
        try:
            leaf_indexes = ws.ledger.append_many(items)
        except InputError as exc:
            raise type(exc)(
                f"nothing was ingested: {exc.message}",
                hint=exc.hint or "fix or leave out the events of that run and ingest again",
            ) from exc
    return IngestReport(
        recorded=tuple(recorded),
        assets=tuple(new_assets),
        already_recorded=tuple(already),
        skipped=tuple(skipped),
        leaf_indexes=tuple(leaf_indexes),
    )


def _run_id_of(raw: Any) -> str | None:
    """The runId of an event that could not be read, if one can still be found in it."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    if isinstance(raw, Mapping) and isinstance(raw.get("run"), Mapping):
        run_id = raw["run"].get("runId")
        return run_id if isinstance(run_id, str) else None
    return None


__all__ = [
    "EVENT_TYPES",
    "IngestReport",
    "SkippedEvent",
    "dataset_digest",
    "field_type",
    "ingest_openlineage",
]
