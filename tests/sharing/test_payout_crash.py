"""A payment file is a pure function of its payout entry (issue 15, items 2 and 9).

An export killed at any step leaves at most one file per payout, with the recorded ids
and digest, once the next export finishes it; the loser of a race returns the winner's
result. SQLite and PostgreSQL through the `ws` fixture.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from quotepart.ids import Digest
from quotepart.log.kinds import PayoutRecorded
from quotepart.sharing.service import EXPORT_FAULT_POINTS
from quotepart.workspace import Workspace, open_workspace
from tests.payout_process import DEBTOR
from tests.sharing.test_workspace_sharing import Scene

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
ROOT = Path(__file__).resolve().parents[2]


def _payouts(ws: Workspace) -> list[PayoutRecorded]:
    entries = (ws.entry_at(i) for i in range(ws.store.tree_size()))
    return [e.body_as(PayoutRecorded) for e in entries if e.kind == "payout.recorded"]


def _shared_scene(ws: Workspace) -> Scene:
    scene = Scene(ws)
    revenue = ws.record_revenue(
        scene.service, "721.77", "EUR", period="2026-01", source="x", by=scene.lab
    )
    ws.share(revenue)
    return scene


def _export_in_process(folder: Path, scene: Scene, step: str, database_url: str | None) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    args = [sys.executable, "-m", "tests.payout_process", str(folder), str(scene.lab), step]
    done = subprocess.run(
        [*args, *([database_url] if database_url else [])], cwd=ROOT, env=env, timeout=120
    )
    return done.returncode


def _check_files(ws: Workspace) -> list[PayoutRecorded]:
    """At most one published file per payout, with the entry's digest and ids; no partials."""
    payouts = _payouts(ws)
    folder = ws.ledger.keys.payouts_dir
    names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert not [n for n in names if n.endswith(".partial")]
    assert len(names) == len(payouts)  # no file that nothing records
    for body in payouts:
        [name] = [n for n in names if n.startswith(body.payout.ulid)]
        content = (folder / name).read_bytes()
        assert Digest.of_bytes(content) == body.file
        if body.rail == "sepa":
            root = ET.fromstring(content)
            assert root.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS) == body.payout.ulid
            ids = [e.text for e in root.iterfind(".//p:EndToEndId", NS)]
            assert ids == [f"{body.payout.ulid}-{n}" for n in range(1, len(ids) + 1)]
        else:
            assert f",{body.payout.ulid}\n" in content.decode()
    return payouts


@pytest.mark.parametrize("step", EXPORT_FAULT_POINTS)
def test_an_export_killed_at_any_step_is_finished_by_the_next_with_the_same_file(
    ws: Workspace, database_url: str | None, step: str
) -> None:
    scene = _shared_scene(ws)
    assert _export_in_process(Path(ws.path), scene, step, database_url) == 9
    first = ws.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **DEBTOR)
    again = ws.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **DEBTOR)
    payouts = _check_files(ws)
    assert len(payouts) == 2  # one SEPA, one mobile money: each recorded once
    assert first.new == (step == "rendered")
    assert not again.new
    assert (
        {f.payout for f in first.files}
        == {f.payout for f in again.files}
        == {p.payout for p in payouts}
    )
    assert [f.content for f in first.files] == [f.content for f in again.files]
    ws.verify()


def test_the_loser_of_two_exports_returns_the_winners_files(
    ws: Workspace, database_url: str | None
) -> None:
    scene = _shared_scene(ws)
    with open_workspace(Path(ws.path), database_url=database_url) as other:
        won: list[object] = []

        def race(point: str) -> None:
            if point == "rendered" and not won:  # the other export records first
                won.append(
                    other.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **DEBTOR)
                )

        ws.sharing.faults = race
        lost = ws.export_payout("2026-Q1", "EUR", by=scene.lab, minimum_minor=1, **DEBTOR)
    [winner] = won
    assert not lost.new
    same = [dataclasses.replace(f, new=False) for f in winner.files]  # type: ignore[attr-defined]
    assert list(lost.files) == same
    assert len(_check_files(ws)) == 2
    ws.verify()


def test_the_loser_of_two_shares_returns_the_winners_allocation(
    ws: Workspace, database_url: str | None
) -> None:
    scene = Scene(ws)
    revenue = ws.record_revenue(
        scene.service, "721.77", "EUR", period="2026-01", source="x", by=scene.lab
    )
    with open_workspace(Path(ws.path), database_url=database_url) as other:
        won: list[object] = []

        armed: list[bool] = []

        def clock() -> datetime:  # the other share records between reading and appending
            if armed and not won:
                won.append(other.share(revenue))
            return ws.ledger.clock()

        loser = open_workspace(Path(ws.path), database_url=database_url, clock=clock)
        with loser:
            armed.append(True)
            lost = loser.share(revenue)
    [winner] = won
    assert not lost.new
    assert (lost.leaf_index, lost.allocation) == (winner.leaf_index, winner.allocation)  # type: ignore[attr-defined]
    ws.verify()
