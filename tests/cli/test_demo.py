"""`quotepart demo` end to end (run once per session, see conftest.py): its outputs agree with the log."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.demo import PERIOD
from quotepart.ids import Digest
from quotepart.sharing import verify_statement
from quotepart.workspace import open_workspace
from tests.cli.conftest import DemoRun


def test_the_demo_shares_exactly_and_everything_verifies(demo: DemoRun) -> None:
    result = demo.result
    out = result.out
    lines = demo.stdout.splitlines()
    assert "who gets paid what" in demo.stdout
    with open_workspace(demo.folder) as ws:
        # the statements' sums equal the revenue, and each equals the log's allocation
        assert sum(result.statements.values()) == result.total_minor > 0
        # (a cohort valued at zero, as Westfield's copy is, gets a statement of 0)
        assert {n: a for n, a in result.statements.items() if a} == result.amounts
        revenue = ws.revenue_entries()[0][1].body()
        assert revenue.amount_minor == result.total_minor  # type: ignore[attr-defined]
        ws.verify()
        # the valuation tells the story it claims: the noisy cohort is worth least, and
        # KNN-Shapley ranks its remaining wrong labels lowest
        values = result.cohort_values
        assert min(values, key=values.__getitem__) == "Eastport Hospital"
        assert result.noisy_auroc > 0.8
        # every statement CSV adds up to the party's amount
        names = {p.party: p.name for p in ws.parties()}
        by_slug = {n.lower().replace(" ", "-").replace("'", ""): n for n in names.values()}
        for path in (out / "statements").glob("*.csv"):
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
            assert all(r["period"] == PERIOD for r in rows)
            paid = sum(int(r["amount_minor"]) for r in rows)
            assert paid == result.amounts.get(by_slug[path.stem], 0)
        # St Mary's checks its cut from the file alone
        proof = json.loads((out / "st-marys-statement-proof.json").read_text())
        assert verify_statement(proof).totals == {"EUR": result.amounts["St Mary's Hospital"]}
        # the published report holds the log's numbers, and is itself in the log
        assert result.report is not None
        report = json.loads(result.report.read_text())
        assert report["totals"]["EUR"]["earned"]["amount_minor"] == result.total_minor
        assert {p["name"]: p["amount_minor"] for p in report["parties"]} == result.amounts
        entries = [ws.entry_at(i) for i in range(ws.store.tree_size())]
        [allocation] = [e for e in entries if e.kind == "allocation.recorded"]
        [revenue_row] = report["revenues"]
        assert revenue_row["allocation"]["entry"] == allocation.leaf_hash.hex()
        named = {str(p.party): p.name for p in ws.parties()}
        recorded = {named[p]: a for p, a in allocation.raw_body["amounts"].items()}
        assert recorded == result.amounts
        published = [e for e in entries if e.kind == "report.published"]
        assert len(published) == 1
        assert published[0].raw_body["json"] == str(Digest.of_bytes(result.report.read_bytes()))
    assert any(line.startswith("5.") or "verify" in line for line in lines)


def test_the_demo_refuses_to_run_twice_in_one_folder(demo: DemoRun) -> None:
    runner = CliRunner()
    with open_workspace(demo.folder) as ws:
        size = ws.store.tree_size()
    again = runner.invoke(cli, ["demo", "--workspace", str(demo.folder)])
    assert again.exit_code == 2
    assert "already holds a workspace" in again.stderr
    with open_workspace(demo.folder) as ws:
        assert ws.store.tree_size() == size  # no money recorded twice
    assert runner.invoke(cli, ["verify", "--workspace", str(demo.folder)]).exit_code == 0
