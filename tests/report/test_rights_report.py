"""The report names the operator, the parties it delegated rights to, and filed claims."""

from __future__ import annotations

import json
from pathlib import Path

from quotepart.log.kinds import OverlapDetected
from quotepart.report.page import render_page
from quotepart.workspace import init_workspace
from tests.conftest import FakeClock
from tests.report.scene import ReportScene


def test_the_report_names_operator_delegates_and_claims(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = ReportScene(ws)
        valuer = ws.register_party("Independent Valuers Ltd")
        meter = ws.register_party("Metering Co")
        rival = ws.register_party("Rival Archive")
        ws.grant_right(valuer, "valuation", scene.model, by=scene.lab)
        ws.grant_right(meter, "metering", scene.service, by=scene.lab)
        claim = ws.file_claim(scene.corpus, "we compiled this corpus", by=rival)
        scene.earn()
        data = ws.report_data(scene.service, "2026-Q1")
    rights = json.loads(data.to_json_bytes())["rights"]
    assert (rights["operator"], rights["operator_name"]) == (
        str(scene.lab),
        "Northside Diagnostics Lab",
    )
    delegates = {(d["name"], d["right"], d["asset_name"], d["granted_by_name"])
                 for d in rights["delegates"]}  # fmt: skip
    assert delegates == {
        ("Independent Valuers Ltd", "valuation", "Triage model v2", "Northside Diagnostics Lab"),
        ("Metering Co", "metering", "Triage API", "Northside Diagnostics Lab"),
    }
    assert rights["claims"] == [
        {
            "asset": str(scene.corpus),
            "asset_name": "Public health corpus",
            "registrant": str(scene.corpus_owner),
            "registrant_name": "Public Health Archive",
            "claimant": str(rival),
            "claimant_name": "Rival Archive",
            "reason": "we compiled this corpus",
            "entry": claim,
        }
    ]
    # the report's checkpoint covers the claim it shows
    assert data.document.verification.checkpoint.tree_size > claim
    page = render_page(data.document, {})
    assert "<h2>7. Rights</h2>" in page
    assert "Independent Valuers Ltd" in page
    assert "records valuations of Triage model v2" in page
    assert "Rival Archive" in page
    assert "we compiled this corpus" in page


def test_the_report_says_which_records_of_its_lineage_were_copied(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = ReportScene(ws)
        rival = ws.register_party("Rival Archive")
        copy = ws.register_data(b"a reworded corpus", name="Rival corpus", by=rival)
        flagged = ws.append(OverlapDetected(copy, scene.corpus, 40, 50, "exact"), author=rival)
        scene.earn()
        data = ws.report_data(scene.service, "2026-Q1")
    [shown] = json.loads(data.to_json_bytes())["rights"]["overlaps"]
    assert shown == {
        "asset": str(copy),
        "asset_name": "Rival corpus",
        "registrant_name": "Rival Archive",
        "earlier": str(scene.corpus),
        "earlier_name": "Public health corpus",
        "earlier_registrant_name": "Public Health Archive",
        "records": 40,
        "of": 50,
        "match": "exact",
        "entry": flagged,
    }
    assert data.document.verification.checkpoint.tree_size > flagged
    page = render_page(data.document, {})
    assert "<h3>Copied records</h3>" in page
    assert "40 of 50" in page
    assert "credited to the earliest registrant" in page
