"""The provenance SDK on a real workspace: parties, assets, contributions, runs, lineage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from quotepart.errors import (
    InputError,
    NotFoundError,
    SharedPayoutReferenceWarning,
    VerificationError,
)
from quotepart.ids import Digest, PartyId
from quotepart.log import SigningKey, parse_entry, sign_entry
from quotepart.log.kinds import AssetRegistered, PartyRegistered, RunRecorded
from quotepart.log.kinds.asset import upcast_asset_v1
from quotepart.log.kinds.party import upcast_party_v1
from quotepart.provenance.overlap import OverlapWarning
from quotepart.provenance.tables import encode_table
from quotepart.workspace import Workspace, init_workspace, open_workspace
from tests.conftest import FakeClock

IBAN = "DE89 3704 0044 0532 0130 00"


@pytest.fixture
def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    frame: pd.DataFrame = data.frame
    return frame


def size(ws: Workspace) -> int:
    return ws.store.tree_size()


# ------------------------------------------------------------------ parties


def test_parties_of_every_role_and_type_keep_payout_references_off_the_log(ws: Workspace) -> None:
    made = {
        (role, agent): ws.register_party(f"{role} {agent}", roles=(role,), agent_type=agent)
        for role, agent in [
            ("contributor", "person"),
            ("contributor", "organisation"),
            ("contributor", "community"),
            ("operator", "organisation"),
            ("consumer", "organisation"),
            ("auditor", "person"),
            ("coop", "community"),
        ]
    }
    nurse = ws.register_party("Ana", agent_type="person", payout_reference=IBAN)
    for (role, agent), party in made.items():
        entry = ws.party_entry(party)
        assert entry.roles == (role,)
        assert entry.agent_type == agent
        assert entry.payout_commitment is None
    commitment = ws.party_entry(nurse).payout_commitment
    assert commitment is not None
    raw = b"".join(ws.store.entry(i)[1] for i in range(size(ws)))
    assert b"DE89" not in raw
    assert b"3704" not in raw
    assert ws.payout_reference(nurse) == IBAN.replace(" ", "")
    payout_file = ws.path / "keys" / f"party-{nurse.ulid}.payout.json"
    assert payout_file.stat().st_mode & 0o777 == 0o600
    document = json.loads(payout_file.read_text())
    document["reference"] = "DE00000000000000000000"
    payout_file.write_text(json.dumps(document))
    with pytest.raises(VerificationError, match="does not match the commitment"):
        ws.payout_reference(nurse)


def test_commitments_hide_equal_references(ws: Workspace) -> None:
    first = ws.register_party("A", payout_reference=IBAN)
    with pytest.warns(
        SharedPayoutReferenceWarning, match=r"B \(party:.*same payout reference as A"
    ):
        second = ws.register_party("B", payout_reference=IBAN)
    assert ws.party_entry(first).payout_commitment != ws.party_entry(second).payout_commitment


def test_a_bad_agent_type_is_refused_and_leaves_no_key(ws: Workspace) -> None:
    with pytest.raises(InputError, match="agent_type"):
        ws.register_party("X", agent_type="robot")
    assert list((ws.path / "keys").glob("party-*")) == []
    assert size(ws) == 0


def test_version_1_entries_still_decode_as_the_current_version(clock: FakeClock) -> None:
    """Entries written before party/asset v2 existed read back, upcast."""
    key, party = SigningKey.generate(), PartyId.new(clock)

    class PartyV1(PartyRegistered):
        VERSION = 1

        def to_body(self) -> dict[str, object]:
            body = PartyRegistered.to_body(self)
            del body["agent_type"]
            return body

        @classmethod
        def from_body(cls, body: dict[str, Any]) -> Any:  # signing checks the body reads back
            return PartyRegistered.from_body(upcast_party_v1(body))

    class AssetV1(AssetRegistered):
        VERSION = 1

        def to_body(self) -> dict[str, object]:
            return {"asset": str(self.asset), "asset_kind": self.asset_kind, "name": self.name}

        @classmethod
        def from_body(cls, body: dict[str, Any]) -> Any:
            return AssetRegistered.from_body(upcast_asset_v1(body))

    old_party = sign_entry(
        PartyV1(party, "Old", ("contributor",), key.public),
        origin="test.local/log",
        author=party,
        key=key,
    )
    old_asset = sign_entry(
        AssetV1(Digest.of_bytes(b"old"), "dataset", "old"),
        origin="test.local/log",
        author=party,
        key=key,
    )
    decoded_party = parse_entry(old_party.canonical).body()
    decoded_asset = parse_entry(old_asset.canonical).body()
    assert isinstance(decoded_party, PartyRegistered)
    assert decoded_party.agent_type == "organisation"
    assert isinstance(decoded_asset, AssetRegistered)
    assert decoded_asset.scheme == "sha256"
    assert decoded_asset.metadata == {}


# ------------------------------------------------------------------- assets


def test_a_table_has_one_digest_whichever_library_holds_it(
    ws: Workspace, cancer: pd.DataFrame
) -> None:
    owner = ws.register_party("Hospital")
    frame = cancer.head(200).copy()
    frame["ward"] = ["north" if i % 3 else "south" for i in range(len(frame))]
    from_pandas = ws.register_data(frame, name="admissions", by=owner, license="CC-BY-4.0")
    entries = size(ws)
    assert ws.register_data(pl.from_pandas(frame), name="again", by=owner) == from_pandas
    assert (
        ws.register_data(pa.Table.from_pandas(frame, preserve_index=False), name="x", by=owner)
        == from_pandas
    )
    assert size(ws) == entries  # the same content twice is the same asset, no new entry
    entry = ws.asset_entry(from_pandas)
    assert entry is not None
    assert entry.scheme == "merkle-records"
    assert entry.size == 200
    assert entry.metadata["license"] == "CC-BY-4.0"
    fields = {f["name"]: f["type"] for f in entry.metadata["fields"]}
    assert fields["mean radius"] == "sc:Float"
    assert fields["target"] == "sc:Integer"
    assert fields["ward"] == "sc:Text"


def test_numpy_arrays_and_pairs_are_record_sets(ws: Workspace, cancer: pd.DataFrame) -> None:
    owner = ws.register_party("Lab")
    features, y = load_breast_cancer(return_X_y=True)
    pair = ws.register_data((features, y), name="pair", by=owner)
    with pytest.warns(OverlapWarning, match="569 of 569 records .* near-duplicates in 'pair'"):
        matrix = ws.register_data(
            np.column_stack([features, y.astype(float)]), name="matrix", by=owner
        )
    assert pair != matrix  # the label is an integer in one, a float in the other
    assert ws.asset_entry(pair).size == len(y)  # type: ignore[union-attr]
    altered = features.copy()
    altered[17, 3] += 1e-9
    with pytest.warns(OverlapWarning, match="569 of 569"):  # 568 exact, 1 near
        assert ws.register_data((altered, y), name="altered", by=owner) != pair


def test_files_folders_and_bytes(ws: Workspace, tmp_path: Path) -> None:
    owner = ws.register_party("Archive")
    folder = tmp_path / "scans"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.txt").write_text("one")
    (folder / "2.txt").write_text("two")
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"\x00" * 1000)
    by_folder = ws.register_data(folder, name="scans", by=owner)
    by_file = ws.register_data(blob, name="weights", by=owner, asset_kind="model")
    by_bytes = ws.register_data(b"\x00" * 1000, name="same bytes", by=owner)
    assert by_file == by_bytes  # a file is its bytes' SHA-256
    assert ws.asset_entry(by_folder).scheme == "merkle-files"  # type: ignore[union-attr]
    assert ws.asset_entry(by_file).size == 1000  # type: ignore[union-attr]


def test_unreadable_or_vanished_files_are_clear_errors(ws: Workspace, tmp_path: Path) -> None:
    owner = ws.register_party("Archive")
    with pytest.raises(InputError, match=r"cannot read .*gone\.csv"):
        ws.register_data(tmp_path / "gone.csv", name="gone", by=owner)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"x")
    secret.chmod(0)
    try:
        if not _can_read(secret):  # root reads anything
            with pytest.raises(InputError, match="cannot read"):
                ws.register_data(secret, name="secret", by=owner)
    finally:
        secret.chmod(0o600)
    assert size(ws) == 1  # only the party


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


def test_bad_tables_say_what_to_fix(ws: Workspace) -> None:
    owner = ws.register_party("Lab")
    with pytest.raises(InputError, match="no records"):
        ws.register_data(pd.DataFrame({"a": []}), name="empty", by=owner)
    with pytest.raises(InputError, match="column 'n' has missing values"):
        ws.register_data(
            pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}), name="gaps", by=owner
        )
    with pytest.raises(InputError, match=r"cannot read records from a builtins\.dict"):
        ws.register_data({"a": 1}, name="dict", by=owner)
    with pytest.raises(InputError, match=r"license.* malformed") as caught:
        ws.register_data(b"data", name="bad licence", by=owner, license="not a licence!")
    assert "SPDX" in str(caught.value.hint)


def test_text_encoding_is_documented_bytes() -> None:
    encoded = encode_table(pd.DataFrame({"n": [1], "x": [0.5], "s": ["é"], "b": [True]}))
    record = encoded.records.record(0)
    assert record == (
        (1).to_bytes(8, "little")
        + np.float64(0.5).tobytes()
        + b"\x01"
        + (2).to_bytes(4, "little")
        + "é".encode()
    )


def test_cohorts_labelling_models_services_and_grants(ws: Workspace, cancer: pd.DataFrame) -> None:
    coop = ws.register_party("Coop", roles=("coop",), agent_type="community")
    ana = ws.register_party("Ana", agent_type="person")
    ben = ws.register_party("Ben", agent_type="person")
    uni = ws.register_party("University")
    dataset = ws.register_data(cancer, name="all patients", by=coop, license="CC-BY-4.0")
    cohort = ws.register_cohort(
        cancer.head(50), of=dataset, name="ward 3", by=coop, selection="first 50"
    )
    labels = pd.DataFrame(
        {"record": range(5), "label": [0, 1, 1, 0, 1], "annotator": list("aabab")}
    )
    batch = ws.register_labelling_batch(
        labels,
        name="corrections",
        by=coop,
        annotator_column="annotator",
        annotators={"a": ana, "b": ben},
        of=[cohort],
        label_set=["benign", "malignant"],
    )
    grant = ws.register_compute_grant(name="GPU grant", grantor=uni, resources={"gpu_hours": 120})
    model = LogisticRegression(max_iter=5000).fit(cancer.drop(columns="target"), cancer["target"])
    model_digest = ws.register_model(
        model, name="diagnosis", by=coop, intended_use="triage support", metrics={"accuracy": 0.95}
    )
    service = ws.register_service(
        name="diagnosis API",
        endpoint="https://api.example.org/v1/diagnose",
        model=model_digest,
        by=coop,
    )
    assert ws.asset_entry(cohort).derived_from == (dataset,)  # type: ignore[union-attr]
    batch_entry = ws.asset_entry(batch)
    assert batch_entry is not None
    assert batch_entry.metadata["annotators"] == {
        str(ana): 3,
        str(ben): 2,
    }
    shares = {c.party: c.share for c in ws.contributions() if c.asset == batch}
    assert shares == {ana: Fraction(3, 5), ben: Fraction(2, 5)}
    grant_entry = ws.asset_entry(grant)
    assert grant_entry is not None
    assert grant_entry.metadata["resources"] == {"gpu_hours": "120"}
    assert [(c.party, c.role) for c in ws.contributions() if c.asset == grant] == [(uni, "compute")]
    card = ws.asset_entry(model_digest)
    assert card is not None
    assert card.metadata["metrics"] == {"accuracy": "0.95"}
    assert card.metadata["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert card.metadata["parameters"]["max_iter"] == "5000"
    assert ws.asset_entry(service).derived_from == (model_digest,)  # type: ignore[union-attr]
    assert (
        ws.register_service(
            name="again",
            endpoint="https://api.example.org/v1/diagnose",
            model=model_digest,
            by=coop,
        )
        == service
    )
    with pytest.raises(NotFoundError, match="not a registered model"):
        ws.register_service(name="x", endpoint="https://x.org/", model=dataset, by=coop)
    with pytest.raises(InputError, match="not positive"):
        ws.register_compute_grant(name="none", grantor=uni, resources={"gpu_hours": 0})


# ------------------------------------------------------------ contributions


def test_shares_must_add_up_or_be_normalised(ws: Workspace) -> None:
    a, b, c = (ws.register_party(n) for n in "abc")
    asset = ws.register_data(b"data", name="d", by=a)
    before = size(ws)
    with pytest.raises(InputError, match="add up to 1/2, not 1"):
        ws.contribute(asset, {a: "1/4", b: "1/4"}, role="data", by=a)
    with pytest.raises(InputError, match="negative"):
        ws.contribute(asset, {a: "-1/4", b: "5/4"}, role="data", by=a)
    with pytest.raises(InputError, match="not a number"):
        ws.contribute(asset, {a: "half"}, role="data", by=a)
    assert size(ws) == before  # nothing half-written
    ws.contribute(asset, {a: 2, b: 1}, role="data", by=a, normalise=True)
    assert {x.party: x.share for x in ws.contributions()} == {a: Fraction(2, 3), b: Fraction(1, 3)}
    with pytest.raises(InputError, match="already has contributors declaring the whole"):
        ws.contribute(asset, {c: 1}, role="code", by=a, normalise=True)
    other = ws.register_data(b"other", name="o", by=a)
    ws.contribute(other, {a: "1/2"}, role="data", by=a, partial=True)
    with pytest.raises(InputError, match="add up to 1 but 1/2 remains"):
        ws.contribute(other, {b: "1/2", c: "1/2"}, role="data", by=a)
    with pytest.raises(InputError, match="would add up to 3/2"):
        ws.contribute(other, {b: 1}, role="data", by=a, partial=True)
    ws.contribute(other, {b: 0.25, c: 0.25}, role="data", by=a)


# -------------------------------------------------------------------- runs


def test_a_run_records_inputs_outputs_parameters_code_and_environment(
    ws: Workspace, tmp_path: Path
) -> None:
    lab = ws.register_party("Lab", roles=("operator",))
    source = ws.register_data(b"raw", name="raw", by=lab)
    with ws.run(
        "clean", operator=lab, parameters={"threshold": 0.5}, code_folder=Path.cwd()
    ) as run:
        run.use(source)
        cleaned = ws.register_data(b"clean", name="clean", by=lab)
        run.produce(cleaned)
        run.log_parameters(rows=3)
    body = ws.run_entry(str(run.id))
    assert body.status == "succeeded"
    assert body.error is None
    assert body.inputs == (source,)
    assert body.outputs == (cleaned,)
    assert body.parameters == {"threshold": "0.5", "rows": "3"}
    assert body.environment["python"].startswith("3.")
    assert "package:numpy" in body.environment
    assert len(body.code["commit"]) == 40
    assert body.code["dirty"] in {"true", "false"}
    assert body.ended >= body.started
    assert sorted(e.relation for e in ws.lineage(cleaned).edges) == ["generated", "used"]


def test_a_run_that_raises_is_recorded_as_failed(ws: Workspace) -> None:
    lab = ws.register_party("Lab", roles=("operator",))
    source = ws.register_data(b"raw", name="raw", by=lab)
    with pytest.raises(ZeroDivisionError), ws.run("train", operator=lab) as run:  # noqa: PT012
        run.use(source)
        _ = 1 / 0
    body = ws.run_entry(str(run.id))
    assert body.status == "failed"
    assert body.error == "ZeroDivisionError: division by zero"


def test_a_run_that_produces_nothing_is_refused_and_not_recorded(ws: Workspace) -> None:
    lab = ws.register_party("Lab", roles=("operator",))
    before = size(ws)
    with pytest.raises(InputError, match="produced nothing"), ws.run("noop", operator=lab):
        pass
    assert size(ws) == before
    assert ws.runs() == []


def test_runs_name_known_parties_and_assets_and_never_close_a_cycle(
    ws: Workspace, clock: FakeClock
) -> None:
    lab = ws.register_party("Lab", roles=("operator",))
    a = ws.register_data(b"a", name="a", by=lab)
    b = ws.register_data(b"b", name="b", by=lab)
    stranger = PartyId.new(clock)
    with (
        pytest.raises(NotFoundError, match="holds no key for"),
        ws.run("x", operator=stranger) as run,
    ):
        run.produce(a)
    with pytest.raises(NotFoundError, match="unknown asset"), ws.run("x", operator=lab) as run:
        run.produce(Digest.of_bytes(b"never registered"))
    with ws.run("a to b", operator=lab) as run:
        run.use(a)
        run.produce(b)
    with pytest.raises(InputError, match="lineage cycle"), ws.run("b to a", operator=lab) as run:  # noqa: PT012
        run.use(b)
        run.produce(a)
    assert len(ws.runs()) == 1


def test_scikit_learn_fits_record_themselves(ws: Workspace, cancer: pd.DataFrame) -> None:
    lab = ws.register_party("Lab", roles=("operator",))
    hospitals = [ws.register_party(f"Hospital {i}") for i in range(3)]
    features, y = cancer.drop(columns="target"), cancer["target"]
    parts = np.array_split(np.arange(len(cancer)), 3)
    dataset = ws.register_data(cancer, name="all", by=lab)
    cohorts = []
    for hospital, rows in zip(hospitals, parts, strict=True):
        cohort = ws.register_cohort(
            cancer.iloc[rows], of=dataset, name=f"cohort {hospital}", by=hospital
        )
        ws.contribute(cohort, {hospital: 1}, role="data", by=hospital)
        cohorts.append(cohort)
    train = np.concatenate(parts[:2])
    tracked = ws.track(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        operator=lab,
        name="diagnosis",
        uses=cohorts[:2],
        evaluate_on=(features.iloc[parts[2]], y.iloc[parts[2]]),
        intended_use="triage",
    )
    tracked.fit(features.iloc[train], y.iloc[train])
    assert tracked.predict(features.iloc[:3]).shape == (3,)  # the estimator's API passes through
    assert tracked.model is not None
    assert tracked.last_run is not None
    card = ws.asset_entry(tracked.model)
    assert card is not None
    assert float(card.metadata["metrics"]["score"]) > 0.9
    assert card.metadata["parameters"]["logisticregression__max_iter"] == "1000"
    run = ws.run_entry(str(tracked.last_run.id))
    assert set(cohorts[:2]) <= set(run.inputs)
    assert run.outputs == (tracked.model,)
    # The held-out rows are exactly the third cohort's content, so the evaluation set *is*
    # that cohort: used in the role "evaluation", not learned from. All three hospitals are
    # upstream of the model in its lineage (two by training, one by evaluation).
    assert cohorts[2] not in run.inputs
    assert run.uses == {cohorts[2]: "evaluation"}
    assert run.used_as("evaluation") == (cohorts[2],)
    feeding = ws.contributions_feeding(tracked.model)
    assert {c.party for c in feeding} == {str(h) for h in hospitals}
    assert all(c.role == "data" and c.share == "1" for c in feeding)
    assert [m.id for m in ws.models_using(cohorts[0])] == [str(tracked.model)]
    assert [m.id for m in ws.models_using(dataset)] == [str(tracked.model)]
    other = ws.register_data(b"unrelated", name="unrelated", by=lab)
    assert ws.models_using(other) == []
    upstream = {node.id for node in ws.lineage(tracked.model).nodes}
    assert {str(c) for c in cohorts[:2]} | {str(dataset)} <= upstream


def test_a_decorated_pipeline_function_is_a_run(ws: Workspace, cancer: pd.DataFrame) -> None:
    lab = ws.register_party("Lab", roles=("operator",))
    raw = ws.register_data(cancer, name="raw", by=lab)

    @ws.step(operator=lab)
    def select_large(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
        return frame[frame["mean radius"] > threshold]

    with pytest.warns(
        OverlapWarning, match="are copies of records in 'raw'"
    ):  # a subset of its rows
        result = select_large(cancer, 15.0)
    assert len(result) == int((cancer["mean radius"] > 15.0).sum())
    run = select_large.last_run  # type: ignore[attr-defined]
    body = ws.run_entry(str(run.id))
    assert body.name == "select_large"
    assert body.inputs == (raw,)
    assert body.parameters == {"threshold": "15.0"}
    output = ws.asset_entry(body.outputs[0])
    assert output is not None
    assert output.size == len(result)


def test_a_record_is_provably_in_a_cohort(ws: Workspace, cancer: pd.DataFrame) -> None:
    hospital = ws.register_party("Hospital")
    cohort = ws.register_data(cancer.head(100), name="cohort", by=hospital, asset_kind="cohort")
    proof = ws.prove_record(cohort, cancer.head(100), 42)
    proof.verify(cohort)
    assert proof.member == encode_table(cancer.head(100)).records.record(42)
    with pytest.raises(VerificationError):
        proof.verify(Digest.of_bytes(b"another cohort"))
    with pytest.raises(InputError, match="not the content of asset"):
        ws.prove_record(cohort, cancer.head(99), 42)


def test_lookups_of_bad_or_unknown_ids(ws: Workspace) -> None:
    with pytest.raises(InputError, match="not a digest"):
        ws.lineage("sha256:abc")
    with pytest.raises(NotFoundError, match="no asset or run"):
        ws.lineage(str(Digest.of_bytes(b"nothing")))
    with pytest.raises(NotFoundError, match="no asset or run 'nobody'"):
        ws.lineage("nobody")


def test_runs_survive_rebuild_and_verify(
    tmp_path: Path, database_url: str | None, clock: FakeClock
) -> None:
    with init_workspace(tmp_path / "ws", database_url=database_url, clock=clock) as ws:
        lab = ws.register_party("Lab", roles=("operator",))
        a = ws.register_data(b"a", name="a", by=lab)
        b = ws.register_data(b"b", name="b", by=lab, derived_from=[a])
        with ws.run("step", operator=lab) as run:
            run.use(b)
            run.produce(ws.register_data(b"c", name="c", by=lab))
        before = ws.lineage(a, "downstream").to_json()
        ws.verify()
        ws.rebuild()
        assert ws.lineage(a, "downstream").to_json() == before
        assert len(before["edges"]) == 3


def test_run_bodies_refuse_inconsistent_records(clock: FakeClock) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    good = RunRecorded(
        run=__import__("quotepart.ids", fromlist=["RunId"]).RunId.new(clock),
        name="x",
        operator=PartyId.new(clock),
        status="succeeded",
        started=now,
        ended=now,
        outputs=(Digest.of_bytes(b"o"),),
    )
    body = good.to_body()
    assert RunRecorded.from_body(body) == good
    for change, message in [
        ({"status": "failed"}, "failed run carries its error"),
        ({"outputs": []}, "produced nothing"),
        ({"ended": "2025-01-01T00:00:00.000000Z"}, "ended .* before it started"),
        ({"inputs": body["outputs"]}, "both use and produce"),
        ({"parameters": {"lr": 0.1}}, "map names to strings"),
    ]:
        with pytest.raises(InputError, match=message):
            RunRecorded.from_body({**body, **change})


def test_the_lineage_index_sees_appends_made_by_another_workspace(
    tmp_path: Path, database_url: str | None, clock: FakeClock
) -> None:
    with init_workspace(tmp_path / "ws", database_url=database_url, clock=clock) as first:
        lab = first.register_party("Lab", roles=("operator",))
        raw = first.register_data(b"raw", name="raw", by=lab)
        assert first.models_using(raw) == []  # answered in SQL
        assert first.models_using(raw) == []  # the index is loaded here
        with (
            open_workspace(tmp_path / "ws", database_url=database_url, clock=clock) as second,
            second.run("train", operator=lab) as run,
        ):
            run.use(raw)
            run.produce(second.register_data(b"w", name="model", by=lab, asset_kind="model"))
        assert [m.name for m in first.models_using(raw)] == ["model"]
        assert first.provenance.lineage_index.size == first.store.tree_size()
