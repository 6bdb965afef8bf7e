"""A workspace written before the rights existed (schema 0005) upgrades to the rules:
its allocations and payouts learn their payer from the log itself, the balances stay
the same, and verify judges every old entry under the rules."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import select

from quotepart.store.engine import head_revision, migrate, schema_revision
from quotepart.store.queries.sharing import owed_balances
from quotepart.store.schema import allocation_amounts, payout_amounts
from quotepart.workspace import Workspace
from tests.sharing.test_workspace_sharing import GOOD_IBANS, Scene


def _alembic(conn: object) -> Config:
    config = Config()
    config.set_main_option("script_location", "quotepart.store:migrations")
    config.attributes["connection"] = conn
    return config


def test_a_0005_workspace_with_money_upgrades_and_keeps_its_balances(ws: Workspace) -> None:
    scene = Scene(ws)
    revenue = ws.record_revenue(
        scene.model, "1000.00", "EUR", period="2026-Q1", source="licence", by=scene.lab
    )
    ws.share(revenue)
    ws.export_payout("2026-Q1", "EUR", "sepa", by=scene.lab, debtor_name="Lab",
                     debtor_iban=GOOD_IBANS[2], minimum_minor=50_000)  # fmt: skip
    engine = ws.store.engine
    with engine.connect() as conn:
        owed_before = owed_balances(conn, "EUR", 2026 * 12 + 2, payer=scene.lab)
        rows_before = {
            table.name: sorted(tuple(r) for r in conn.execute(select(table)))
            for table in (allocation_amounts, payout_amounts)
        }
    assert owed_before  # some balances were carried below the minimum
    with engine.connect() as conn, conn.begin():
        command.downgrade(_alembic(conn), "0005")
    assert schema_revision(engine) == "0005"
    migrate(engine)
    assert schema_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert owed_balances(conn, "EUR", 2026 * 12 + 2, payer=scene.lab) == owed_before
        rows_after = {
            table.name: sorted(tuple(r) for r in conn.execute(select(table)))
            for table in (allocation_amounts, payout_amounts)
        }
        payers = {r.payer for r in conn.execute(select(allocation_amounts.c.payer))}
    assert rows_after == rows_before
    assert payers == {str(scene.lab)}
    report = ws.verify()
    assert report.tree_size == ws.store.tree_size()
