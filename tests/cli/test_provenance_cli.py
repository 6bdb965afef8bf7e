"""The provenance commands: parties, assets, contributions, runs, lineage and record proofs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sklearn.datasets import load_breast_cancer

from quotepart.cli import cli
from quotepart.ids import Digest, PartyId
from quotepart.workspace import open_workspace

PARTY = "party:01KDVDNA06E8DP3AR9Z4NPV1PC"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    assert run("init", str(folder)).exit_code == 0
    return folder


def party(folder: Path, name: str, *extra: str) -> str:
    result = run("party", "add", name, "--workspace", str(folder), *extra)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_register_contribute_and_trace_from_the_shell(folder: Path, tmp_path: Path) -> None:
    ws = ["--workspace", str(folder)]
    hospital = party(
        folder, "St Mary's", "--type", "organisation", "--payout", "DE89370400440532013000"
    )
    lab = party(folder, "Lab", "--role", "operator")
    table = tmp_path / "patients.csv"
    load_breast_cancer(as_frame=True).frame.head(120).to_csv(table, index=False)
    added = run(
        "asset",
        "add",
        str(table),
        "--table",
        "--name",
        "patients",
        "--by",
        hospital,
        "--license",
        "CC-BY-4.0",
        "--creator",
        "St Mary's",
        *ws,
    )
    assert added.exit_code == 0, added.output
    dataset = added.output.strip()
    shown = json.loads(run("asset", "show", "patients", *ws).output)
    assert shown["asset"] == dataset
    assert shown["scheme"] == "merkle-records"
    assert shown["size"] == 120
    contributed = run(
        "contribute", dataset, "--party", f"{hospital}=1", "--role", "data", "--by", hospital, *ws
    )
    assert contributed.exit_code == 0, contributed.output
    with (
        open_workspace(folder) as workspace,
        workspace.run("train", operator=PartyId.parse(lab)) as r,
    ):
        r.use(Digest.parse(dataset))
        r.produce(
            workspace.register_data(
                b"weights", name="model", by=PartyId.parse(lab), asset_kind="model"
            )
        )
    listed = json.loads(run("run", "list", "--json", *ws).output)
    assert [r["name"] for r in listed] == ["train"]
    downstream = json.loads(run("lineage", dataset, "--downstream", "--json", *ws).output)
    assert {e["relation"] for e in downstream["edges"]} == {"used", "generated"}
    assert "model" in run("lineage", "model", "--mermaid", *ws).output
    dot = run("lineage", "model", "--dot", *ws).output
    assert dot.startswith("digraph")
    assert 'label="patients\\ndataset"' in dot  # DOT's escape for a line break
    assert "\\\\n" not in dot  # never a doubled backslash, which DOT shows literally
    feeding = json.loads(run("lineage", "model", "--contributions", "--json", *ws).output)
    assert [(c["party"], c["role"], c["share"]) for c in feeding] == [(hospital, "data", "1")]
    models = run("lineage", "patients", "--models", *ws).output
    assert "model" in models


def test_a_record_proof_checks_offline_and_fails_when_altered(folder: Path, tmp_path: Path) -> None:
    ws = ["--workspace", str(folder)]
    hospital = party(folder, "Clinic")
    table = tmp_path / "cohort.csv"
    pd.DataFrame({"age": [34, 51, 67, 45], "ward": ["a", "b", "a", "c"]}).to_csv(table, index=False)
    cohort = run(
        "asset",
        "add",
        str(table),
        "--table",
        "--kind",
        "cohort",
        "--name",
        "c",
        "--by",
        hospital,
        *ws,
    )
    proof = run(
        "asset", "prove-record", cohort.output.strip(), str(table), "--table", "--row", "2", *ws
    )
    assert proof.exit_code == 0, proof.output
    path = tmp_path / "proof.json"
    path.write_text(proof.output)
    key = run("log", "key", *ws).output.strip()
    checked = run("asset", "verify-record", str(path), "--verifier-key", key)
    assert checked.exit_code == 0, checked.output
    assert "record 2 of 4" in checked.output
    document = json.loads(proof.output)
    record = bytearray(bytes.fromhex(document["record"]))
    record[0] ^= 1  # someone else's age
    path.write_text(json.dumps({**document, "record": record.hex()}))
    altered = run("asset", "verify-record", str(path), "--verifier-key", key)
    assert altered.exit_code == 3, altered.output
    path.write_text(json.dumps({**document, "tree_size": document["tree_size"] + 1}))
    assert run("asset", "verify-record", str(path), "--verifier-key", key).exit_code == 3


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("lineage", "sha256:12"), 2, "not a digest"),
        (("lineage", "sha256:" + "0" * 64), 4, "no asset or run"),
        (("asset", "show", "nothing-by-that-name"), 4, "no asset 'nothing-by-that-name'"),
        (("run", "show", "run:nonsense"), 2, "not a run id"),
        (
            (
                "asset",
                "add",
                "/no/such/file",
                "--name",
                "x",
                "--by",
                "party:01KDVDNA06E8DP3AR9Z4NPV1PC",
            ),
            2,
            "cannot read",
        ),
        (("contribute", "x", "--party", "nobody", "--role", "data", "--by", "p"), 2, "PARTY=SHARE"),
        (
            ("contribute", "x", "--party", f"{PARTY}=half", "--role", "data", "--by", PARTY),
            2,
            f"the share of {PARTY} is not a number: 'half'",
        ),
        (
            (
                "policy",
                "set",
                "sha256:" + "0" * 64,
                "--pool",
                "1/0",
                "--role",
                "d=1",
                "--by",
                PARTY,
            ),
            2,
            "--pool divides by zero",
        ),
    ],
)
def test_bad_input_is_one_clear_error(
    folder: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(*args, "--workspace", str(folder))
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_names_and_prefixes_work_wherever_ids_do(folder: Path) -> None:
    grower = party(folder, "Hillside Growers")
    party(folder, "Vineyard Lab", "--role", "operator")
    data = folder / "rows.csv"
    data.write_text("a,b\n1,2\n")
    added = run(
        "asset",
        "add",
        str(data),
        "--name",
        "cultivar data",
        "--by",
        "Vineyard Lab",
        "--workspace",
        str(folder),
    )
    assert added.exit_code == 0, added.output
    digest = added.stdout.strip()
    shown = run("asset", "show", digest[:15], "--workspace", str(folder))
    assert shown.exit_code == 0, shown.output
    assert digest in shown.stdout
    statement = run(
        "statement", "Hillside Growers", "--period", "2026-Q1", "--workspace", str(folder)
    )
    assert statement.exit_code == 0, statement.output
    assert "no allocation to Hillside Growers in 2026-Q1" in statement.stdout
    assert grower in statement.stdout


def test_unknown_or_ambiguous_party_is_refused(folder: Path) -> None:
    party(folder, "Twin")
    party(folder, "Twin")
    unknown = run("statement", PARTY, "--period", "2026", "--workspace", str(folder))
    assert unknown.exit_code == 4
    assert f"unknown party {PARTY}" in unknown.stderr
    assert "quotepart party list" in unknown.stderr
    ambiguous = run("statement", "Twin", "--period", "2026", "--workspace", str(folder))
    assert ambiguous.exit_code == 2
    assert "names more than one party" in ambiguous.stderr


def test_a_copied_table_is_flagged_by_add_and_shown_both_ways(folder: Path, tmp_path: Path) -> None:
    ws = ["--workspace", str(folder)]
    hospital, copier = party(folder, "St Mary's"), party(folder, "Copycat Ltd")
    frame = load_breast_cancer(as_frame=True).frame.head(120)
    original, copy = tmp_path / "patients.csv", tmp_path / "shuffled.csv"
    frame.to_csv(original, index=False)
    frame.sample(frac=1, random_state=0).head(100).to_csv(copy, index=False)
    first = run("asset", "add", str(original), "--table", "--name", "patients",
                "--by", hospital, *ws)  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "Warning" not in first.stderr
    added = run("asset", "add", str(copy), "--table", "--name", "shuffled", "--by", copier, *ws)
    assert added.exit_code == 0, added.output
    assert Digest.parse(added.stdout.strip())  # stdout stays the digest alone
    assert "Warning: 100 of 100 records (100.0%) of 'shuffled'" in added.stderr
    assert "registered first by St Mary's" in added.stderr
    later = json.loads(run("asset", "show", "shuffled", *ws).output)
    [copied] = later["overlaps"]["copied_from"]
    assert copied["summary"] == (
        f"100 of 100 records copied from 'patients' ({first.stdout.strip()}) "
        "(registered by St Mary's)"
    )
    assert later["overlaps"]["copied_by"] == []
    assert later["record_set"]["records"] == 100
    assert later["record_set"]["set_root"].startswith("sha256:")
    earlier = json.loads(run("asset", "show", "patients", *ws).output)
    [by] = earlier["overlaps"]["copied_by"]
    assert by["summary"].startswith("its records were copied by 'shuffled'")
    assert "(registered by Copycat Ltd)" in by["summary"]
    assert earlier["record_set"]["set_root"] != later["record_set"]["set_root"]
