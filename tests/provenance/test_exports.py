"""PROV, OpenLineage and Croissant exports, each read back or checked by the standard's own
library: `prov` deserialises both PROV serialisations, `openlineage-python` rebuilds every
event from its generated classes, and `mlcroissant` loads every Croissant document. The
OpenLineage events are also validated against the vendored JSON Schemas
(tests/vectors/openlineage/, see its README)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attr
import mlcroissant as mlc
import pandas as pd
import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.base import DatasetFacet, RunFacet
from openlineage.client.generated.documentation_dataset import DocumentationDatasetFacet
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.ownership_dataset import Owner, OwnershipDatasetFacet
from openlineage.client.generated.schema_dataset import (
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
)
from openlineage.client.serde import Serde
from prov.model import (
    PROV,
    PROV_LABEL,
    PROV_TYPE,
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvAttribution,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvUsage,
)
from sklearn.linear_model import LinearRegression
from ulid import ULID

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId, RunId
from quotepart.log.kinds import RunRecorded
from quotepart.provenance.export import (
    croissant_metadata,
    export_croissant,
    export_openlineage,
    export_prov,
    openlineage_events,
    prov_document,
)
from quotepart.provenance.export.openlineage import (
    CONTRIBUTIONS_FACET_SCHEMA_URL,
    RUN_FACET_SCHEMA_URL,
)
from quotepart.provenance.export.prov import QUOTEPART_NAMESPACE
from quotepart.provenance.overlap import OverlapWarning
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock

VECTORS = Path(__file__).parent.parent / "vectors" / "openlineage"
QP = f"{{{QUOTEPART_NAMESPACE}}}"  # how prov spells an expanded quotepart: attribute


# --------------------------------------------------------------------- a small world


@dataclass(frozen=True)
class World:
    ws: Workspace
    alice: PartyId  # person, annotator
    hospital: PartyId  # organisation, data
    coop: PartyId  # community, data
    lab: PartyId  # organisation, operator
    bot: PartyId  # software, in nothing
    data: Digest  # a table (merkle-records), CC-BY-4.0
    cohort: Digest  # derived from data
    batch: Digest  # labelling batch by alice and the coop
    blob: Digest  # one file (sha256), MIT, with a URL
    clean: Digest  # made by `preprocess` from data and blob
    model: Digest  # fit on clean and batch
    preprocess: RunRecorded
    fit: RunRecorded
    evaluate: RunRecorded  # failed


def build_world(folder: Path, clock: FakeClock) -> World:
    ws = init_workspace(folder, clock=clock)
    alice = ws.register_party("Alice", agent_type="person")
    hospital = ws.register_party("St Mary's", agent_type="organisation")
    coop = ws.register_party("Valley coop", roles=("contributor", "coop"), agent_type="community")
    lab = ws.register_party("Diagnostics Lab", roles=("operator",))
    bot = ws.register_party("ETL bot", roles=("operator",), agent_type="software")
    frame = pd.DataFrame(
        {"age": [30, 41, 52, 63], "weight": [70.5, 80.1, 65.0, 90.2], "ward": list("abac")}
    )
    data = ws.register_data(
        frame,
        name="Admissions 2025",
        by=hospital,
        license="CC-BY-4.0",
        creators=[hospital, "Dr Jane Roe"],
        description="Hospital admissions, one row per stay.",
    )
    ws.contribute(data, {hospital: "3/4", coop: "1/4"}, role="data", by=hospital)
    cohort = ws.register_cohort(
        frame[frame.ward == "a"], of=data, name="Ward A", by=hospital, selection="ward == 'a'"
    )
    labels = pd.DataFrame(
        {"text": ["good", "bad", "fine"], "label": ["pos", "neg", "pos"]}
        | {"annotator": [str(alice), str(alice), str(coop)]}
    )
    batch = ws.register_labelling_batch(
        labels,
        name="Sentiment labels",
        by=alice,
        annotator_column="annotator",
        label_set=["pos", "neg"],
    )
    blob = ws.register_data(
        b"id,score\n1,2\n",
        name="scores.csv",
        by=hospital,
        license="MIT",
        url="https://example.org/scores.csv",
    )
    with ws.run("preprocess", operator=lab, parameters={"threshold": 0.5}) as run:
        run.use(data, blob)
        with pytest.warns(OverlapWarning, match="St Mary's"):  # the hospital's records
            clean = ws.register_data(frame[frame.age > 35], name="Admissions over 35", by=lab)
        run.produce(clean)
    tracked = ws.track(LinearRegression(), operator=lab, uses=[clean, batch], name="weight model")
    with pytest.warns(OverlapWarning, match="2 of 4 records .* in 'Ward A'"):
        tracked.fit(frame[["age"]], frame["weight"])  # Ward A's rows, without their ward
    model = tracked.model
    failing = ws.run("evaluate", operator=lab)  # as `with` records a block that raised
    failing.use(model)
    failing.finish(error="RuntimeError: GPU fell over")
    preprocess, fit, evaluate = ws.runs()
    return World(
        ws, alice, hospital, coop, lab, bot, data, cohort, batch, blob, clean, model,
        preprocess, fit, evaluate,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("exports") / "ws", FakeClock())
    yield built
    built.ws.close()


def test_the_world_is_what_the_tests_assume(world: World) -> None:
    assert [r.name for r in (world.preprocess, world.fit, world.evaluate)] == [
        "preprocess",
        "fit weight model",
        "evaluate",
    ]
    assert world.fit.outputs == (world.model,)
    assert world.evaluate.status == "failed"


# ------------------------------------------------------------------------------ PROV


def records(doc: ProvDocument, kind: type) -> list[Any]:
    return [record for record in doc.get_records(kind)]


def by_id(doc: ProvDocument, kind: type) -> dict[str, Any]:
    return {str(record.identifier): record for record in doc.get_records(kind)}


def pairs(doc: ProvDocument, kind: type) -> set[tuple[str, str]]:
    """(first, second) formal arguments of every relation of `kind`, as quotepart ids."""
    return {
        (str(record.formal_attributes[0][1]), str(record.formal_attributes[1][1]))
        for record in doc.get_records(kind)
    }


def attribute(record: Any, name: str) -> set[Any]:
    return {
        value for key, value in record.attributes if str(key.uri) == f"{QUOTEPART_NAMESPACE}{name}"
    }


@pytest.mark.parametrize("serialisation", ["json", "jsonld"])
def test_prov_reads_back_as_the_same_graph(world: World, serialisation: str) -> None:
    original = prov_document(world.ws.provenance)
    text = export_prov(world.ws.provenance, format=serialisation)
    back = ProvDocument.deserialize(content=text, format=serialisation)
    assert back == original
    assert len(records(back, ProvAgent)) == 5
    assert len(records(back, ProvEntity)) == len(world.ws.assets())
    assert len(records(back, ProvActivity)) == 3
    assert len(records(back, ProvAttribution)) == len(world.ws.contributions())


def test_prov_relations_say_who_did_what(world: World) -> None:
    doc = ProvDocument.deserialize(
        content=export_prov(world.ws.provenance, format="jsonld"), format="jsonld"
    )
    pre, fit, ev = (str(r.run) for r in (world.preprocess, world.fit, world.evaluate))
    runs = (world.preprocess, world.fit, world.evaluate)
    assert pairs(doc, ProvUsage) == {(str(r.run), str(d)) for r in runs for d in r.inputs}
    assert {
        (pre, str(world.data)),
        (pre, str(world.blob)),
        (fit, str(world.clean)),
        (fit, str(world.batch)),
        (ev, str(world.model)),
    } <= pairs(doc, ProvUsage)
    assert pairs(doc, ProvGeneration) == {(str(world.clean), pre), (str(world.model), fit)}
    assert (str(world.cohort), str(world.data)) in pairs(doc, ProvDerivation)
    assert pairs(doc, ProvAssociation) == {(run, str(world.lab)) for run in (pre, fit, ev)}
    shares = {
        (str(r.formal_attributes[0][1]), str(r.formal_attributes[1][1])): (
            attribute(r, "role"),
            attribute(r, "share"),
        )
        for r in records(doc, ProvAttribution)
    }
    assert shares[(str(world.data), str(world.hospital))] == ({"data"}, {"3/4"})
    assert shares[(str(world.data), str(world.coop))] == ({"data"}, {"1/4"})
    assert shares[(str(world.batch), str(world.alice))] == ({"annotation"}, {"2/3"})


def test_prov_types_agents_entities_and_activities(world: World) -> None:
    doc = ProvDocument.deserialize(content=export_prov(world.ws.provenance), format="json")
    agents = by_id(doc, ProvAgent)
    prov_type = {pid: set(a.get_attribute(PROV_TYPE)) for pid, a in agents.items()}
    assert prov_type[str(world.alice)] == {PROV["Person"]}
    assert prov_type[str(world.hospital)] == {PROV["Organization"]}
    assert prov_type[str(world.coop)] == {PROV["Organization"]}
    assert attribute(agents[str(world.coop)], "agentType") == {"community"}
    assert attribute(agents[str(world.coop)], "role") == {"contributor", "coop"}
    assert prov_type[str(world.bot)] == {PROV["SoftwareAgent"]}

    data = by_id(doc, ProvEntity)[str(world.data)]
    assert set(data.get_attribute(PROV_LABEL)) == {"Admissions 2025"}
    assert attribute(data, "assetKind") == {"dataset"}
    assert attribute(data, "scheme") == {"merkle-records"}
    assert attribute(data, "size") == {4}
    assert attribute(data, "license") == {"CC-BY-4.0"}
    fields = json.loads(next(iter(attribute(data, "fields"))))
    assert [f["name"] for f in fields] == ["age", "weight", "ward"]

    evaluate = by_id(doc, ProvActivity)[str(world.evaluate.run)]
    assert evaluate.get_startTime() == world.evaluate.started
    assert evaluate.get_endTime() == world.evaluate.ended
    assert attribute(evaluate, "status") == {"failed"}
    assert attribute(evaluate, "error") == {"RuntimeError: GPU fell over"}
    preprocess = by_id(doc, ProvActivity)[str(world.preprocess.run)]
    assert json.loads(next(iter(attribute(preprocess, "parameters")))) == {"threshold": "0.5"}


def test_prov_of_one_asset_is_its_upstream_lineage(world: World) -> None:
    doc = ProvDocument.deserialize(
        content=export_prov(world.ws.provenance, world.model), format="json"
    )
    entities = set(by_id(doc, ProvEntity))
    upstream = {world.model, world.clean, world.batch, world.data, world.blob, *world.fit.inputs}
    assert entities == {str(d) for d in upstream}
    assert set(by_id(doc, ProvActivity)) == {str(world.fit.run), str(world.preprocess.run)}
    # the lab ran both runs; the hospital, the coop and Alice contributed upstream data
    assert set(by_id(doc, ProvAgent)) == {
        str(p) for p in (world.lab, world.hospital, world.coop, world.alice)
    }
    assert (str(world.evaluate.run), str(world.model)) not in pairs(doc, ProvUsage)
    by_name = ProvDocument.deserialize(
        content=export_prov(world.ws.provenance, "Ward A"), format="json"
    )
    assert set(by_id(by_name, ProvEntity)) == {str(world.cohort), str(world.data)}
    assert pairs(by_name, ProvDerivation) == {(str(world.cohort), str(world.data))}


def test_prov_export_of_an_unknown_asset_says_so(world: World) -> None:
    missing = Digest.of_bytes(b"never registered")
    with pytest.raises(NotFoundError, match=f"no asset or run '{missing}'"):
        export_prov(world.ws.provenance, missing)
    with pytest.raises(InputError, match="unknown PROV format 'xml'"):
        export_prov(world.ws.provenance, format="xml")


def test_prov_export_is_deterministic(world: World) -> None:
    assert export_prov(world.ws.provenance, format="jsonld") == export_prov(
        world.ws.provenance, format="jsonld"
    )


# ----------------------------------------------------- a JSON Schema checker (a subset)


class SchemaChecker:
    """JSON Schema 2020-12, the keywords the OpenLineage schemas use, offline.

    `jsonschema` is not among this project's dependencies; this covers $ref (local and
    by `$id`), allOf/anyOf/oneOf/not, type, enum, required, properties,
    additionalProperties, items, minimum and the formats date-time, uri and uuid.
    """

    def __init__(self, *documents: dict[str, Any]) -> None:
        self.documents = {document["$id"]: document for document in documents}

    def errors(self, instance: Any, url: str) -> list[str]:
        base, _, _ = url.partition("#")
        return list(self._check(instance, self._resolve(url, base), base, "$"))

    def _resolve(self, ref: str, base: str) -> dict[str, Any]:
        target, _, pointer = ref.partition("#")
        node: Any = self.documents[target or base]
        for part in filter(None, pointer.split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict)
        return node

    def _check(self, value: Any, schema: dict[str, Any], base: str, path: str) -> Iterator[str]:
        if "$ref" in schema:
            ref = schema["$ref"]
            target = ref.partition("#")[0] or base
            yield from self._check(value, self._resolve(ref, base), target, path)
        for sub in schema.get("allOf", []):
            yield from self._check(value, sub, base, path)
        if "anyOf" in schema and not any(
            not list(self._check(value, s, base, path)) for s in schema["anyOf"]
        ):
            yield f"{path}: matches none of anyOf"
        if "oneOf" in schema:
            matching = sum(not list(self._check(value, s, base, path)) for s in schema["oneOf"])
            if matching != 1:
                yield f"{path}: matches {matching} of oneOf, not exactly 1"
        if "not" in schema and not list(self._check(value, schema["not"], base, path)):
            yield f"{path}: matches a schema it must not"
        kind = schema.get("type")
        if kind is not None and not _is_type(value, kind):
            yield f"{path}: {value!r} is not of type {kind}"
            return
        if "enum" in schema and value not in schema["enum"]:
            yield f"{path}: {value!r} is not one of {schema['enum']}"
        if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
            yield f"{path}: {value} is below {schema['minimum']}"
        if (
            "format" in schema
            and isinstance(value, str)
            and not _has_format(value, schema["format"])
        ):
            yield f"{path}: {value!r} is not a {schema['format']}"
        if isinstance(value, dict):
            for name in schema.get("required", []):
                if name not in value:
                    yield f"{path}: {name!r} is required"
            properties = schema.get("properties", {})
            for name, item in value.items():
                if name in properties:
                    yield from self._check(item, properties[name], base, f"{path}.{name}")
                elif schema.get("additionalProperties") is False:
                    yield f"{path}: unexpected property {name!r}"
                elif isinstance(schema.get("additionalProperties"), dict):
                    yield from self._check(
                        item, schema["additionalProperties"], base, f"{path}.{name}"
                    )
        if isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                yield from self._check(item, schema["items"], base, f"{path}[{index}]")


def _is_type(value: Any, kind: str | list[str]) -> bool:
    if isinstance(kind, list):
        return any(_is_type(value, k) for k in kind)
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[kind]


def _has_format(value: str, name: str) -> bool:
    try:
        if name == "date-time":
            return "T" in value and datetime.fromisoformat(value).tzinfo is not None
        if name == "uuid":
            return str(uuid.UUID(value)) == value.lower()
        if name == "uri":
            return bool(urlsplit(value).scheme)
    except ValueError:
        return False
    return True  # formats JSON Schema only annotates


@pytest.fixture(scope="module")
def checker() -> SchemaChecker:
    return SchemaChecker(*(json.loads(path.read_text()) for path in sorted(VECTORS.glob("*.json"))))


CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def test_the_schema_checker_rejects_what_the_spec_rejects(checker: SchemaChecker) -> None:
    good = {
        "eventType": "START",
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "producer": "https://example.org/p",
        "schemaURL": f"{CORE}#/$defs/RunEvent",
        "run": {
            "runId": str(uuid.uuid4()),
            "facets": {"x": {"_producer": "https://p", "_schemaURL": "https://s"}},
        },
        "job": {"namespace": "n", "name": "j"},
    }
    assert checker.errors(good, CORE) == []
    bad_facet = json.loads(json.dumps(good))
    del bad_facet["run"]["facets"]["x"]["_schemaURL"]
    assert checker.errors(bad_facet, CORE)
    assert checker.errors({**good, "eventType": "EXPLODED"}, CORE)
    assert checker.errors({**good, "run": {"runId": "run:01ABC"}}, CORE)
    assert checker.errors({k: v for k, v in good.items() if k != "producer"}, CORE)
    assert checker.errors({**good, "eventTime": "yesterday"}, CORE)


# ------------------------------------------------------------------------ OpenLineage


@attr.define
class QuotepartContributionsDatasetFacet(DatasetFacet):
    """Our custom dataset facet, written the way openlineage-python writes custom facets."""

    asset: str
    assetKind: str  # noqa: N815
    name: str
    leafIndex: int  # noqa: N815
    contributions: list[dict[str, str]]

    @staticmethod
    def _get_schema() -> str:
        return CONTRIBUTIONS_FACET_SCHEMA_URL


@attr.define
class QuotepartRunFacet(RunFacet):
    run: str
    operator: str
    operatorName: str  # noqa: N815
    status: str
    code: dict[str, str]
    leafIndex: int  # noqa: N815
    logOrigin: str  # noqa: N815
    uses: dict[str, str]

    @staticmethod
    def _get_schema() -> str:
        return RUN_FACET_SCHEMA_URL


def _fields_of(facet: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facet.items() if not k.startswith("_")}


def _dataset_facet(name: str, facet: dict[str, Any]) -> Any:
    by = facet["_producer"]
    fields = _fields_of(facet)
    if name == "schema":
        return SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(**f, fields=None) for f in fields["fields"]],
            producer=by,
        )
    if name == "ownership":
        return OwnershipDatasetFacet(owners=[Owner(**o) for o in fields["owners"]], producer=by)
    if name == "documentation":
        return DocumentationDatasetFacet(**fields, producer=by)
    assert name == "quotepart_contributions"
    return QuotepartContributionsDatasetFacet(**fields, producer=by)


def _run_facet(name: str, facet: dict[str, Any]) -> Any:
    if name == "errorMessage":
        return ErrorMessageRunFacet(**_fields_of(facet), producer=facet["_producer"])
    assert name == "quotepart_run"
    return QuotepartRunFacet(**_fields_of(facet), producer=facet["_producer"])


def rebuild(event: dict[str, Any]) -> RunEvent:
    """The event built from openlineage-python's own classes (whose validators check the
    run id, times and URIs, and which refuse any field they do not define)."""

    def datasets(kind: type, items: list[dict[str, Any]]) -> list[Any]:
        facet_key = "inputFacets" if kind is InputDataset else "outputFacets"
        return [
            kind(
                namespace=item["namespace"],
                name=item["name"],
                facets={k: _dataset_facet(k, v) for k, v in item["facets"].items()},
                **{facet_key: None},
            )
            for item in items
        ]

    return RunEvent(
        eventType=RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=Run(
            runId=event["run"]["runId"],
            facets={k: _run_facet(k, v) for k, v in event["run"]["facets"].items()},
        ),
        job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"], facets={}),
        inputs=datasets(InputDataset, event["inputs"]),
        outputs=datasets(OutputDataset, event["outputs"]),
    )


@pytest.fixture(scope="module")
def events(world: World) -> list[dict[str, Any]]:
    return openlineage_events(world.ws.provenance)


def test_openlineage_python_rebuilds_every_event_exactly(events: list[dict[str, Any]]) -> None:
    assert events
    for event in events:
        assert Serde.to_dict(rebuild(event)) == event
        assert json.loads(Serde.to_json(rebuild(event))) == event


def test_every_event_and_facet_matches_the_schemas(
    events: list[dict[str, Any]], checker: SchemaChecker
) -> None:
    for event in events:
        assert checker.errors(event, CORE) == []
        assert checker.errors(event, f"{CORE}#/$defs/RunEvent") == []
        for name, facet in event["run"]["facets"].items():
            if name == "quotepart_run":
                assert facet["_schemaURL"] == RUN_FACET_SCHEMA_URL
                assert checker.errors(facet, RUN_FACET_SCHEMA_URL) == []
        for dataset in event["inputs"] + event["outputs"]:
            facet = dataset["facets"]["quotepart_contributions"]
            assert facet["_schemaURL"] == CONTRIBUTIONS_FACET_SCHEMA_URL
            assert checker.errors(facet, CONTRIBUTIONS_FACET_SCHEMA_URL) == []
    spoilt = json.loads(json.dumps(events[0]))
    del spoilt["inputs"][0]["facets"]["quotepart_contributions"]["contributions"][0]["share"]
    assert checker.errors(
        spoilt["inputs"][0]["facets"]["quotepart_contributions"], CONTRIBUTIONS_FACET_SCHEMA_URL
    ) == ["$.contributions[0]: 'share' is required"]


def test_each_run_is_a_start_and_an_end_event(world: World, events: list[dict[str, Any]]) -> None:
    runs = (world.preprocess, world.fit, world.evaluate)
    assert [e["eventType"] for e in events] == [
        "START",
        "COMPLETE",
        "START",
        "COMPLETE",
        "START",
        "FAIL",
    ]
    for run, (start, end) in zip(runs, zip(events[::2], events[1::2], strict=True), strict=True):
        run_uuid = start["run"]["runId"]
        assert run_uuid == end["run"]["runId"] == str(ULID.from_str(run.run.ulid).to_uuid())
        assert RunId(str(ULID.from_uuid(uuid.UUID(run_uuid)))) == run.run
        assert datetime.fromisoformat(start["eventTime"]) == run.started
        assert datetime.fromisoformat(end["eventTime"]) == run.ended
        assert start["job"] == {
            "namespace": f"quotepart://{world.ws.origin}",
            "name": run.name,
            "facets": {},
        }
        assert [d["name"] for d in end["inputs"]] == sorted(str(d) for d in run.inputs)
        assert [d["name"] for d in end["outputs"]] == sorted(str(d) for d in run.outputs)
        assert {d["namespace"] for d in end["inputs"] + end["outputs"]} == {
            f"quotepart://{world.ws.origin}"
        }
    failed = events[-1]["run"]["facets"]
    assert failed["errorMessage"]["message"] == "RuntimeError: GPU fell over"
    assert "errorMessage" not in events[1]["run"]["facets"]


def test_contribution_and_run_facets_carry_the_log_facts(
    world: World, events: list[dict[str, Any]]
) -> None:
    preprocess_end = events[1]
    data = next(d for d in preprocess_end["inputs"] if d["name"] == str(world.data))
    assert data["facets"]["quotepart_contributions"]["contributions"] == [
        {"party": str(world.hospital), "name": "St Mary's", "role": "data", "share": "3/4"},
        {"party": str(world.coop), "name": "Valley coop", "role": "data", "share": "1/4"},
    ]
    assert [o["name"] for o in data["facets"]["ownership"]["owners"]] == [
        str(world.hospital),
        str(world.coop),
    ]
    assert data["facets"]["schema"]["fields"] == [
        {"name": "age", "type": "long"},
        {"name": "weight", "type": "double"},
        {"name": "ward", "type": "string"},
    ]
    assert (
        data["facets"]["documentation"]["description"] == "Hospital admissions, one row per stay."
    )
    facet = preprocess_end["run"]["facets"]["quotepart_run"]
    assert facet["run"] == str(world.preprocess.run)
    assert (facet["operator"], facet["operatorName"]) == (str(world.lab), "Diagnostics Lab")
    assert facet["code"] == world.preprocess.code
    assert world.ws.entry_at(facet["leafIndex"]).body() == world.preprocess


def test_one_run_or_a_clear_error(world: World) -> None:
    lines = export_openlineage(world.ws.provenance, [str(world.fit.run)]).splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE"]
    assert openlineage_events(world.ws.provenance, []) == []
    unknown = RunId.new()
    with pytest.raises(NotFoundError, match=f"no run {unknown} in this log"):
        openlineage_events(world.ws.provenance, [unknown])
    with pytest.raises(InputError, match="not a run id"):
        openlineage_events(world.ws.provenance, ["sha256:abc"])


# --------------------------------------------------------------------------- Croissant


RDFLIB_DEPRECATION = pytest.mark.filterwarnings(
    # mlcroissant 1.1 parses JSON-LD through rdflib's ConjunctiveGraph, which rdflib 7 deprecates
    "ignore:ConjunctiveGraph is deprecated:DeprecationWarning"
)


def load_croissant(document: dict[str, Any] | Path, *, licensed: bool = True) -> Any:
    """Load with mlcroissant: no errors, and no warning but the ones we expect."""
    dataset = mlc.Dataset(jsonld=document)
    issues = dataset.metadata.ctx.issues
    assert issues.errors == set()
    # A content-addressed asset has no semantic version to give, and an asset registered
    # without a licence has none to give either; nothing else may warn.
    expected = {"version"} if licensed else {"version", "license"}
    missing = {w.split('"https://schema.org/')[-1].split('"')[0] for w in issues.warnings}
    assert missing == expected, issues.warnings
    assert all("is recommended, but does not exist" in w for w in issues.warnings)
    return dataset


@RDFLIB_DEPRECATION
@pytest.mark.parametrize("which", ["data", "cohort", "batch", "blob", "clean"])
def test_mlcroissant_loads_every_kind_of_dataset(world: World, which: str) -> None:
    digest = getattr(world, which)
    entry = world.ws.asset_entry(digest)
    assert entry is not None
    document = croissant_metadata(world.ws.provenance, digest)
    dataset = load_croissant(document, licensed=which in {"data", "cohort", "blob"})
    assert dataset.metadata.name == entry.name
    assert document["identifier"] == str(digest)
    fields = entry.metadata.get("fields", [])
    if fields:
        (record_set,) = dataset.metadata.record_sets
        assert [f.name for f in record_set.fields] == [f["name"] for f in fields]
        assert [f["dataType"] for f in document["recordSet"][0]["field"]] == [
            f["type"] for f in fields
        ]


@RDFLIB_DEPRECATION
def test_croissant_carries_licence_creators_and_the_digest(world: World, tmp_path: Path) -> None:
    path = tmp_path / "croissant.json"
    path.write_text(export_croissant(world.ws.provenance, "Admissions 2025"))
    load_croissant(path)
    document = json.loads(path.read_text())
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert document["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert document["creator"] == [
        {"@type": "sc:Organization", "name": "St Mary's", "identifier": str(world.hospital)},
        {"@type": "sc:Person", "name": "Dr Jane Roe"},
    ]
    assert {c["identifier"] for c in document["contributor"]} == {
        str(world.hospital),
        str(world.coop),
    }
    (distribution,) = document["distribution"]
    assert distribution["@type"] == "cr:FileSet"  # a Merkle root over records is no file hash
    assert str(world.data) in distribution["description"]

    blob = croissant_metadata(world.ws.provenance, world.blob)
    (file_object,) = blob["distribution"]
    assert file_object["@type"] == "cr:FileObject"
    assert file_object["sha256"] == world.blob.hex
    assert file_object["contentUrl"] == "https://example.org/scores.csv"
    assert blob["license"] == "https://spdx.org/licenses/MIT.html"

    cohort = croissant_metadata(world.ws.provenance, world.cohort)
    assert cohort["isBasedOn"] == [f"quotepart://{world.ws.origin}/{world.data}"]
    assert cohort["license"] == document["license"]  # a subset, under its dataset's licence
    assert "license" not in croissant_metadata(world.ws.provenance, world.clean)
    batch = croissant_metadata(world.ws.provenance, world.batch)
    assert set(batch["keywords"]) == {"pos", "neg"}


def test_croissant_refuses_what_is_not_data(world: World) -> None:
    with pytest.raises(InputError, match=f"asset {world.model} is a model, not a dataset"):
        croissant_metadata(world.ws.provenance, world.model)
    with pytest.raises(InputError, match="is a run, not a dataset"):
        croissant_metadata(world.ws.provenance, str(world.fit.run))
    with pytest.raises(NotFoundError, match="no asset or run 'no such data'"):
        croissant_metadata(world.ws.provenance, "no such data")
