"""Payouts on two rails, after sharing, to references each party checks and may change
(issue 13, points 2 to 4); SQLite and PostgreSQL through the `scene` fixture."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.errors import InputError, PaymentDetailsError, SharedPayoutReferenceWarning
from quotepart.ids import PayoutId, Period
from quotepart.log import sign_entry
from quotepart.log.kinds import Held, PartyPayoutChanged, PayoutRecorded
from quotepart.provenance.parties import PayoutSecret
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.sharing.test_workspace_sharing import GOOD_IBANS, Scene

SEPA = {"debtor_name": "Lab", "debtor_iban": GOOD_IBANS[2]}
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


@pytest.fixture
def scene(tmp_path: Path, database_url: str | None) -> Iterator[Scene]:
    with init_workspace(tmp_path / "ws", database_url=database_url, clock=FakeClock()) as ws:
        yield Scene(ws)


def _revenue(scene: Scene, amount: str = "1000.00", period: str = "2026-01") -> str:
    return str(
        scene.ws.record_revenue(
            scene.service, amount, "EUR", period=period, source="x", by=scene.lab
        )
    )


def _payouts(ws: Workspace) -> list[PayoutRecorded]:
    entries = (ws.entry_at(i) for i in range(ws.store.tree_size()))
    return [e.body_as(PayoutRecorded) for e in entries if e.kind == "payout.recorded"]


def _ibans(content: bytes) -> list[str]:
    return [e.text or "" for e in ET.fromstring(content).iterfind(".//p:CdtrAcct//p:IBAN", NS)]


# ----------------------------------------------------------- 2. share first


def test_a_payout_of_unshared_revenue_is_refused_naming_it(scene: Scene) -> None:
    ws = scene.ws
    revenue = _revenue(scene)
    size = ws.store.tree_size()
    with pytest.raises(InputError, match=f"revenue {revenue} .* not shared") as caught:
        ws.export_payout("2026-Q1", "EUR", by=scene.lab, **SEPA)
    assert caught.value.hint is not None
    assert f"quotepart share {revenue}" in caught.value.hint
    assert ws.store.tree_size() == size
    ws.share(revenue)
    paid = ws.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **SEPA)
    assert paid.new
    assert paid.paid == {
        scene.lab: 80_000,  # the paying account settles its own balance by keeping it
        scene.hospital_a: 11_250,
        scene.hospital_b: 3_750,
        scene.annotator: 5_000,
    }


def test_an_export_that_pays_nobody_records_nothing_and_blocks_nothing(scene: Scene) -> None:
    ws = scene.ws
    size = ws.store.tree_size()
    empty = ws.export_payout("2026-Q1", "EUR", by=scene.lab, **SEPA)
    assert empty.files == ()
    assert not empty.new
    assert ws.store.tree_size() == size
    ws.share(_revenue(scene))
    paid = ws.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **SEPA)
    assert paid.paid[scene.hospital_a] == 11_250


def test_revenue_shared_after_an_export_is_paid_in_the_same_period_once(scene: Scene) -> None:
    ws = scene.ws
    ws.share(_revenue(scene))
    first = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=1, **SEPA)
    ws.share(_revenue(scene, "200.00", "2026-02"))
    second = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=1, **SEPA)
    assert second.new
    assert second.payout != first.payout
    assert second.paid == {scene.lab: 16_000, scene.hospital_a: 2_250, scene.hospital_b: 750}
    size = ws.store.tree_size()
    again = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=1, **SEPA)
    assert not again.new
    assert again.content == second.content
    assert ws.store.tree_size() == size
    ws.verify()


# ------------------------------------------------------------- 3. two rails


def test_payees_of_two_rails_get_one_file_and_one_entry_per_rail(scene: Scene) -> None:
    ws = scene.ws
    ws.share(_revenue(scene))
    exported = ws.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **SEPA)
    by_rail = {f.rail: f for f in exported.files}
    assert set(by_rail) == {"sepa", "mobile_money"}
    assert by_rail["sepa"].paid == {
        scene.lab: 80_000,
        scene.hospital_a: 11_250,
        scene.hospital_b: 3_750,
    }
    assert by_rail["mobile_money"].paid == {scene.annotator: 5_000}
    assert by_rail["sepa"].path.suffix == ".xml"
    assert by_rail["mobile_money"].path.suffix == ".csv"
    assert sorted(_ibans(by_rail["sepa"].content)) == sorted(GOOD_IBANS[:2])
    rows = list(csv.DictReader(io.StringIO(by_rail["mobile_money"].content.decode())))
    assert [(r["msisdn"], r["amount_minor"]) for r in rows] == [("+254712345678", "5000")]
    assert {p.rail for p in _payouts(ws)} == {"sepa", "mobile_money"}
    assert exported.held == ()
    with pytest.raises(InputError, match="2 payment files"):
        _ = exported.content
    size = ws.store.tree_size()
    again = ws.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **SEPA)
    assert not again.new
    assert {f.content for f in again.files} == {f.content for f in exported.files}
    assert ws.store.tree_size() == size
    ws.verify()


# -------------------------------------------- 4. references checked, changed


@pytest.mark.parametrize(
    ("reference", "problem"),
    [("DE89370400440532013001", "check digits"), ("0712345678", "starts with 0")],
)
def test_a_bad_payout_reference_is_refused_at_registration(
    ws: Workspace, reference: str, problem: str
) -> None:
    with pytest.raises(PaymentDetailsError, match=problem) as caught:
        ws.register_party("Ana", payout_reference=reference)
    assert caught.value.hint
    assert ws.store.tree_size() == 0
    assert list((ws.path / "keys").glob("party-*")) == []


def test_a_party_changes_its_reference_and_later_payouts_use_it(scene: Scene) -> None:
    ws = scene.ws
    ws.share(_revenue(scene))
    first = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=1, **SEPA)
    new_iban = "GB82WEST12345698765432"
    ws.change_payout_reference(scene.hospital_a, "gb82 west 1234 5698 7654 32")
    assert ws.payout_reference(scene.hospital_a) == new_iban
    ws.share(_revenue(scene, "200.00", "2026-02"))
    second = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=1, **SEPA)
    assert new_iban in _ibans(second.content)
    assert GOOD_IBANS[0] not in _ibans(second.content)
    assert GOOD_IBANS[0] in _ibans(first.content)  # the earlier file keeps the old account
    ws.verify()


def test_only_the_party_itself_may_change_its_reference(scene: Scene) -> None:
    ws = scene.ws
    commitment = PayoutSecret.new("GB82WEST12345698765432").commitment()
    forged = sign_entry(
        PartyPayoutChanged(scene.hospital_a, commitment),
        origin=ws.origin,
        author=scene.lab,
        key=ws.keys.party_key(scene.lab),
        clock=FakeClock(),
    )
    size = ws.store.tree_size()
    with pytest.raises(InputError, match=r"payout reference of .* signed by"):
        ws.store.append([forged])
    assert ws.store.tree_size() == size
    with pytest.raises(PaymentDetailsError):
        ws.change_payout_reference(scene.hospital_a, "DE00")


def test_two_parties_giving_one_reference_are_warned_of_by_name(scene: Scene) -> None:
    with pytest.warns(SharedPayoutReferenceWarning, match="Hospital B .* as Hospital A"):
        scene.ws.change_payout_reference(scene.hospital_b, GOOD_IBANS[0])


def test_a_payee_who_cannot_be_paid_is_held_and_everyone_else_paid(scene: Scene) -> None:
    ws = scene.ws
    ws.share(_revenue(scene))
    ws.keys.payout_secret_path(scene.hospital_b).unlink()  # no reference in this workspace
    exported = ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, minimum_minor=1, **SEPA)
    assert exported.paid == {scene.lab: 80_000, scene.hospital_a: 11_250}
    held = {h.party: h for h in exported.held}
    assert set(held) == {scene.hospital_b, scene.annotator}
    assert "no payout reference" in held[scene.hospital_b].reason
    assert held[scene.annotator].reference == "+254…5678"
    assert "mobile money" in held[scene.annotator].reason
    [entry] = _payouts(ws)
    assert entry.held[scene.hospital_b] == Held(3_750, held[scene.hospital_b].reason)
    for account in ("254712345678", "+254…5678"):  # (a bare "5678" can occur in a digest)
        assert account not in str(entry.to_body())  # no account ever enters the log
    ws.verify()


def test_a_payout_that_holds_more_than_is_owed_is_refused(scene: Scene) -> None:
    ws = scene.ws
    ws.share(_revenue(scene))
    with pytest.raises(Exception, match="who is owed"):
        ws.append(
            PayoutRecorded(
                PayoutId.new(), Period.parse("2026-Q1"), "EUR", "sepa", {scene.hospital_a: 1},
                held={scene.hospital_b: Held(10**9, "x")},
            ),
            author=scene.lab,
        )  # fmt: skip


# ---------------------------------------------------------------------- CLI


def test_the_cli_refuses_unshared_revenue_and_lists_carried_payees(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    with init_workspace(folder, clock=FakeClock()) as ws:
        scene = Scene(ws)
        revenue = _revenue(scene)
        ws.keys.payout_secret_path(scene.hospital_b).unlink()
    runner = CliRunner()
    base = ["payout", "export", "--workspace", str(folder), "--period", "2026-Q1",
            "--currency", "EUR", "--by", str(scene.lab), "--minimum", "1",
            "--debtor-name", "Lab", "--debtor-iban", GOOD_IBANS[2]]  # fmt: skip
    refused = runner.invoke(cli, base)
    assert refused.exit_code == 2
    assert f"quotepart share {revenue}" in refused.stderr
    assert runner.invoke(cli, ["share", "--workspace", str(folder), revenue]).exit_code == 0
    result = runner.invoke(cli, [*base, "--rail", "mobile_money"])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("carried:")]
    assert len(lines) == 3  # the lab and hospital A are paid by SEPA, left out here
    assert any("Hospital A (DE89…3000), 112.50 EUR: paid by SEPA" in line for line in lines)
    assert any("Hospital B (no reference)" in line for line in lines)
    assert result.stdout.strip().endswith(".csv")


def test_the_cli_checks_and_warns_about_payout_references(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    init_workspace(folder, clock=FakeClock()).close()
    runner = CliRunner()
    add = ["party", "add", "--workspace", str(folder)]
    bad = runner.invoke(cli, [*add, "Ana", "--payout", "DE89370400440532013001"])
    assert bad.exit_code == 2
    assert "Hint:" in bad.stderr
    first = runner.invoke(cli, [*add, "Ana", "--payout", GOOD_IBANS[0]])
    assert first.exit_code == 0
    assert "Warning" not in first.stderr
    second = runner.invoke(cli, [*add, "Ben", "--payout", GOOD_IBANS[0]])
    assert second.exit_code == 0
    assert "Warning: Ben" in second.stderr
    assert "as Ana" in second.stderr
