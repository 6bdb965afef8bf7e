"""Statements show rights: who signed each line's policy and valuation, under whose
delegation, and the claims filed against the statement party's registrations."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.sharing import verify_statement
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.sharing.test_workspace_sharing import Scene


class RightsScene(Scene):
    """The sharing scene, valued by a delegated valuer, with a claim against Hospital A."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(ws)
        self.valuer = ws.register_party("Valuer Co")
        self.rival = ws.register_party("Rival")
        self.grant = ws.grant_right(self.valuer, "valuation", self.model, by=self.lab)
        ws.record_valuation(
            self.model, {self.data_a: 0.2, self.data_b: 0.2}, method="exact", evaluations=4,
            by=self.valuer,
        )  # fmt: skip
        self.claim = ws.file_claim(self.data_a, "these are our records", by=self.rival)
        ws.share(
            ws.record_revenue(
                self.service, "1000.00", "EUR", period="2026-01", source="invoice", by=self.lab
            )
        )


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[RightsScene]:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        yield RightsScene(ws)


def test_a_delegated_valuers_name_is_on_the_line_with_who_delegated(scene: RightsScene) -> None:
    ws = scene.ws
    statement = ws.statement(scene.hospital_a, "2026-Q1")
    [item] = statement.items
    [line] = item.lines
    signed = {s.what: s for s in item.signed_for(line)}
    assert signed["valuation"].signer == str(scene.valuer)
    assert signed["valuation"].delegated_by == str(scene.lab)
    assert signed["policy"].signer == str(scene.lab)
    assert signed["policy"].delegated_by is None  # the registrant signs under no delegation
    assert [str(d.grantor) for d in ws.delegations(scene.model)] == [str(scene.lab)]
    [json_line] = statement.to_json()["items"][0]["lines"]
    by_what = {s["what"]: s for s in json_line["signed"]}
    assert by_what["valuation"]["signer_name"] == "Valuer Co"
    assert by_what["valuation"]["delegated_by_name"] == "Lab"
    assert by_what["policy"]["signer_name"] == "Lab"
    [row] = csv.DictReader(io.StringIO(statement.to_csv()))
    assert "valuation signed by Valuer Co (delegated by Lab)" in row["signed"]
    assert "policy signed by Lab" in row["signed"]
    text = CliRunner().invoke(
        cli, ["statement", "Hospital A", "--period", "2026-Q1", "--workspace", str(ws.path)]
    )
    assert text.exit_code == 0, text.output
    assert "valuation signed by Valuer Co (delegated by Lab)" in text.stdout


def test_the_statement_proof_still_verifies_offline(scene: RightsScene) -> None:
    proof = scene.ws.statement_proof(scene.hospital_a, "2026-Q1")
    verified = verify_statement(json.loads(json.dumps(proof)))
    assert verified.totals == scene.ws.statement(scene.hospital_a, "2026-Q1").totals
    assert verified.party_name == "Hospital A"
    # the valuer's registration is in the file: its signature on the valuation was checked
    assert str(scene.valuer) in proof["names"]["parties"]


def test_a_claim_shows_on_the_registrants_statement_only(scene: RightsScene) -> None:
    ws = scene.ws
    claims = ws.statement(scene.hospital_a, "2026-Q1").to_json()["claims_against_registrations"]
    assert claims == [
        {
            "asset": str(scene.data_a),
            "asset_name": "A",
            "claimant": str(scene.rival),
            "claimant_name": "Rival",
            "reason": "these are our records",
            "leaf_index": scene.claim,
        }
    ]
    assert ws.statement(scene.hospital_b, "2026-Q1").claims == []
    # shown even in a period with no allocation to the registrant
    assert [c.leaf_index for c in ws.statement(scene.hospital_a, "2027").claims] == [scene.claim]
    text = CliRunner().invoke(
        cli, ["statement", "Hospital A", "--period", "2026-Q1", "--workspace", str(ws.path)]
    )
    assert text.exit_code == 0, text.output
    assert "claims against your registrations:" in text.stdout
    assert "claimed by Rival" in text.stdout
    assert "these are our records" in text.stdout
