"""Ingesting OpenLineage events: Airflow-, Spark- and dbt-shaped samples become runs and
assets, the same events twice record nothing new, bad events are reported with their
reason, and a batch the log refuses leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId, RunId
from quotepart.log.kinds import RunRecorded
from quotepart.provenance.export import openlineage_events
from quotepart.provenance.ingest import dataset_digest, field_type, ingest_openlineage
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.provenance.test_exports import SchemaChecker

VECTORS = Path(__file__).parent.parent / "vectors" / "openlineage"
CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

AIRFLOW_RUN = "018f3226-1e30-7b2a-9d43-5b1c2f8e6a10"
SPARK_RUN = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
DBT_RUN = "3b9d2c41-7e55-4f0a-b1c2-9d8e7f6a5b4c"

PG_ORDERS = ("postgres://db.shop.internal:5432", "shop.public.orders")
S3_EXPORT = ("s3://acme-exports", "orders/2024-05-01/orders.parquet")
HDFS_DAILY = ("hdfs://namenode.acme:8020", "/warehouse/orders_daily")


def sample(name: str) -> list[dict[str, Any]]:
    lines = (VECTORS / name).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


AIRFLOW = sample("airflow_sql_to_s3.jsonl")
SPARK = sample("spark_orders_daily.jsonl")
DBT = sample("dbt_failed_model.jsonl")


def run_id(openlineage_uuid: str) -> RunId:
    return RunId(str(ULID.from_uuid(uuid.UUID(openlineage_uuid))))


@pytest.fixture
def platform(ws: Workspace) -> PartyId:
    return ws.register_party("Acme data platform", roles=("operator",), agent_type="software")


def test_the_samples_are_valid_openlineage_run_events() -> None:
    checker = SchemaChecker(*(json.loads(p.read_text()) for p in VECTORS.glob("*.json")))
    for event in AIRFLOW + SPARK + DBT:
        assert checker.errors(event, CORE) == []


def test_a_dataset_digest_is_the_sha256_of_its_canonical_identity() -> None:
    identity = b'{"name":"shop.public.orders","namespace":"postgres://db.shop.internal:5432"}'
    assert dataset_digest(*PG_ORDERS) == Digest("sha256", hashlib.sha256(identity).hexdigest())
    versioned = (
        b'{"name":"/warehouse/orders_daily","namespace":"hdfs://namenode.acme:8020","version":"17"}'
    )
    assert dataset_digest(*HDFS_DAILY, "17") == Digest(
        "sha256", hashlib.sha256(versioned).hexdigest()
    )


def test_airflow_spark_and_dbt_events_become_runs_and_assets(
    ws: Workspace, platform: PartyId
) -> None:
    report = ingest_openlineage(ws.provenance, AIRFLOW + SPARK + DBT, operator=platform)
    assert report.recorded == (run_id(AIRFLOW_RUN), run_id(SPARK_RUN), run_id(DBT_RUN))
    assert report.skipped == ()
    assert report.already_recorded == ()
    assert len(report.assets) == 5
    assert len(report.leaf_indexes) == 5 + 3

    airflow = ws.run_entry(str(run_id(AIRFLOW_RUN)))
    assert airflow == RunRecorded(
        run=run_id(AIRFLOW_RUN),
        name="orders_etl.export_orders",
        operator=platform,
        status="succeeded",
        started=datetime(2024, 5, 2, 2, 0, 3, 512345, tzinfo=UTC),
        ended=datetime(2024, 5, 2, 2, 0, 45, 907120, tzinfo=UTC),
        inputs=(dataset_digest(*PG_ORDERS),),
        outputs=(dataset_digest(*S3_EXPORT),),
        code={
            "repository": "https://github.com/acme/pipelines.git",
            "url": "https://github.com/acme/pipelines/blob/4f2c1d9/dags/orders_etl.py",
            "commit": "4f2c1d9e0b7a8c6d5e4f3a2b1c0d9e8f7a6b5c4d",
            "path": "dags/orders_etl.py",
        },
        environment={"engine": "Airflow", "engine_version": "2.9.3"},
        source={
            "openlineage.run_id": AIRFLOW_RUN,
            "openlineage.job": "default/orders_etl.export_orders",
            "openlineage.producer": "https://github.com/apache/airflow/tree/providers-openlineage/1.9.0",
        },
    )

    spark = ws.run_entry(str(run_id(SPARK_RUN)))
    assert spark.status == "succeeded"
    assert spark.started == datetime(2024, 5, 2, 2, 10, 5, 123000, tzinfo=UTC)
    assert spark.ended == datetime(2024, 5, 2, 2, 11, 17, 500000, tzinfo=UTC)
    assert spark.inputs == (dataset_digest(*S3_EXPORT),)
    assert spark.outputs == (dataset_digest(*HDFS_DAILY, "17"),)  # the version is identity
    assert spark.environment == {"engine": "spark", "engine_version": "3.5.1"}

    dbt = ws.run_entry(str(run_id(DBT_RUN)))
    assert dbt.status == "failed"
    assert dbt.error is not None
    assert dbt.error.endswith('column "amount_usd" does not exist')

    # the Spark job read what the Airflow task wrote: one lineage, across tools
    upstream = {node.id for node in ws.lineage(dataset_digest(*HDFS_DAILY, "17")).nodes}
    assert {str(run_id(AIRFLOW_RUN)), str(dataset_digest(*PG_ORDERS))} <= upstream


def test_datasets_keep_their_names_urls_and_typed_fields(ws: Workspace, platform: PartyId) -> None:
    ingest_openlineage(ws.provenance, AIRFLOW + SPARK, operator=platform)
    orders = ws.asset_entry(dataset_digest(*PG_ORDERS))
    assert orders is not None
    assert (orders.asset_kind, orders.scheme, orders.name) == (
        "dataset",
        "canonical-json",
        "shop.public.orders",
    )
    assert orders.metadata == {
        "url": "postgres://db.shop.internal:5432/shop.public.orders",
        "fields": [
            {"name": "id", "type": "sc:Integer"},
            {"name": "customer_id", "type": "sc:Integer"},
            {"name": "amount", "type": "sc:Float"},
            {"name": "created_at", "type": "sc:DateTime"},
        ],
    }
    assert orders.description is not None
    assert "shop.public.orders" in orders.description
    assert "postgres://db.shop.internal:5432" in orders.description
    # Airflow's output event had no schema; Spark's input event, for the same data, did
    export = ws.asset_entry(dataset_digest(*S3_EXPORT))
    assert export is not None
    assert [f["name"] for f in export.metadata["fields"]] == [
        "id",
        "customer_id",
        "amount",
        "created_at",
    ]
    daily = ws.asset_entry(dataset_digest(*HDFS_DAILY, "17"))
    assert daily is not None
    assert daily.metadata["url"] == "hdfs://namenode.acme:8020/warehouse/orders_daily"
    assert [f["type"] for f in daily.metadata["fields"]] == [
        "sc:Date",
        "sc:Integer",
        "sc:Float",
        "sc:Integer",
        "sc:Text",
    ]
    assert daily.description is not None
    assert "version '17'" in daily.description


def test_ingesting_the_same_events_again_records_nothing(ws: Workspace, platform: PartyId) -> None:
    first = ingest_openlineage(ws.provenance, AIRFLOW + SPARK, operator=platform)
    size = ws.store.tree_size()
    again = ingest_openlineage(ws.provenance, AIRFLOW + SPARK, operator=platform)
    assert again.recorded == again.assets == again.leaf_indexes == ()
    assert again.already_recorded == first.recorded
    assert ws.store.tree_size() == size
    more = ingest_openlineage(
        ws.provenance, [json.dumps(e) for e in AIRFLOW + SPARK + DBT], operator=platform
    )
    assert more.recorded == (run_id(DBT_RUN),)
    assert set(more.already_recorded) == set(first.recorded)
    ws.verify()


def test_events_arrive_in_any_order(ws: Workspace, platform: PartyId) -> None:
    report = ingest_openlineage(ws.provenance, list(reversed(SPARK + AIRFLOW)), operator=platform)
    assert set(report.recorded) == {run_id(SPARK_RUN), run_id(AIRFLOW_RUN)}
    spark = ws.run_entry(str(run_id(SPARK_RUN)))
    assert spark.started == datetime(2024, 5, 2, 2, 10, 5, 123000, tzinfo=UTC)
    assert spark.ended == datetime(2024, 5, 2, 2, 11, 17, 500000, tzinfo=UTC)


def _event(
    event_type: str, run: str, *, with_outputs: bool = True, **changes: Any
) -> dict[str, Any]:
    event = {
        "eventType": event_type,
        "eventTime": "2024-05-02T04:00:00Z" if event_type == "START" else "2024-05-02T04:01:00Z",
        "producer": "https://example.org/producer",
        "schemaURL": f"{CORE}#/$defs/RunEvent",
        "run": {"runId": run, "facets": {}},
        "job": {"namespace": "default", "name": "adhoc"},
        "inputs": [{"namespace": "s3://bucket", "name": f"in-{run}"}],
        "outputs": [{"namespace": "s3://bucket", "name": f"out-{run}"}] if with_outputs else [],
    }
    return {**event, **changes}


def test_events_that_cannot_become_runs_are_reported(ws: Workspace, platform: PartyId) -> None:
    no_outputs, unfinished, bad_time = (str(uuid.uuid4()) for _ in range(3))
    dataset_event = {
        "eventTime": "2024-05-02T04:00:00Z",
        "producer": "https://example.org/producer",
        "schemaURL": f"{CORE}#/$defs/DatasetEvent",
        "dataset": {"namespace": "s3://bucket", "name": "x"},
    }
    events: list[Any] = [
        '{"eventType": "START", "run": ',  # 0: cut off mid-line
        _event("EXPLODED", str(uuid.uuid4())),  # 1
        dataset_event,  # 2
        _event("START", "run-42"),  # 3
        _event("COMPLETE", bad_time, eventTime="2024-05-02T04:01:00"),  # 4: no zone
        [1, 2],  # 5
        _event("START", no_outputs, with_outputs=False),  # 6
        _event("COMPLETE", no_outputs, with_outputs=False),  # 7
        _event("START", unfinished),  # 8
        *AIRFLOW,  # 9, 10
    ]
    size = ws.store.tree_size()
    report = ingest_openlineage(ws.provenance, events, operator=platform)
    assert report.recorded == (run_id(AIRFLOW_RUN),)
    reasons = {s.position: s.reason for s in report.skipped if s.position is not None}
    assert set(reasons) == {0, 1, 2, 3, 4, 5}
    assert reasons[0].startswith("malformed JSON")
    assert reasons[1] == "unknown eventType 'EXPLODED'"
    assert reasons[2].startswith("not a RunEvent")
    assert reasons[3] == "run.runId 'run-42' is not a UUID"
    assert reasons[4] == "eventTime '2024-05-02T04:01:00' has no time zone"
    assert reasons[5] == "not a JSON object but list"
    by_run = {s.run_id: s.reason for s in report.skipped if s.position is None}
    assert set(by_run) == {no_outputs, unfinished}
    assert "a COMPLETE run with no outputs" in by_run[no_outputs]
    assert "has no COMPLETE, FAIL or ABORT event" in by_run[unfinished]
    assert next(s for s in report.skipped if s.position == 4).run_id == bad_time
    # only the Airflow run and its two datasets were written
    assert ws.store.tree_size() == size + 3
    assert [r.run for r in ws.runs()] == [run_id(AIRFLOW_RUN)]


def test_a_batch_the_log_refuses_writes_nothing(ws: Workspace, platform: PartyId) -> None:
    forth, back = str(uuid.uuid4()), str(uuid.uuid4())
    a = {"namespace": "s3://bucket", "name": "a"}
    b = {"namespace": "s3://bucket", "name": "b"}
    events = [
        _event("COMPLETE", forth, inputs=[a], outputs=[b]),
        _event("COMPLETE", back, inputs=[b], outputs=[a]),  # b came from a: a cycle
    ]
    size = ws.store.tree_size()
    with pytest.raises(InputError, match=r"nothing was ingested: .* would close a lineage cycle"):
        ingest_openlineage(ws.provenance, events, operator=platform)
    assert ws.store.tree_size() == size
    assert ws.asset_entry(dataset_digest("s3://bucket", "a")) is None
    ingest_openlineage(ws.provenance, events[:1], operator=platform)  # each run alone is fine
    assert ws.store.tree_size() == size + 3


def test_an_unknown_operator_is_refused_before_anything_is_read(ws: Workspace) -> None:
    stranger = PartyId.new()
    with pytest.raises(NotFoundError, match=f"unknown party {stranger}"):
        ingest_openlineage(ws.provenance, AIRFLOW, operator=stranger)
    assert ws.runs() == []


def test_exported_runs_ingest_under_the_same_ids(
    tmp_path: Path, ws: Workspace, platform: PartyId
) -> None:
    source = init_workspace(tmp_path / "source", clock=FakeClock())
    lab = source.register_party("Lab", roles=("operator",))
    raw = source.register_asset(b"raw", asset_kind="dataset", name="raw", by=lab)
    clean = source.register_asset(b"clean", asset_kind="dataset", name="clean", by=lab)
    with source.run("clean", operator=lab) as run:
        run.use(raw)
        run.produce(clean)
    failing = source.run("crash", operator=lab)
    failing.use(clean)
    failing.finish(error="ValueError: bad row 7")
    exported = openlineage_events(source.provenance)
    source.close()

    report = ingest_openlineage(ws.provenance, exported, operator=platform)
    original = [run_id(e["run"]["runId"]) for e in exported[::2]]
    assert list(report.recorded) == original
    copies = ws.runs()
    assert [(r.run, r.name, r.status, r.error) for r in copies] == [
        (original[0], "clean", "succeeded", None),
        (original[1], "crash", "failed", "ValueError: bad row 7"),
    ]
    assert copies[0].source["openlineage.run_id"] == exported[0]["run"]["runId"]
    assert ingest_openlineage(ws.provenance, exported, operator=platform).recorded == ()


@pytest.mark.parametrize(
    ("openlineage_type", "croissant_type"),
    [
        ("integer", "sc:Integer"),
        ("BIGINT", "sc:Integer"),
        ("int64", "sc:Integer"),
        ("long", "sc:Integer"),
        ("numeric(10,2)", "sc:Float"),
        ("decimal(38,18)", "sc:Float"),
        ("DOUBLE PRECISION", "sc:Float"),
        ("float", "sc:Float"),
        ("boolean", "sc:Boolean"),
        ("date", "sc:Date"),
        ("timestamp without time zone", "sc:DateTime"),
        ("timestamp_ntz", "sc:DateTime"),
        ("varchar(255)", "sc:Text"),
        ("interval", "sc:Text"),
        ("array<int>", "sc:Text"),
        (None, "sc:Text"),
    ],
)
def test_field_types_map_to_croissant(openlineage_type: str | None, croissant_type: str) -> None:
    assert field_type(openlineage_type) == croissant_type
