"""The issue 13 scenario, end to end on SQLite and PostgreSQL: five cooperative members
(three paid by IBAN, two by mobile money) contribute cohorts of real records; the coop
trains a model and evaluates it on a held-out set; a payout exported before sharing is
refused, and after sharing one export pays every member exactly, in two files, leaving
nothing owed."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from quotepart.errors import InputError
from quotepart.store.queries.sharing import owed_balances
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
MEMBERS = {
    "Hillside Growers": "DE89370400440532013000",
    "Valley Orchard": "FR1420041010050500013M02606",
    "Riverside Farm": "NL91ABNA0417164300",
    "Upland Coop Shop": "+254712345678",
    "Lakeside Smallholders": "+254722000111",
}
COOP_IBAN = "GB29NWBK60161331926819"


@pytest.fixture
def ws(tmp_path: Path, database_url: str | None) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", database_url=database_url, clock=FakeClock()) as ws:
        yield ws


def test_five_members_on_two_rails_are_paid_exactly_once_the_revenue_is_shared(
    ws: Workspace,
) -> None:
    coop = ws.register_party("Orchard Coop", roles=("coop", "operator"), payout_reference=COOP_IBAN)
    members = {name: ws.register_party(name, payout_reference=ref) for name, ref in MEMBERS.items()}
    features, labels = load_breast_cancer(return_X_y=True)
    rows = np.random.default_rng(7).permutation(len(labels))
    held_out, train = rows[:100], rows[100:]
    cohorts = []
    for number, (name, party) in enumerate(members.items()):
        part = train[number::5]
        cohort = ws.register_data((features[part], labels[part]), name=f"{name} cohort", by=party)
        ws.contribute(cohort, {party: 1}, role="data", by=party)
        cohorts.append(cohort)
    tracked = ws.track(
        LogisticRegression(max_iter=5000),
        operator=coop,
        name="yield model",
        uses=cohorts,
        evaluate_on=(features[held_out], labels[held_out]),
    ).fit(features[train], labels[train])
    [run] = ws.runs()
    assert list(run.uses.values()) == ["evaluation"]  # the held-out set is not an input
    ws.set_policy(tracked.model, pool="1/2", roles={"data": 1}, weighting="equal", by=coop)
    revenue = ws.record_revenue(
        tracked.model, "1000.00", "EUR", period="2026-Q1", source="licence", by=coop
    )
    sepa = {"debtor_name": "Orchard Coop", "debtor_iban": COOP_IBAN}

    size = ws.store.tree_size()
    with pytest.raises(InputError, match="not shared"):
        ws.export_payout("2026-Q1", "EUR", by=coop, **sepa)
    assert ws.store.tree_size() == size  # the refused export recorded nothing

    shared = ws.share(revenue)
    assert shared.allocation.amounts == {coop: 50_000, **dict.fromkeys(members.values(), 10_000)}

    payout = ws.export_payout("2026-Q1", "EUR", by=coop, minimum_minor=1, **sepa)
    assert payout.held == ()
    assert sorted(f.rail for f in payout.files) == ["mobile_money", "sepa"]
    assert payout.paid == {coop: 50_000, **dict.fromkeys(members.values(), 10_000)}
    by_rail = {f.rail: f for f in payout.files}
    credited = {
        node.text: round(Decimal(amount.text or "0") * 100)
        for tx in ET.fromstring(by_rail["sepa"].content).iterfind(".//p:CdtTrfTxInf", NS)
        for node in tx.iterfind(".//p:CdtrAcct//p:IBAN", NS)
        for amount in tx.iterfind(".//p:InstdAmt", NS)
    }
    assert credited == {
        MEMBERS[n]: 10_000 for n in ("Hillside Growers", "Valley Orchard", "Riverside Farm")
    }
    phones = list(csv.DictReader(io.StringIO(by_rail["mobile_money"].content.decode())))
    mobile = {"Upland Coop Shop", "Lakeside Smallholders"}
    assert {(row["msisdn"], int(row["amount_minor"])) for row in phones} == {
        (MEMBERS[name], 10_000) for name in mobile
    }
    with ws.ledger.read() as conn:
        assert (
            owed_balances(conn, "EUR", 2026 * 12 + 2, payer=coop) == {}
        )  # nothing owed is left behind
    again = ws.export_payout("2026-Q1", "EUR", by=coop, minimum_minor=1, **sepa)
    assert not again.new  # nobody is paid twice
    ws.verify()
