"""Sharing through a real workspace (SQLite and PostgreSQL): record, share, state, prove, pay."""

from __future__ import annotations

import copy
import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotepart.cli import cli
from quotepart.errors import (
    InputError,
    MoneyError,
    PaymentDetailsError,
    PolicyError,
    QuotepartError,
    RightsError,
    VerificationError,
)
from quotepart.sharing import verify_statement
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock

GOOD_IBANS = ["DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300"]


class Scene:
    """A service over a model trained on two hospitals' data and one labelling batch."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lab = ws.register_party("Lab", roles=("operator",), payout_reference=GOOD_IBANS[2])
        self.hospital_a = ws.register_party("Hospital A", payout_reference=GOOD_IBANS[0])
        self.hospital_b = ws.register_party("Hospital B", payout_reference=GOOD_IBANS[1])
        self.annotator = ws.register_party("Annotator", payout_reference="+254712345678")
        self.data_a = ws.register_asset(
            b"records a", asset_kind="dataset", name="A", by=self.hospital_a
        )
        self.data_b = ws.register_asset(
            b"records b", asset_kind="dataset", name="B", by=self.hospital_b
        )
        self.labels = ws.register_asset(
            b"labels", asset_kind="labelling_batch", name="L", by=self.annotator
        )
        ws.contribute(self.data_a, {self.hospital_a: 1}, role="data", by=self.hospital_a)
        ws.contribute(self.data_b, {self.hospital_b: 1}, role="data", by=self.hospital_b)
        ws.contribute(self.labels, {self.annotator: 1}, role="annotation", by=self.annotator)
        with ws.run("train", operator=self.lab) as run:
            run.use(self.data_a)
            run.use(self.data_b)
            run.use(self.labels)
            self.model = ws.register_asset(b"weights", asset_kind="model", name="M", by=self.lab)
            run.produce(self.model)
        self.service = ws.register_service(
            name="triage", endpoint="https://api.example.org/v1", model=self.model, by=self.lab
        )
        ws.set_policy(
            self.model, pool="1/5", roles={"data": "3/4", "annotation": "1/4"},
            weighting={"data": "valuation", "annotation": "equal"}, by=self.lab,
        )  # fmt: skip
        ws.record_valuation(
            self.model,
            {self.data_a: 0.3, self.data_b: 0.1},
            method="exact",
            evaluations=4,
            by=self.lab,
        )


@pytest.fixture
def scene(tmp_path: Path, database_url: str | None) -> Iterator[Scene]:
    with init_workspace(tmp_path / "ws", database_url=database_url, clock=FakeClock()) as ws:
        yield Scene(ws)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Scene]:
    """The scene on the embedded SQLite default only."""
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        yield Scene(ws)


def test_share_records_an_exact_allocation_once(scene: Scene) -> None:
    ws = scene.ws
    revenue = ws.record_revenue(
        scene.service, "1000.00", "EUR", period="2026-Q1", source="invoice 1", by=scene.lab
    )
    shared = ws.share(revenue)
    assert shared.new
    assert shared.allocation.amounts == {
        scene.lab: 80_000, scene.hospital_a: 11_250, scene.hospital_b: 3_750, scene.annotator: 5_000,
    }  # fmt: skip
    size = ws.store.tree_size()
    again = ws.share(revenue)
    assert not again.new
    assert again.leaf_index == shared.leaf_index
    assert again.allocation.amounts == shared.allocation.amounts
    assert ws.store.tree_size() == size  # nothing appended the second time
    ws.verify()  # projections replayed from the log equal the live tables


def test_statement_traces_each_line_to_entries_and_the_proof_verifies_offline(scene: Scene) -> None:
    ws = scene.ws
    for period, amount in (("2026-01", "300.00"), ("2026-02", "700.00"), ("2026-04", "50.00")):
        ws.share(
            ws.record_revenue(
                scene.service, amount, "EUR", period=period, source=period, by=scene.lab
            )
        )
    statement = ws.statement(scene.hospital_b, "2026-Q1")
    assert statement.totals == {"EUR": 3_750}  # April is outside the quarter
    assert len(statement.items) == 2
    for item in statement.items:
        for line in item.lines:
            assert [hop.what for hop in line.trace][:3] == ["revenue", "service", "model"]
            assert line.trace[-1].what == "contribution"
            named = [hop.entry for hop in line.trace if hop.entry]
            assert len(named) >= 5
    rows = list(csv.DictReader(io.StringIO(statement.to_csv())))
    assert sum(int(r["amount_minor"]) for r in rows) == 3_750
    proof = json.loads(json.dumps(ws.statement_proof(scene.hospital_b, "2026-Q1")))
    verified = verify_statement(proof, trusted_key=str(ws.verifier))
    assert verified.totals == {"EUR": 3_750}
    assert verified.allocations == 2


def test_statements_name_the_party_and_the_assets_beside_their_ids(local: Scene) -> None:
    scene, ws = local, local.ws
    ws.share(
        ws.record_revenue(
            scene.service, "300.00", "EUR", period="2026-01", source="x", by=scene.lab
        )
    )
    statement = ws.statement(scene.hospital_b, "2026-Q1")
    assert statement.party_name == "Hospital B"
    [row] = csv.DictReader(io.StringIO(statement.to_csv()))
    assert (row["party"], row["party_name"]) == (str(scene.hospital_b), "Hospital B")
    assert (row["asset"], row["asset_name"]) == (str(scene.data_b), "B")
    assert f"dataset B ({scene.data_b})" in row["trace"]
    assert f"model M ({scene.model})" in row["trace"]
    [line] = statement.to_json()["items"][0]["lines"]
    assert (line["asset"], line["asset_name"]) == (str(scene.data_b), "B")
    # the proof file names them too, and verification returns the names its entries prove
    proof = json.loads(json.dumps(ws.statement_proof(scene.hospital_b, "2026-Q1")))
    assert proof["names"]["parties"][str(scene.hospital_b)] == "Hospital B"
    assert proof["names"]["assets"][str(scene.data_b)] == "B"
    verified = verify_statement(proof)
    assert verified.party_name == "Hospital B"
    assert verified.paid_at == {str(scene.data_b): "B"}


def test_a_statement_with_nothing_allocated_still_names_its_party(local: Scene) -> None:
    scene, ws = local, local.ws
    assert ws.statement(scene.annotator, "2026").party_name == "Annotator"
    verified = verify_statement(ws.statement_proof(scene.annotator, "2026"))
    assert (verified.party_name, verified.totals, verified.paid_at) == ("Annotator", {}, {})


@pytest.mark.parametrize("part", ["parties", "assets"])
def test_a_tampered_name_in_a_statement_file_fails(local: Scene, part: str) -> None:
    scene, ws = local, local.ws
    ws.share(
        ws.record_revenue(scene.service, "10.00", "EUR", period="2026-01", source="x", by=scene.lab)
    )
    proof = json.loads(json.dumps(ws.statement_proof(scene.hospital_a, "2026")))
    ref = str(scene.hospital_a) if part == "parties" else str(scene.data_a)
    proof["names"][part][ref] = "Mallory"
    with pytest.raises(VerificationError, match="its registration entry says"):
        verify_statement(proof)
    del proof["names"][part][ref]  # a name left out is a tampered part too
    with pytest.raises(VerificationError, match="its registration entry says"):
        verify_statement(proof)
    del proof["names"]
    with pytest.raises(VerificationError, match="lacks a part"):
        verify_statement(proof)


def test_a_name_changed_inside_its_registration_entry_breaks_the_inclusion_proof(
    local: Scene,
) -> None:
    import base64

    scene, ws = local, local.ws
    proof = ws.statement_proof(scene.hospital_a, "2026")
    for index, blob in proof["entries"].items():
        raw = base64.b64decode(blob)
        if b'"name":"Hospital A"' in raw:
            forged = raw.replace(b'"name":"Hospital A"', b'"name":"Mallory Ltd"')
            proof["entries"][index] = base64.b64encode(forged).decode()
    proof["names"]["parties"][str(scene.hospital_a)] = "Mallory Ltd"
    with pytest.raises(VerificationError, match="proof gives root"):
        verify_statement(proof)


def test_a_version_1_statement_file_still_verifies_without_a_names_part(local: Scene) -> None:
    scene, ws = local, local.ws
    ws.share(
        ws.record_revenue(scene.service, "10.00", "EUR", period="2026-01", source="x", by=scene.lab)
    )
    proof = ws.statement_proof(scene.hospital_a, "2026")
    del proof["names"]
    proof["format"] = "quotepart-statement/1"
    assert verify_statement(proof).totals == ws.statement(scene.hospital_a, "2026").totals


def _altered(proof: dict[str, Any], how: str) -> dict[str, Any]:
    doc = copy.deepcopy(proof)
    if how == "claimed":
        doc["claimed"]["EUR"] += 1
    elif how == "missing entry":
        index = doc["allocations"][0]["inputs"][-1]
        del doc["entries"][str(index)]
    elif how == "proof":
        index = next(iter(doc["proofs"]))
        doc["proofs"][index][0] = "00" * 32
    elif how == "checkpoint":
        doc["log"]["checkpoint"] = doc["log"]["checkpoint"].replace("\n", "\n\n", 1)
    elif how == "dropped allocation":
        doc["allocations"] = doc["allocations"][1:]
    return doc


@pytest.mark.parametrize(
    "how", ["claimed", "missing entry", "proof", "checkpoint", "dropped allocation"]
)
def test_an_altered_statement_file_fails_loudly(local: Scene, how: str) -> None:
    scene = local
    ws = scene.ws
    for period in ("2026-01", "2026-02"):
        ws.share(
            ws.record_revenue(
                scene.service, "10.00", "EUR", period=period, source="x", by=scene.lab
            )
        )
    proof = ws.statement_proof(scene.hospital_a, "2026-Q1")
    verify_statement(proof)
    with pytest.raises(QuotepartError):
        verify_statement(_altered(proof, how))


def test_an_altered_amount_inside_an_entry_breaks_its_inclusion_proof(local: Scene) -> None:
    scene = local
    ws = scene.ws
    ws.share(
        ws.record_revenue(scene.service, "10.00", "EUR", period="2026-01", source="x", by=scene.lab)
    )
    proof = ws.statement_proof(scene.hospital_a, "2026")
    index = str(proof["allocations"][0]["allocation"])
    import base64

    raw = base64.b64decode(proof["entries"][index]).replace(
        b'"total_minor":1000', b'"total_minor":1001'
    )
    proof["entries"][index] = base64.b64encode(raw).decode()
    with pytest.raises(VerificationError, match="proof gives root"):
        verify_statement(proof)


def test_the_cli_shares_states_and_verifies_on_a_machine_without_the_workspace(
    tmp_path: Path,
) -> None:
    scene = Scene(init_workspace(tmp_path / "ws", clock=FakeClock()))
    scene.ws.close()
    runner = CliRunner(env={"QUOTEPART_HOME": str(tmp_path / "ws")})
    recorded = runner.invoke(cli, ["revenue", "record", str(scene.service), "1000.00", "EUR",
                                   "--period", "2026-Q1", "--source", "inv", "--by", str(scene.lab)])  # fmt: skip
    assert recorded.exit_code == 0, recorded.output
    revenue = recorded.stdout.strip()
    shared = runner.invoke(cli, ["share", revenue, "--json"])
    assert shared.exit_code == 0, shared.output
    assert json.loads(shared.stdout)["amounts"][str(scene.hospital_a)] == 11_250
    as_csv = runner.invoke(
        cli, ["statement", str(scene.hospital_a), "--period", "2026-Q1", "--csv"]
    )
    assert as_csv.exit_code == 0
    assert "11250" in as_csv.stdout
    proof = runner.invoke(
        cli, ["statement", str(scene.hospital_a), "--period", "2026-Q1", "--proof"]
    )
    assert proof.exit_code == 0
    mine = tmp_path / "elsewhere" / "mine.json"
    mine.parent.mkdir()
    mine.write_text(proof.stdout)
    offline = CliRunner(env={"QUOTEPART_HOME": str(tmp_path / "nowhere")})
    checked = offline.invoke(cli, ["verify-statement", str(mine)])
    assert checked.exit_code == 0, checked.output
    assert "112.50 EUR" in checked.stdout
    assert f"OK: Hospital A ({scene.hospital_a}) earned" in checked.stdout
    assert f"paid at A ({scene.data_a})" in checked.stdout
    as_text = runner.invoke(cli, ["statement", str(scene.hospital_a), "--period", "2026-Q1"])
    assert as_text.exit_code == 0, as_text.output
    assert f"Hospital A ({scene.hospital_a}), 2026-Q1" in as_text.stdout
    assert f"contribution at A ({str(scene.data_a)[:24]})" in as_text.stdout
    forged = json.loads(proof.stdout)
    forged["names"]["parties"][str(scene.hospital_a)] = "Mallory Ltd"
    mine.write_text(json.dumps(forged))
    refused_name = offline.invoke(cli, ["verify-statement", str(mine)])
    assert refused_name.exit_code == 3
    assert "Mallory Ltd" not in refused_name.stdout
    mine.write_text(proof.stdout.replace('"EUR": 11250', '"EUR": 11251'))
    refused = offline.invoke(cli, ["verify-statement", str(mine)])
    assert refused.exit_code == 3
    assert "Error:" in refused.stderr


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("100.00", "ABC"), MoneyError, "ABC"),
        (("12.345", "EUR"), MoneyError, "minor unit"),
        (("-5.00", "EUR"), MoneyError, "positive"),
        ((1.5, "EUR"), MoneyError, "neither minor units"),
    ],
)
def test_bad_revenue_is_refused_and_the_log_is_left_as_it_was(
    scene: Scene, args: tuple[Any, str], error: type[Exception], message: str
) -> None:
    size = scene.ws.store.tree_size()
    with pytest.raises(error, match=message):
        scene.ws.record_revenue(
            scene.service, args[0], args[1], period="2026-Q1", source="x", by=scene.lab
        )
    assert scene.ws.store.tree_size() == size


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool": "3/2", "roles": {"data": "1"}}, "more than 100 %"),
        ({"pool": "1/5", "roles": {"data": "1/2", "marketing": "1/2"}}, "unknown role"),
        ({"pool": "1/5", "roles": {"data": "1/2"}}, "sums to 1/2"),
    ],
)
def test_bad_policies_are_refused(scene: Scene, options: dict[str, Any], message: str) -> None:
    size = scene.ws.store.tree_size()
    with pytest.raises(PolicyError, match=message):
        scene.ws.set_policy(scene.model, by=scene.lab, **options)
    assert scene.ws.store.tree_size() == size


def test_a_missing_valuation_refuses_to_share_and_writes_nothing(scene: Scene) -> None:
    ws = scene.ws
    ws.set_policy(scene.model, pool="1/5", roles={"data": "1/2", "annotation": "1/2"}, by=scene.lab)
    revenue = ws.record_revenue(
        scene.service, "10.00", "EUR", period="2026-Q1", source="x", by=scene.lab
    )
    size = ws.store.tree_size()
    with pytest.raises(PolicyError, match="no recorded valuation"):
        ws.share(revenue)
    assert ws.store.tree_size() == size


def test_withdrawn_consent_before_the_run_pays_nothing(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", clock=FakeClock())
    lab, gone, stays = (ws.register_party(n) for n in ("Lab", "Gone", "Stays"))
    data = ws.register_asset(b"d", asset_kind="dataset", name="D", by=lab)
    ws.contribute(data, {gone: "1/2", stays: "1/2"}, role="data", by=lab)
    ws.withdraw_consent(gone, data)
    with ws.run("train", operator=lab) as run:
        run.use(data)
        model = ws.register_asset(b"m", asset_kind="model", name="M", by=lab)
        run.produce(model)
    ws.set_policy(model, pool="1", roles={"data": "1"}, weighting="equal", by=lab)
    shared = ws.share(
        ws.record_revenue(model, "10.00", "EUR", period="2026-01", source="x", by=lab)
    )
    assert shared.allocation.amount_of(gone) == 0
    assert shared.allocation.amount_of(stays) == 1_000
    ws.close()


def test_payouts_carry_small_balances_and_never_pay_twice(scene: Scene) -> None:
    ws = scene.ws
    ws.share(
        ws.record_revenue(
            scene.service, "1000.00", "EUR", period="2026-01", source="x", by=scene.lab
        )
    )
    sepa = {"debtor_name": "Lab", "debtor_iban": GOOD_IBANS[2]}
    first = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=6_000, **sepa)
    assert first.new
    assert first.paid == {scene.lab: 80_000, scene.hospital_a: 11_250}
    assert first.carried == {scene.hospital_b: 3_750, scene.annotator: 5_000}
    root = ET.fromstring(first.content)
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
    # the lab pays from its own account: its balance is settled without a transfer to itself
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == "112.50"
    assert root.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=ns) == "1"
    assert first.path.read_bytes() == first.content
    size = ws.store.tree_size()
    again = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=6_000, **sepa)
    assert not again.new
    assert again.content == first.content
    assert ws.store.tree_size() == size
    # the log itself refuses a payout of money that was already paid
    from quotepart.ids import PayoutId, Period
    from quotepart.log.kinds import PayoutRecorded

    with pytest.raises(RightsError, match="who is owed 0 by its payer"):
        ws.append(
            PayoutRecorded(
                PayoutId.new(), Period.parse("2026-Q2"), "EUR", "sepa", {scene.lab: 80_000}
            ),
            author=scene.lab,
        )
    assert ws.store.tree_size() == size
    ws.verify()


def test_a_bad_paying_account_is_refused_before_anything_is_written(scene: Scene) -> None:
    ws = scene.ws
    ws.share(
        ws.record_revenue(
            scene.service, "1000.00", "EUR", period="2026-01", source="x", by=scene.lab
        )
    )
    size = ws.store.tree_size()
    with pytest.raises(PaymentDetailsError, match="IBAN"):
        ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=6_000,
                         debtor_name="Lab", debtor_iban="DE89370400440532013001")  # fmt: skip
    assert ws.store.tree_size() == size
    folder = ws.path / "payouts"
    assert not folder.exists() or not any(folder.iterdir())


def test_mobile_money_csv_pays_by_phone_number(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", clock=FakeClock())
    lab = ws.register_party("Coop", payout_reference="+254700000001")
    members = [
        ws.register_party(f"Member {i}", payout_reference=f"+2547000000{10 + i}") for i in range(3)
    ]
    data = ws.register_asset(b"d", asset_kind="dataset", name="D", by=lab)
    ws.contribute(data, dict.fromkeys(members, "1/3"), role="data", by=lab)
    model = ws.register_asset(b"m", asset_kind="model", name="M", by=lab)
    with ws.run("train", operator=lab) as run:
        run.use(data)
        run.produce(model)
    ws.set_policy(model, pool="1/2", roles={"data": "1"}, weighting="equal", by=lab)
    ws.share(ws.record_revenue(model, "1000", "KES", period="2026-01", source="x", by=lab))
    exported = ws.export_payout("2026-01", "KES", "mobile_money", by=lab)
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert sorted(int(r["amount_minor"]) for r in rows) == [16_666, 16_667, 16_667, 50_000]
    assert {r["currency"] for r in rows} == {"KES"}
    assert sum(int(r["amount_minor"]) for r in rows) == 100_000
    ws.close()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amounts=st.lists(st.integers(1, 10**9), min_size=1, max_size=4),
    values=st.tuples(st.integers(-10, 100), st.integers(-10, 100)),
)
def test_replaying_the_log_reproduces_every_allocation(
    tmp_path_factory: pytest.TempPathFactory, amounts: list[int], values: tuple[int, int]
) -> None:
    ws = init_workspace(tmp_path_factory.mktemp("replay") / "ws", clock=FakeClock())
    scene = Scene(ws)
    ws.record_valuation(scene.model, {scene.data_a: str(values[0]), scene.data_b: str(values[1])},
                        method="exact", evaluations=4, by=scene.lab)  # fmt: skip
    for month, amount in enumerate(amounts, 1):
        ws.share(
            ws.record_revenue(
                scene.service, amount, "EUR", period=f"2026-{month:02d}", source="x", by=scene.lab
            )
        )
    ws.verify()  # every projection, allocations included, equals a replay of the log
    for party in (scene.lab, scene.hospital_a, scene.hospital_b, scene.annotator):
        statement = ws.statement(party, "2026")  # each allocation recomputed from its entries
        proof = ws.statement_proof(party, "2026")
        assert verify_statement(proof).totals == statement.totals
    total = sum(
        sum(ws.statement(p, "2026").totals.values())
        for p in (scene.lab, scene.hospital_a, scene.hospital_b, scene.annotator)
    )
    assert total == sum(amounts)
    ws.close()


def test_the_cli_sets_policy_values_consent_and_exports_a_payout_once(
    local: Scene, tmp_path: Path
) -> None:
    scene = local
    folder = str(scene.ws.path)
    scene.ws.close()
    runner = CliRunner(env={"QUOTEPART_HOME": folder})

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    values = tmp_path / "values.json"
    values.write_text(json.dumps({str(scene.data_a): "0.1", str(scene.data_b): "0.1"}))
    ok(
        "valuation",
        "record",
        str(scene.model),
        str(values),
        "--method",
        "exact",
        "--evaluations",
        "4",
        "--by",
        str(scene.lab),
    )
    ok("policy", "set", str(scene.model), "--pool", "1/2", "--role", "data=1", "--weighting", "data=valuation",
       "--minimum-payout", "100", "--by", str(scene.lab))  # fmt: skip
    ok(
        "consent",
        "withdraw",
        str(scene.hospital_b),
        str(scene.data_b),
        "--effective",
        "2025-12-01T00:00:00.000000Z",
    )
    revenue = ok("revenue", "record", str(scene.service), "100.00", "EUR", "--period", "2026-01",
                 "--source", "inv", "--by", str(scene.lab)).strip()  # fmt: skip
    assert json.loads(ok("revenue", "list", "--json"))[0]["amount_minor"] == 10_000
    amounts = json.loads(ok("share", revenue, "--json"))["amounts"]
    # half to the pool, split 0.1 : 0.1; Hospital B withdrew before the run, and was the
    # only contributor of its data: its part stays with the operator
    assert amounts == {str(scene.lab): 7_500, str(scene.hospital_a): 2_500}
    out = tmp_path / "sepa.xml"
    args = ("payout", "export", "--period", "2026-Q1", "--currency", "EUR", "--rail", "sepa",
            "--by", str(scene.lab), "--debtor-name", "Lab", "--debtor-iban", GOOD_IBANS[2], "--output", str(out))  # fmt: skip
    first = runner.invoke(cli, list(args))
    assert first.exit_code == 0, first.output
    root = ET.fromstring(out.read_bytes())
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == "25.00"
    again = runner.invoke(cli, list(args))
    assert again.exit_code == 0
    assert "exported before" in again.stderr
    bad = runner.invoke(
        cli,
        [
            "policy",
            "set",
            str(scene.model),
            "--pool",
            "1/2",
            "--role",
            "marketing=1",
            "--by",
            str(scene.lab),
        ],
    )
    assert bad.exit_code == 2
    assert "unknown role" in bad.stderr


def test_usage_is_billed_once_per_period_from_pseudonymised_consumers(local: Scene) -> None:
    from datetime import UTC, datetime

    from quotepart.metering import UsageEvent

    ws = local.ws
    start = datetime(2026, 2, 1, tzinfo=UTC)
    events = [UsageEvent(f"clinic-{i % 3}@example.org", 2, start) for i in range(10)]
    ws.record_usage_many(local.service, events, by=local.lab)
    stored = {
        e.raw_body["consumer"]
        for e in map(ws.entry_at, range(ws.store.tree_size()))
        if e.kind == "usage.recorded"
    }
    assert len(stored) == 3
    assert all(c.startswith("hmac-sha256:") and "clinic" not in c for c in stored)
    with pytest.raises(MoneyError, match="no usage"):
        ws.bill_usage(local.service, "2026-03", unit_price="0.50", currency="EUR", by=local.lab)
    revenue = ws.bill_usage(
        local.service, "2026-Q1", unit_price="0.50", currency="EUR", by=local.lab
    )
    assert ws.share(revenue).allocation.total_minor == 20 * 50
    size = ws.store.tree_size()
    with pytest.raises(InputError, match="already has revenue"):
        ws.bill_usage(local.service, "2026-Q1", unit_price="0.50", currency="EUR", by=local.lab)
    assert ws.store.tree_size() == size


def test_a_consent_signed_by_another_party_is_refused_at_append_and_named_by_verify(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consent decides money (a withdrawn one pays nothing): only its contributor signs it.
    The rule is the projection's admission hook, so a replay applies it as append does."""
    import dataclasses

    from quotepart.log.kinds import ConsentRecorded
    from quotepart.store import rights

    ws = scene.ws
    forged = ConsentRecorded(scene.hospital_a, scene.data_a, "withdraw", ws.clock())
    size = ws.store.tree_size()
    with pytest.raises(RightsError, match=r"a consent of .* signed by .*rule: self"):
        ws.append(forged, author=scene.hospital_b)
    assert ws.store.tree_size() == size
    # As if an older quotepart, without the rule, had appended it:
    real = rights.RULES["consent.recorded"]
    lax = dataclasses.replace(real, check=lambda writer, body, entry: None)
    monkeypatch.setitem(rights.RULES, "consent.recorded", lax)
    ws.append(forged, author=scene.hospital_b)
    monkeypatch.setitem(rights.RULES, "consent.recorded", real)
    with pytest.raises(
        QuotepartError, match=r"entry \d+: `consent.recorded`: a consent of .* signed by"
    ):
        ws.verify()
