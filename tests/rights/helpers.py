"""The scene of issue 14's attack table, and ways to attempt an entry (SDK and CLI)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.errors import QuotepartError, RightsError
from quotepart.ids import PartyId, RevenueId
from quotepart.log import sign_entry
from quotepart.log.kinds import EntryBody
from quotepart.sharing.service import Shared
from quotepart.workspace import Workspace

IBANS = ["DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300"]
JANUARY = datetime(2026, 1, 10, tzinfo=UTC)
LATE = datetime(2026, 1, 20, tzinfo=UTC)  # a day of January, once January is billed
FEBRUARY = datetime(2026, 2, 3, tzinfo=UTC)

Hook = Callable[["Scene"], None]


class Scene:
    """Two honest hospitals A and C, a lab that trains a model from their cohorts, serves
    it, meters and bills its use; claimant B, a registered party with a junk cohort.

    `early` runs once A has registered its cohort but before anyone records a
    contribution to it; `late` once January is billed, before the revenue is shared.
    """

    def __init__(self, ws: Workspace, *, early: Hook | None = None, late: Hook | None = None):
        self.ws = ws
        self.lab = ws.register_party("Lab", roles=("operator",), payout_reference=IBANS[2])
        self.a = ws.register_party("Hospital A", payout_reference=IBANS[0])
        self.c = ws.register_party("Hospital C", payout_reference=IBANS[1])
        self.b = ws.register_party("Claimant B", payout_reference="+254712345678")
        self.cohort_a = ws.register_data(
            b"cohort A: 120 patients", name="cohort A", by=self.a, asset_kind="cohort"
        )
        self.cohort_c = ws.register_data(
            b"cohort C: 80 patients", name="cohort C", by=self.c, asset_kind="cohort"
        )
        if early is not None:
            early(self)
        ws.contribute(self.cohort_a, {self.a: 1}, role="data", by=self.a)
        ws.contribute(self.cohort_c, {self.c: 1}, role="data", by=self.c)
        self.junk = ws.register_data(b"junk", name="junk", by=self.b, asset_kind="cohort")
        ws.contribute(self.junk, {self.b: 1}, role="data", by=self.b)
        with ws.run("train", operator=self.lab) as run:
            run.use(self.cohort_a)
            run.use(self.cohort_c)
            self.model = ws.register_asset(b"weights", asset_kind="model", name="M", by=self.lab)
            run.produce(self.model)
        self.service = ws.register_service(
            name="triage", endpoint="https://api.example.org/v1", model=self.model, by=self.lab
        )
        ws.set_policy(self.model, pool="1/2", roles={"data": 1}, weighting="valuation", by=self.lab)
        ws.record_valuation(
            self.model,
            {self.cohort_a: 0.6, self.cohort_c: 0.2},
            method="exact",
            evaluations=4,
            by=self.lab,
        )
        ws.record_usage(self.service, "clinic 1", 600, JANUARY, by=self.lab)
        ws.record_usage(self.service, "clinic 2", 400, JANUARY, by=self.lab)
        self.revenue: RevenueId = ws.bill_usage(
            self.service, "2026-01", unit_price="1.00", currency="EUR", by=self.lab
        )
        if late is not None:
            late(self)

    def share(self) -> Shared:
        return self.ws.share(self.revenue)

    def by_name(self, amounts: dict[PartyId, int]) -> dict[str, int]:
        names = {p.party: p.name for p in self.ws.parties()}
        return {names[p]: a for p, a in amounts.items()}


def refused(
    ws: Workspace,
    attempt: Callable[[], Any],
    rule: str | None,
    error: type[QuotepartError] = RightsError,
) -> QuotepartError:
    """`attempt` raises `error` (a RightsError of `rule`, named in its message) and writes nothing."""
    size = ws.store.tree_size()
    with pytest.raises(error) as caught:
        attempt()
    if rule is not None:
        assert isinstance(caught.value, RightsError)
        assert caught.value.rule == rule
        assert f"(rule: {rule})" in caught.value.message
    assert ws.store.tree_size() == size
    return caught.value


def cli_append(ws: Workspace, body: EntryBody, author: PartyId) -> Any:
    """`quotepart log append` of `body` signed elsewhere with `author`'s key."""
    entry = sign_entry(
        body, origin=ws.origin, author=author, key=ws.signing_key(author), clock=ws.clock
    )
    return CliRunner().invoke(
        cli,
        ["log", "append", "-", "--workspace", str(ws.path)],
        input=entry.canonical.decode() + "\n",
    )


def refused_everywhere(ws: Workspace, body: EntryBody, author: PartyId, rule: str) -> None:
    """`body` signed by `author` is refused (rule `rule`, nothing written) both through
    `ws.append` and through `quotepart log append`."""
    refused(ws, lambda: ws.append(body, author=author), rule)
    size = ws.store.tree_size()
    result = cli_append(ws, body, author)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("Error: "), first
    assert f"(rule: {rule})" in first, first
    assert "Traceback" not in result.output
    assert ws.store.tree_size() == size
