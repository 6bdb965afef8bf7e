"""OpenLineage export: each recorded run as a START and a COMPLETE (or FAIL) `RunEvent`.

Lineage tools (Marquez, DataHub, OpenMetadata) then show quotepart's runs beside those
of Airflow, Spark and dbt. Events are plain JSON following the OpenLineage 2-0-2 spec,
so `openlineage-python` stays a test dependency; the tests check every event with it.

* `run.runId` is the run's ULID as a UUID, so exporting twice gives the same ids and an
  ingested run (`quotepart.provenance.ingest`) exports under the id it came with.
* Jobs and datasets live in the namespace `quotepart://<log origin>`; a dataset's name
  is the asset digest, which is what quotepart calls it everywhere.
* Two custom facets carry what OpenLineage has no facet for: `quotepart_contributions`
  (who contributed a dataset, in which role, with which share) and `quotepart_run`
  (run id, operator, code version, leaf index in the log).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import metadata as package_metadata
from typing import Any

from ulid import ULID

from quotepart.errors import NotFoundError
from quotepart.ids import RunId, format_timestamp
from quotepart.log.kinds import format_fraction
from quotepart.provenance.export.prov import ProvenanceGraph, RecordedAsset, RecordedRun
from quotepart.provenance.service import Provenance
from quotepart.store.queries import provenance as queries

SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA_URL = f"{SPEC_URL}#/$defs/RunEvent"
FACET_SCHEMA_BASE = "https://quotepart.dev/spec/openlineage/facets/1-0-0"
"""The quotepart facets' schemas (`tests/vectors/openlineage/Quotepart*.json` hold them)."""

CONTRIBUTIONS_FACET = "quotepart_contributions"
RUN_FACET = "quotepart_run"
CONTRIBUTIONS_FACET_SCHEMA_URL = (
    f"{FACET_SCHEMA_BASE}/QuotepartContributionsDatasetFacet.json"
    "#/$defs/QuotepartContributionsDatasetFacet"
)
RUN_FACET_SCHEMA_URL = f"{FACET_SCHEMA_BASE}/QuotepartRunFacet.json#/$defs/QuotepartRunFacet"

_STANDARD_FACET_SCHEMAS = {
    "schema": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "documentation": "https://openlineage.io/spec/facets/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet",
    "ownership": "https://openlineage.io/spec/facets/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet",
    "errorMessage": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
}

FIELD_TYPES_OUT = {
    "sc:Boolean": "boolean",
    "sc:Date": "date",
    "sc:DateTime": "timestamp",
    "sc:Float": "double",
    "sc:Integer": "long",
    "sc:Text": "string",
    "sc:URL": "string",
}
"""Croissant field types as the type names Spark and most warehouses report."""


def producer() -> str:
    """The `producer` URI of every event: this release of quotepart."""
    try:
        version = package_metadata.version("quotepart")
    except package_metadata.PackageNotFoundError:
        version = "unknown"
    return f"https://pypi.org/project/quotepart/{version}/"


def namespace_of(origin: str) -> str:
    """The OpenLineage namespace of a log's jobs and datasets."""
    return f"quotepart://{origin}"


def openlineage_run_id(run: RunId) -> str:
    """The run's ULID as the UUID OpenLineage wants (same 128 bits, so it maps back)."""
    return str(ULID.from_str(run.ulid).to_uuid())


def _facet(schema_url: str, by: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": by, "_schemaURL": schema_url, **fields}


def _dataset(graph: ProvenanceGraph, asset: RecordedAsset, by: str) -> dict[str, Any]:
    body = asset.body
    facets: dict[str, Any] = {}
    fields = body.metadata.get("fields")
    if isinstance(fields, list) and fields:
        facets["schema"] = _facet(
            _STANDARD_FACET_SCHEMAS["schema"],
            by,
            fields=[
                {"name": field["name"], "type": FIELD_TYPES_OUT.get(field["type"], "string")}
                for field in fields
            ],
        )
    if body.description:
        facets["documentation"] = _facet(
            _STANDARD_FACET_SCHEMAS["documentation"], by, description=body.description
        )
    contributions = graph.contributions_to(body.asset)
    if contributions:
        owners = {str(c.party): None for c in contributions}
        facets["ownership"] = _facet(
            _STANDARD_FACET_SCHEMAS["ownership"],
            by,
            owners=[{"name": owner, "type": "CONTRIBUTOR"} for owner in owners],
        )
    facets[CONTRIBUTIONS_FACET] = _facet(
        CONTRIBUTIONS_FACET_SCHEMA_URL,
        by,
        asset=str(body.asset),
        assetKind=body.asset_kind,
        name=body.name,
        leafIndex=asset.leaf_index,
        contributions=[
            {
                "party": str(c.party),
                "name": graph.party_name(c.party),
                "role": c.role,
                "share": format_fraction(c.share),
            }
            for c in contributions
        ],
    )
    return {
        "namespace": namespace_of(graph.origin),
        "name": str(body.asset),
        "facets": facets,
    }


def _run_events(graph: ProvenanceGraph, run: RecordedRun, by: str) -> list[dict[str, Any]]:
    body = run.body
    run_facets: dict[str, Any] = {
        RUN_FACET: _facet(
            RUN_FACET_SCHEMA_URL,
            by,
            run=str(body.run),
            operator=str(body.operator),
            operatorName=graph.party_name(body.operator),
            status=body.status,
            code=dict(body.code),
            leafIndex=run.leaf_index,
            logOrigin=graph.origin,
            uses={str(d): role for d, role in sorted(body.uses.items())},
        )
    }
    if body.error is not None:
        run_facets["errorMessage"] = _facet(
            _STANDARD_FACET_SCHEMAS["errorMessage"],
            by,
            message=body.error,
            # quotepart records Python runs; an ingested run's language is not known
            programmingLanguage="unknown" if body.source else "python",
        )
    common = {
        "producer": by,
        "schemaURL": RUN_EVENT_SCHEMA_URL,
        "run": {"runId": openlineage_run_id(body.run), "facets": run_facets},
        "job": {"namespace": namespace_of(graph.origin), "name": body.name, "facets": {}},
        # every dataset read is an input; the run facet's `uses` names those only used
        # (evaluation data, …), which the model was not made from
        "inputs": [
            _dataset(graph, graph.assets[d], by) for d in sorted({*body.inputs, *body.uses})
        ],
        "outputs": [_dataset(graph, graph.assets[d], by) for d in sorted(set(body.outputs))],
    }
    return [
        {"eventType": "START", "eventTime": format_timestamp(body.started), **common},
        {
            "eventType": "COMPLETE" if body.status == "succeeded" else "FAIL",
            "eventTime": format_timestamp(body.ended),
            **common,
        },
    ]


def openlineage_events(
    ws: Provenance, run_ids: Iterable[RunId | str] | None = None
) -> list[dict[str, Any]]:
    """START and COMPLETE/FAIL `RunEvent`s (as JSON objects) for `run_ids`, or every run,
    oldest first.

    Raises:
        InputError: a malformed run id.
        NotFoundError: a run that is not in the log.
    """
    wanted = (
        None
        if run_ids is None
        else [r if isinstance(r, RunId) else RunId.parse(r) for r in run_ids]
    )
    graph = ProvenanceGraph.read(ws, run_ids=wanted) if wanted is not None else _all_runs(ws)
    missing = sorted({str(r) for r in wanted or ()} - {str(r) for r in graph.runs})
    if missing:
        raise NotFoundError(
            f"no run {missing[0]} in this log",
            hint="list runs with `quotepart export openlineage --all`; ids look like run:<ULID>",
        )
    by = producer()
    events: list[dict[str, Any]] = []
    for run in sorted(graph.runs.values(), key=lambda r: r.leaf_index):
        events.extend(_run_events(graph, run, by))
    return events


def _all_runs(ws: Provenance) -> ProvenanceGraph:
    """Every run with just the assets and parties its events name (not the whole log)."""
    with ws.ledger.read() as conn:
        ids = [RunId.parse(run) for run in queries.run_ids(conn)]
    return ProvenanceGraph.read(ws, run_ids=ids)


def export_openlineage(ws: Provenance, run_ids: Iterable[RunId | str] | None = None) -> str:
    """The events of `openlineage_events` as JSON lines, the form lineage backends ingest.

    Raises:
        InputError: a malformed run id.
        NotFoundError: a run that is not in the log.
    """
    return "".join(
        json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n"
        for event in openlineage_events(ws, run_ids)
    )


__all__ = [
    "CONTRIBUTIONS_FACET",
    "CONTRIBUTIONS_FACET_SCHEMA_URL",
    "RUN_EVENT_SCHEMA_URL",
    "RUN_FACET",
    "RUN_FACET_SCHEMA_URL",
    "export_openlineage",
    "namespace_of",
    "openlineage_events",
    "openlineage_run_id",
    "producer",
]
