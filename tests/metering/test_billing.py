"""Bills of metered usage: tariffs, periods that close, recomputation, and the attacks on them."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import quotepart.store.rights
from quotepart.errors import InputError, NotFoundError, RightsError, VerificationError
from quotepart.ids import Period, RevenueId
from quotepart.log.canonical import canonicalize
from quotepart.log.kinds import RevenueRecorded, UsageBatch, UsageBilled
from quotepart.metering.billing import Bill, consumer_leaf
from quotepart.store.usage_events import line_amount_minor
from quotepart.workspace import Workspace
from tests.metering.test_ingest import Scene, event

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def priced(ws: Workspace) -> Scene:
    """The ingest scene with tariffs set on 1 January (the workspace clock's start)."""
    scene = Scene(ws)
    ws.set_tariff(scene.service, "tokens", "0.0015", "EUR")
    ws.set_tariff(scene.service, "calls", "0.05", "EUR")
    return scene


def test_a_bill_prices_each_meter_and_records_its_revenue_in_one_go(ws: Workspace) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest(
        [event(n, f"customer-{n % 3}", tokens=n * 7) for n in range(25)], batch_size=10
    )
    bill = ws.bill_usage(scene.service, "2026-03", currency="EUR", evidence=b"invoice 2026-03")
    assert isinstance(bill, Bill)
    body = bill.body
    lines = {line.meter: line for line in body.lines}
    assert (lines["tokens"].quantity, lines["calls"].quantity) == ("2100", "25")
    assert lines["tokens"].amount_minor == 315  # 2100 x 0.0015 = 3.15
    assert lines["calls"].amount_minor == 125
    assert body.total_minor == 440
    assert body.batches == 6  # 3 batches per meter
    assert body.consumers == 3
    assert body.evidence == "sha256:" + hashlib.sha256(b"invoice 2026-03").hexdigest()
    # the revenue has the bill's id and amount, follows it in the same transaction
    revenue = ws.entry_at(bill.leaf_index + 1).body_as(RevenueRecorded)
    assert (revenue.revenue, revenue.amount_minor, str(revenue.period)) == (
        bill.revenue, 440, "2026-03",
    )  # fmt: skip
    assert body.evidence in revenue.source
    assert ws.verify().usage_bills_checked == 1


def test_consumer_leaves_are_the_canonical_json_of_their_lines() -> None:
    usage = {"tokens": "12.5", "calls": "3", "api.v2-x": "0"}
    pseudonym = bytes(range(32))
    assert consumer_leaf(pseudonym, usage) == canonicalize(
        {"consumer": "hmac-sha256:" + pseudonym.hex(), "usage": usage}
    )


@given(
    quantity=st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False),
    price=st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False),
)
def test_line_amounts_round_half_to_even_exactly(quantity: Decimal, price: Decimal) -> None:
    amount = line_amount_minor(str(quantity), str(price), 2)
    exact = quantity * price * 100
    assert abs(Decimal(amount) - exact) <= Decimal("0.5")
    if abs(Decimal(amount) - exact) == Decimal("0.5"):
        assert amount % 2 == 0


def test_the_tariff_in_force_at_the_periods_start_prices_it(ws: Workspace) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n, tokens=1000) for n in range(4)])  # March
    # a price for tokens set on 10 March (announced then) prices April on, not March
    ws.clock.now = datetime(2026, 3, 10, tzinfo=UTC)  # type: ignore[attr-defined]
    later = ws.set_tariff(scene.service, "tokens", "0.01", "EUR")
    ws.clock.now = datetime(2026, 4, 2, tzinfo=UTC)  # type: ignore[attr-defined]
    bill = ws.bill_usage(scene.service, "2026-03", currency="EUR")
    assert isinstance(bill, Bill)
    tokens = next(line for line in bill.body.lines if line.meter == "tokens")
    assert (tokens.unit_price, tokens.amount_minor) == ("0.0015", 600)
    assert tokens.tariff != later
    ws.verify()


def test_a_price_change_cannot_be_backdated_but_a_first_price_can(ws: Workspace) -> None:
    scene = Scene(ws)
    ws.clock.now = datetime(2026, 5, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    ws.set_tariff(scene.service, "tokens", "0.001", "EUR", effective=MARCH)  # the first: fine
    size = ws.store.tree_size()
    with pytest.raises(RightsError, match="before it was signed") as caught:
        ws.set_tariff(scene.service, "tokens", "0.002", "EUR", effective=MARCH)
    assert caught.value.rule == "billing"
    assert ws.store.tree_size() == size
    ws.set_tariff(scene.service, "tokens", "0.001", "USD", effective=MARCH)  # another currency


def test_only_the_operator_or_its_billing_delegate_prices_and_bills(ws: Workspace) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n) for n in range(3)])
    size = ws.store.tree_size()
    with pytest.raises(RightsError, match="billing right"):
        ws.set_tariff(scene.service, "tokens", "9", "EUR", by=scene.other)
    with pytest.raises(RightsError, match="billing right"):
        ws.bill_usage(scene.service, "2026-03", currency="EUR", by=scene.other)
    assert ws.store.tree_size() == size


def test_bad_bills_and_tariffs_are_refused_with_a_hint_and_write_nothing(
    ws: Workspace, tmp_path: Path
) -> None:
    scene = Scene(ws)
    ws.set_tariff(scene.service, "calls", "0.05", "EUR")
    ws.meter(scene.service).ingest([event(n) for n in range(3)])
    size = ws.store.tree_size()
    cases: list[tuple[type[Exception], str, object]] = [
        (NotFoundError, "defines no meter 'words'",
         lambda: ws.set_tariff(scene.service, "words", "1", "EUR")),
        (InputError, "not exact", lambda: ws.set_tariff(scene.service, "calls", 0.1, "EUR")),
        (InputError, "no metered usage", lambda: ws.bill_usage(scene.service, "2026-04", currency="EUR")),
        (NotFoundError, "meter 'tokens' of .* has no tariff in EUR in force on 2026-03-01",
         lambda: ws.bill_usage(scene.service, "2026-03", currency="EUR")),
        (NotFoundError, "has no tariff in USD",
         lambda: ws.bill_usage(scene.service, "2026-03", currency="USD")),
        (InputError, "cannot read the evidence file",
         lambda: ws.bill_usage(scene.service, "2026-03", currency="EUR", evidence=tmp_path / "no")),
        (InputError, "not a period", lambda: ws.bill_usage(scene.service, "March", currency="EUR")),
    ]  # fmt: skip
    for error, message, call in cases:
        with pytest.raises(error, match=message) as caught:
            call()  # type: ignore[operator]
        assert caught.value.hint, message  # type: ignore[attr-defined]
    assert ws.store.tree_size() == size
    ws.set_tariff(scene.service, "tokens", "0.001", "EUR")
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    size = ws.store.tree_size()
    for period in ("2026-03", "2026-Q1", "2026"):
        with pytest.raises(InputError, match="already billed") as again:
            ws.bill_usage(scene.service, period, currency="EUR")
        assert again.value.hint
    assert ws.store.tree_size() == size


def test_a_bill_that_comes_to_zero_is_refused(ws: Workspace) -> None:
    scene = Scene(ws)
    ws.set_tariff(scene.service, "tokens", "0", "EUR")
    ws.set_tariff(scene.service, "calls", "0.001", "EUR")
    ws.meter(scene.service).ingest([event(n) for n in range(3)])  # 3 calls: 0.003 EUR -> 0
    with pytest.raises(InputError, match="comes to 0 EUR"):
        ws.bill_usage(scene.service, "2026-03", currency="EUR")


def test_a_billed_period_is_closed_late_events_move_on_and_a_forced_batch_is_refused(
    ws: Workspace,
) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n) for n in range(3)])
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    late = ws.meter(scene.service).ingest([event(n) for n in range(3, 6)])
    assert late.late == 6
    for index in late.batches:
        body = ws.entry_at(index).body_as(UsageBatch)
        assert str(body.period) == "2026-04"
        assert body.note is not None
        assert "already billed" in body.note
    forced = UsageBatch(
        scene.service, "calls", Period.parse("2026-03"), 1, "1", 1, "00" * 32,
        datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC),
    )  # fmt: skip
    with pytest.raises(RightsError, match="already billed") as caught:
        ws.ledger.append(forced, author=scene.operator)
    assert caught.value.rule == "closed-period"
    april = ws.bill_usage(scene.service, "2026-04", currency="EUR")
    assert isinstance(april, Bill)
    assert next(line for line in april.body.lines if line.meter == "calls").quantity == "3"
    ws.verify()


def test_metered_and_recorded_usage_are_billed_by_their_own_paths(ws: Workspace) -> None:
    scene = priced(ws)
    ws.record_usage(
        scene.service, "someone", 4, datetime(2026, 6, 3, tzinfo=UTC), by=scene.operator
    )
    revenue = ws.bill_usage(
        scene.service, "2026-06", unit_price="1.00", currency="EUR", by=scene.operator
    )
    assert isinstance(revenue, RevenueId)
    with pytest.raises(InputError, match="no metered usage"):
        ws.bill_usage(scene.service, "2026-07", currency="EUR")


def _lax(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    real = quotepart.store.rights.RULES[kind]
    lax = dataclasses.replace(real, check=lambda writer, body, entry: None)
    monkeypatch.setitem(quotepart.store.rights.RULES, kind, lax)


def _forge(ws: Workspace, scene: Scene, **changes: object) -> UsageBilled:
    """The honest bill of March, with `changes`, appended with its revenue (not recorded)."""
    from quotepart.metering.billing import plan_bill

    revenue = RevenueId.new(ws.clock)
    with ws.ledger.read() as conn:
        honest = plan_bill(conn, scene.service, Period.parse("2026-03"), "EUR", revenue, None)
    return dataclasses.replace(honest, **changes)  # type: ignore[arg-type]


def _append_bill(ws: Workspace, scene: Scene, bill: UsageBilled) -> int:
    revenue = RevenueRecorded(
        bill.revenue, bill.service, bill.period, bill.total_minor, "EUR", "forged"
    )
    index, _ = ws.append_many([(bill, scene.operator), (revenue, scene.operator)])
    return index


def test_a_bill_that_is_not_its_recomputation_is_refused_at_append(ws: Workspace) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n, f"c{n % 2}", tokens=100) for n in range(6)])
    honest = _forge(ws, scene)
    size = ws.store.tree_size()
    lines = list(honest.lines)
    tokens = next(i for i, line in enumerate(lines) if line.meter == "tokens")
    inflated = dataclasses.replace(lines[tokens], quantity="700", amount_minor=105)
    cheaper = dataclasses.replace(lines[tokens], unit_price="0.001", amount_minor=60)
    for forged, words in [
        (dataclasses.replace(honest, batches=honest.batches - 1), "counts"),
        (_with_line(honest, tokens, inflated), "its batches give 600"),
        (_with_line(honest, tokens, cheaper), "the line says 0.001"),
        (dataclasses.replace(honest, lines=tuple(lines[:1]),
                             total_minor=lines[0].amount_minor), "bills meters"),
    ]:  # fmt: skip
        with pytest.raises(RightsError, match=words) as caught:
            _append_bill(ws, scene, forged)
        assert caught.value.rule == "recompute"
    assert ws.store.tree_size() == size
    _append_bill(ws, scene, honest)
    ws.verify()


def _with_line(bill: UsageBilled, at: int, line: object) -> UsageBilled:
    lines = list(bill.lines)
    lines[at] = line  # type: ignore[call-overload]
    return dataclasses.replace(
        bill, lines=tuple(lines), total_minor=sum(x.amount_minor for x in lines)
    )


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"consumers_root": "ab" * 32}, "consumers' root"),
        ({"batches_digest": "sha256:" + "cd" * 32}, r"counts 6 batch\(es\)"),
        ({"consumers": 1}, "consumers' root"),
    ],
)
def test_verify_recomputes_what_the_rule_cannot(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, changes: dict[str, object], named: str
) -> None:
    """The root over the consumers' lines and the batches' digest need the events and the
    log's leaf hashes: the rule cannot see them, verify recomputes them."""
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n, f"c{n % 2}") for n in range(6)], batch_size=2)
    forged = _forge(ws, scene, **changes)
    _append_bill(ws, scene, forged)
    with pytest.raises(VerificationError, match=named):
        ws.verify()


def test_a_batch_forced_into_a_billed_period_is_named_by_verify(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n) for n in range(3)])
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    forced = UsageBatch(
        scene.service, "calls", Period.parse("2026-03"), 1, "1", 1, "00" * 32,
        datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC),
    )  # fmt: skip
    _lax(monkeypatch, "usage.batch")
    leaf = ws.ledger.append(forced, author=scene.operator)
    monkeypatch.undo()
    with pytest.raises(VerificationError, match=f"entry {leaf}: .*already billed"):
        ws.verify()
