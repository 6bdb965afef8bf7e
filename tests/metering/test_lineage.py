"""Usage traces in pipelines: a run that calls a service shows in the service's lineage."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.errors import InputError
from quotepart.log.kinds import RunRecorded
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.metering.test_ingest import Scene


def test_a_pipeline_that_calls_a_service_is_downstream_of_it(ws: Workspace) -> None:
    scene = Scene(ws)
    analyst = ws.register_party("Analyst lab", roles=["operator"])
    corpus = ws.register_asset(b"questions", asset_kind="dataset", name="Q", by=analyst)
    with ws.run("label questions with the LLM API", operator=analyst) as run:
        run.use(corpus)
        run.call_service(scene.service, "tokens", "calls")
        labels = ws.register_asset(b"labels", asset_kind="dataset", name="L", by=analyst)
        run.produce(labels)
    body = ws.entry_at(run.leaf_index).body_as(RunRecorded)  # type: ignore[arg-type]
    assert body.used_as("service") == (scene.service,)
    assert body.parameters[f"meters {scene.service}"] == "calls,tokens"
    downstream = ws.lineage(scene.service, direction="downstream")
    assert {node.name for node in downstream.nodes} >= {
        "label questions with the LLM API",
        "L",
    }
    ws.verify()


def test_a_meter_name_must_be_a_slug(ws: Workspace) -> None:
    scene = Scene(ws)
    with ws.run("x", operator=scene.operator) as run:
        with pytest.raises(InputError, match="not a meter name"):
            run.call_service(scene.service, "Not A Meter")
        run.produce(ws.register_asset(b"out", asset_kind="dataset", name="O", by=scene.operator))
    body = ws.entry_at(run.leaf_index).body_as(RunRecorded)  # type: ignore[arg-type]
    assert body.uses == {}  # the refused call noted nothing


def test_lineage_downstream_of_a_service_lists_its_pipelines(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    with init_workspace(folder, clock=FakeClock()) as ws:
        scene = Scene(ws)
        with ws.run("nightly evaluation", operator=scene.other) as run:
            run.call_service(scene.service, "tokens")
            run.produce(
                ws.register_asset(b"scores", asset_kind="dataset", name="S", by=scene.other)
            )
    result = CliRunner().invoke(
        cli, ["lineage", "LLM API", "--downstream", "--workspace", str(folder)]
    )
    assert result.exit_code == 0, result.output
    assert "nightly evaluation" in result.output
