"""`quotepart export …` and `quotepart ingest openlineage`: documents on stdout or in a file,
and unknown or malformed names as one-line errors with the error class's exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from prov.model import ProvActivity, ProvDocument, ProvEntity

from quotepart.cli import cli
from quotepart.ids import Digest, PartyId, RunId
from quotepart.log.kinds import RunRecorded
from quotepart.provenance.overlap import OverlapWarning
from quotepart.workspace import init_workspace, open_workspace
from tests.conftest import FakeClock

SAMPLES = Path(__file__).parent.parent / "vectors" / "openlineage"


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


class Ids:
    def __init__(self, folder: Path) -> None:
        ws = init_workspace(folder, clock=FakeClock())
        self.hospital = ws.register_party("St Mary's")
        self.lab = ws.register_party("Lab", roles=("operator",))
        frame = pd.DataFrame({"age": [30, 41, 52], "ward": ["a", "b", "a"]})
        self.data = ws.register_data(
            frame, name="Admissions", by=self.hospital, license="CC-BY-4.0"
        )
        ws.contribute(self.data, {self.hospital: 1}, role="data", by=self.hospital)
        with ws.run("split", operator=self.lab) as step:
            step.use(self.data)
            with pytest.warns(OverlapWarning, match="2 of 2 records"):
                self.part = ws.register_data(frame.iloc[:2], name="Part", by=self.lab)
            step.produce(self.part)
        self.model = ws.register_asset(b"weights", asset_kind="model", name="Model", by=self.lab)
        (recorded,) = ws.runs()
        self.run: RunRecorded = recorded
        ws.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def ids(folder: Path) -> Ids:
    return Ids(folder)


def test_export_prov_of_the_log_and_of_one_asset(folder: Path, ids: Ids, tmp_path: Path) -> None:
    whole = run("export", "prov", "--all", "--workspace", str(folder))
    assert whole.exit_code == 0, whole.stderr
    doc = ProvDocument.deserialize(content=whole.stdout, format="json")
    assert {str(e.identifier) for e in doc.get_records(ProvEntity)} == {
        str(ids.data),
        str(ids.part),
        str(ids.model),
    }
    out = tmp_path / "part.jsonld"
    one = run(
        "export",
        "prov",
        str(ids.part),
        "--format",
        "jsonld",
        "--out",
        str(out),
        "--workspace",
        str(folder),
    )
    assert one.exit_code == 0, one.stderr
    assert one.stdout == ""
    assert f"wrote {out}" in one.stderr
    lineage = ProvDocument.deserialize(content=out.read_text(), format="jsonld")
    assert {str(e.identifier) for e in lineage.get_records(ProvEntity)} == {
        str(ids.data),
        str(ids.part),
    }
    assert {str(a.identifier) for a in lineage.get_records(ProvActivity)} == {str(ids.run.run)}


def test_export_prov_needs_exactly_one_of_asset_and_all(folder: Path, ids: Ids) -> None:
    neither = run("export", "prov", "--workspace", str(folder))
    assert neither.exit_code == 2
    assert "Error: name an ASSET or pass --all" in neither.stderr
    both = run("export", "prov", str(ids.data), "--all", "--workspace", str(folder))
    assert both.exit_code == 2
    unknown = Digest.of_bytes(b"nothing")
    missing = run("export", "prov", str(unknown), "--workspace", str(folder))
    assert missing.exit_code == 4
    assert f"Error: no asset or run '{unknown}' in this log" in missing.stderr
    assert "Hint:" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_export_openlineage_writes_json_lines(folder: Path, ids: Ids) -> None:
    every = run("export", "openlineage", "--workspace", str(folder))
    assert every.exit_code == 0, every.stderr
    events = [json.loads(line) for line in every.stdout.splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["outputs"][0]["name"] == str(ids.part)
    assert run("export", "openlineage", "--all", "--workspace", str(folder)).stdout == every.stdout
    one = run("export", "openlineage", str(ids.run.run), "--workspace", str(folder))
    assert one.stdout == every.stdout
    unknown = RunId.new()
    missing = run("export", "openlineage", str(unknown), "--workspace", str(folder))
    assert missing.exit_code == 4
    assert f"Error: no run {unknown} in this log" in missing.stderr
    malformed = run("export", "openlineage", "run-1", "--workspace", str(folder))
    assert malformed.exit_code == 2
    assert "Error: not a run id: 'run-1'" in malformed.stderr


def test_export_croissant_of_a_dataset_not_of_a_model(
    folder: Path, ids: Ids, tmp_path: Path
) -> None:
    result = run("export", "croissant", "Admissions", "--workspace", str(folder))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["identifier"] == str(ids.data)
    assert document["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert [f["name"] for f in document["recordSet"][0]["field"]] == ["age", "ward"]
    refused = run("export", "croissant", str(ids.model), "--workspace", str(folder))
    assert refused.exit_code == 2
    assert f"Error: asset {ids.model} is a model, not a dataset" in refused.stderr


def _operator(folder: Path) -> PartyId:
    with open_workspace(folder) as ws:
        return ws.register_party("Platform", roles=("operator",), agent_type="software")


def test_ingest_json_lines_then_again(folder: Path, tmp_path: Path) -> None:
    init_workspace(folder).close()
    platform = _operator(folder)
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            (SAMPLES / name).read_text()
            for name in ("airflow_sql_to_s3.jsonl", "spark_orders_daily.jsonl")
        )
        + "{broken\n"
    )
    first = run(
        "ingest",
        "openlineage",
        str(events),
        "--operator",
        str(platform),
        "--workspace",
        str(folder),
    )
    assert first.exit_code == 0, first.stderr
    recorded = first.stdout.split()
    assert len(recorded) == 2
    assert all(r.startswith("run:") for r in recorded)
    assert "Skipped line 6: malformed JSON" in first.stderr
    again = run(
        "ingest",
        "openlineage",
        str(events),
        "--operator",
        str(platform),
        "--workspace",
        str(folder),
        "--json",
    )
    assert again.exit_code == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["recorded"] == []
    assert sorted(report["already_recorded"]) == sorted(recorded)
    assert report["skipped"][0]["where"] == "line 6"
    with open_workspace(folder) as ws:
        assert sorted(str(r.run) for r in ws.runs()) == sorted(recorded)


def test_ingest_a_json_array_from_stdin(folder: Path) -> None:
    init_workspace(folder).close()
    platform = _operator(folder)
    lines = (SAMPLES / "dbt_failed_model.jsonl").read_text().splitlines()
    array = "[" + ",".join(lines) + "]"
    result = run(
        "ingest",
        "openlineage",
        "-",
        "--operator",
        str(platform),
        "--workspace",
        str(folder),
        input=array,
    )
    assert result.exit_code == 0, result.stderr
    with open_workspace(folder) as ws:
        (failed,) = ws.runs()
    assert failed.status == "failed"
    broken = run(
        "ingest",
        "openlineage",
        "-",
        "--operator",
        str(platform),
        "--workspace",
        str(folder),
        input="[{]",
    )
    assert broken.exit_code == 2
    assert "Error: the JSON array of events is malformed" in broken.stderr


def test_ingest_refuses_a_bad_or_unknown_operator(folder: Path) -> None:
    init_workspace(folder).close()
    sample = str(SAMPLES / "dbt_failed_model.jsonl")
    bad = run("ingest", "openlineage", sample, "--operator", "Platform", "--workspace", str(folder))
    assert bad.exit_code == 4  # a name is looked up like an id (issue 13): no such party
    assert "Error: no party 'Platform' in this log" in bad.stderr
    assert "quotepart party list" in bad.stderr
    stranger = PartyId.new()
    unknown = run(
        "ingest", "openlineage", sample, "--operator", str(stranger), "--workspace", str(folder)
    )
    assert unknown.exit_code == 4
    assert f"Error: unknown party {stranger}" in unknown.stderr
    empty = run(
        "ingest",
        "openlineage",
        "-",
        "--operator",
        str(stranger),
        "--workspace",
        str(folder),
        input="\n",
    )
    assert empty.exit_code == 2
    assert "Error: FILE holds no events" in empty.stderr
