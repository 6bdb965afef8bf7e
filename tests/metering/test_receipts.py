"""Consumers' receipts: built for every consumer, checked offline, and every tampering caught."""

from __future__ import annotations

import base64
import copy
import itertools
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotepart.cli import cli
from quotepart.errors import InputError, NotFoundError, VerificationError
from quotepart.metering.receipts import verify_receipt
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.metering.test_ingest import Scene, event

Receipt = dict[str, Any]


def priced(ws: Workspace) -> Scene:
    scene = Scene(ws)
    ws.set_tariff(scene.service, "tokens", "0.0015", "EUR")
    ws.set_tariff(scene.service, "calls", "0.05", "EUR")
    return scene


def roundtrip(receipt: Receipt) -> Receipt:
    """As a consumer receives it: through a JSON file."""
    loaded: Receipt = json.loads(json.dumps(receipt))
    return loaded


def test_a_receipt_proves_a_consumers_events_and_billed_quantities(ws: Workspace) -> None:
    scene = priced(ws)
    events = [event(n, f"customer-{n % 3}", tokens=n * 7) for n in range(25)]
    ws.meter(scene.service).ingest(events, batch_size=4)
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    for c in range(3):
        mine = [e for e in events if e["subject"] == f"customer-{c}"]
        receipt = ws.usage_receipt(f"customer-{c}", "2026-03")
        assert f"customer-{c}" not in json.dumps(receipt)  # only pseudonyms are written
        verified = verify_receipt(roundtrip(receipt), trusted_key=str(ws.verifier))
        assert verified.quantities == {
            "calls": str(len(mine)),
            "tokens": str(sum(e["data"]["tokens"] for e in mine)),
        }
        assert verified.events == 2 * len(mine)  # each event counts under both meters
        assert verified.unit_prices == {"calls": "0.05", "tokens": "0.0015"}
        ids = {orjson.loads(base64.b64decode(e["event"]))["id"] for e in receipt["events"]}
        assert ids == {e["id"] for e in mine}


def test_a_receipt_covers_every_key_epoch_of_the_consumer(ws: Workspace) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n, "alice", tokens=5) for n in range(3)])
    ws.rotate_usage_key()
    ws.meter(scene.service).ingest([event(n, "alice", tokens=5) for n in range(3, 7)])
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    receipt = ws.usage_receipt("alice", "2026-03", service=scene.service)
    assert len(receipt["consumer"]) == 2  # one line per pseudonym
    verified = verify_receipt(roundtrip(receipt))
    assert verified.quantities == {"calls": "7", "tokens": "35"}
    assert verified.pseudonyms == 2


def test_receipts_of_unique_count_and_max_meters(ws: Workspace) -> None:
    scene = Scene(ws)
    ws.define_meter(
        scene.service, "models", event_type="llm.completion", aggregation="unique_count",
        value_path="$.data.model",
    )  # fmt: skip
    ws.define_meter(
        scene.service, "peak", event_type="llm.completion", aggregation="max",
        value_path="$.data.tokens",
    )  # fmt: skip
    for meter, price in [("tokens", "0.001"), ("calls", "0.01"), ("models", "1"), ("peak", "0.1")]:
        ws.set_tariff(scene.service, meter, price, "EUR")
    events = [
        {**event(n, f"c{n % 2}", tokens=n), "data": {"tokens": n, "model": f"m{n % 3}"}}
        for n in range(12)
    ]
    ws.meter(scene.service).ingest(events, batch_size=5)
    bill = ws.bill_usage(scene.service, "2026-03", currency="EUR")
    lines = {line.meter: line.quantity for line in bill.body.lines}  # type: ignore[union-attr]
    assert (lines["models"], lines["peak"]) == ("3", "11")
    verified = verify_receipt(roundtrip(ws.usage_receipt("c1", "2026-03")))
    assert verified.quantities["models"] == "3"  # m1, m0, m2 over n = 1, 3, 5 ...
    assert verified.quantities["peak"] == "11"
    assert verify_receipt(roundtrip(ws.usage_receipt("c0", "2026-03"))).quantities["peak"] == "10"
    ws.verify()


# ------------------------------------------------------------------ tampering


def _alter_quantity(receipt: Receipt) -> None:
    line = receipt["consumer"][0]
    doc = json.loads(line["line"])
    doc["usage"]["tokens"] = str(Decimal(doc["usage"]["tokens"]) - 1)
    line["line"] = json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _drop_event(receipt: Receipt) -> None:
    receipt["events"].pop()


def _substitute_batch(receipt: Receipt, other: Receipt) -> None:
    """An event's batch entry replaced by another batch's (of another period's bill)."""
    batch = str(receipt["events"][0]["batch"])
    replacement = str(other["events"][0]["batch"])
    receipt["entries"][batch] = other["entries"][replacement]
    receipt["proofs"][batch] = other["proofs"][replacement]


def _alter_event(receipt: Receipt) -> None:
    data = orjson.loads(base64.b64decode(receipt["events"][0]["event"]))
    data["data"]["tokens"] += 1
    receipt["events"][0]["event"] = base64.b64encode(orjson.dumps(data)).decode()


def _duplicate_event(receipt: Receipt) -> None:
    receipt["events"].append(copy.deepcopy(receipt["events"][0]))


def _drop_batch_from_list(receipt: Receipt) -> None:
    receipt["batches"].pop()


def _empty(receipt: Receipt) -> None:
    receipt["consumer"], receipt["events"], receipt["claimed"] = [], [], {}


def _alter_claim(receipt: Receipt) -> None:
    receipt["claimed"]["calls"] = str(int(receipt["claimed"]["calls"]) + 1)


def _foreign_checkpoint(receipt: Receipt, other: Receipt) -> None:
    receipt["log"] = other["log"]


TAMPERINGS: dict[str, Callable[[Receipt, Receipt], None]] = {
    "altered quantity": lambda r, o: _alter_quantity(r),
    "dropped event": lambda r, o: _drop_event(r),
    "substituted batch": _substitute_batch,
    "altered event": lambda r, o: _alter_event(r),
    "duplicated event": lambda r, o: _duplicate_event(r),
    "batch left out of the list": lambda r, o: _drop_batch_from_list(r),
    "altered claim": lambda r, o: _alter_claim(r),
    "another checkpoint": _foreign_checkpoint,
    "emptied": lambda r, o: _empty(r),
}

_months = itertools.count(3)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    usage=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10**6)), min_size=1, max_size=20),
    batch_size=st.integers(1, 8),
    data=st.data(),
)
def test_every_consumers_receipt_verifies_and_any_tampering_fails(
    ws: Workspace, usage: list[tuple[int, int]], batch_size: int, data: st.DataObject
) -> None:
    """Each example bills a fresh month of one workspace; every consumer's receipt
    verifies with its exact quantities, and each tampering is refused."""
    scene = getattr(ws, "_receipt_scene", None)
    if scene is None:
        scene = priced(ws)
        ws._receipt_scene = scene  # type: ignore[attr-defined]
    month = next(_months)
    period = f"{2026 + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}"
    events = [
        {
            **event(n, f"consumer-{c}", tokens=t),
            "id": f"m{month}-{n}",
            "time": f"{period}-02T00:00:00Z",
        }
        for n, (c, t) in enumerate(usage)
    ]
    ws.meter(scene.service).ingest(events, batch_size=batch_size)
    ws.bill_usage(scene.service, period, currency="EUR")
    receipts = {}
    for c in sorted({c for c, _ in usage}):
        receipt = roundtrip(ws.usage_receipt(f"consumer-{c}", period))
        verified = verify_receipt(receipt)
        mine = [t for d, t in usage if d == c]
        assert verified.quantities == {"calls": str(len(mine)), "tokens": str(sum(mine))}
        receipts[c] = receipt
    previous = getattr(ws, "_previous_receipt", None)
    ws._previous_receipt = next(iter(receipts.values()))  # type: ignore[attr-defined]
    if previous is None:
        return
    name = data.draw(st.sampled_from(sorted(TAMPERINGS)), label="tampering")
    receipt = copy.deepcopy(data.draw(st.sampled_from(list(receipts.values()))))
    TAMPERINGS[name](receipt, previous)
    with pytest.raises(VerificationError):
        verify_receipt(receipt)


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_each_tampering_is_named(ws: Workspace, name: str) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest(
        [event(n, f"c{n % 2}", tokens=n + 1) for n in range(10)], batch_size=3
    )
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    march = roundtrip(ws.usage_receipt("c1", "2026-03"))  # proved at an older checkpoint
    april = [
        {**event(n, "c1", tokens=2), "id": f"a{n}", "time": "2026-04-03T00:00:00Z"}
        for n in range(4)
    ]
    ws.meter(scene.service).ingest(april, batch_size=3)
    ws.bill_usage(scene.service, "2026-04", currency="EUR")
    other = roundtrip(ws.usage_receipt("c1", "2026-04"))
    verify_receipt(copy.deepcopy(march))
    TAMPERINGS[name](march, other)
    with pytest.raises(VerificationError) as caught:
        verify_receipt(march)
    assert caught.value.hint


def test_a_receipt_for_another_key_or_not_a_receipt_is_refused(ws: Workspace) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n) for n in range(3)])
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    receipt = roundtrip(ws.usage_receipt("customer-1", "2026-03"))
    with pytest.raises(VerificationError, match="another log key"):
        verify_receipt(receipt, trusted_key="other.log+12345678+AAAA")
    with pytest.raises(InputError, match="not a quotepart receipt"):
        verify_receipt({"format": "quotepart-statement/2"})
    broken = copy.deepcopy(receipt)
    del broken["events"]
    with pytest.raises(VerificationError, match="lacks a part"):
        verify_receipt(broken)


def test_a_receipt_for_an_unknown_consumer_or_period_is_refused_without_naming_it(
    ws: Workspace,
) -> None:
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n) for n in range(3)])
    with pytest.raises(NotFoundError, match="no bill") as unbilled:
        ws.usage_receipt("customer-1", "2026-03", service=scene.service)
    assert unbilled.value.hint
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    for consumer, period in [("mallory.secret@example.org", "2026-03"), ("customer-1", "2026-05")]:
        with pytest.raises(NotFoundError) as caught:
            ws.usage_receipt(consumer, period)
        assert consumer not in str(caught.value)
        assert caught.value.hint
        assert consumer not in caught.value.hint


def test_the_cli_bills_writes_a_receipt_and_verifies_it_offline(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    with init_workspace(folder, clock=FakeClock()) as ws:
        scene = priced(ws)
        service = str(scene.service)
    runner = CliRunner()
    lines = b"\n".join(orjson.dumps(event(n, f"c{n % 2}", tokens=3)) for n in range(6))
    (tmp_path / "events.jsonl").write_bytes(lines)
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF invoice")
    common = ["--workspace", str(folder)]
    steps = [
        ["usage", "ingest", str(tmp_path / "events.jsonl"), *common],
        ["usage", "tariffs", service, "--json", *common],
        ["usage", "bill", service, "--period", "2026-03", "--currency", "EUR",
         "--evidence", str(invoice), "--prepare-receipts", *common],
        ["usage", "receipt", "--consumer", "c1", "--period", "2026-03",
         "-o", str(tmp_path / "r.json"), *common],
    ]  # fmt: skip
    for step in steps:
        result = runner.invoke(cli, step)
        assert result.exit_code == 0, (step, result.output, result.stderr)
    receipt_text = (tmp_path / "r.json").read_text()
    positional = runner.invoke(cli, ["usage", "receipt", "c1", "--period", "2026-03", *common])
    assert positional.exit_code == 0, positional.stderr
    assert json.loads(positional.stdout)["events"] == json.loads(receipt_text)["events"]
    nobody = runner.invoke(cli, ["usage", "receipt", "--period", "2026-03", *common])
    assert nobody.exit_code == 2
    assert "which consumer?" in nobody.stderr
    assert '"c1"' not in receipt_text  # the identifier is never written, only pseudonyms
    checked = runner.invoke(cli, ["verify-receipt", str(tmp_path / "r.json"), "--json"])
    assert checked.exit_code == 0, checked.stderr
    assert json.loads(checked.stdout)["quantities"] == {"calls": "3", "tokens": "9"}
    key = json.loads(checked.stdout)["verifier_key"]
    told = runner.invoke(cli, ["verify-receipt", str(tmp_path / "r.json")])
    assert told.exit_code == 0
    assert "compare it with the key the log's operator publishes" in told.stderr
    trusted = runner.invoke(cli, ["verify-receipt", str(tmp_path / "r.json"), "--key", key])
    assert trusted.exit_code == 0
    assert "Note:" not in trusted.stderr
    other = runner.invoke(
        cli, ["verify-receipt", str(tmp_path / "r.json"), "--key", key.replace("+", "+x", 1)]
    )
    assert other.exit_code != 0
    assert "another log key" in other.stderr
    again = runner.invoke(cli, steps[2])
    assert again.exit_code == 2
    assert "already billed" in again.stderr
    assert "Hint:" in again.stderr
    priced_later = runner.invoke(
        cli, ["usage", "tariff", service, "tokens", "0.002", "--currency", "EUR",
              "--effective", "2099-01-01", "--json", *common],
    )  # fmt: skip
    assert priced_later.exit_code == 0, priced_later.stderr
    unknown = runner.invoke(
        cli, ["usage", "tariff", service, "words", "1", "--currency", "EUR", *common]
    )
    assert unknown.exit_code == 4
    assert "defines no meter 'words'" in unknown.stderr
    assert "Hint:" in unknown.stderr
    tampered = json.loads(receipt_text)
    _drop_event(tampered)
    (tmp_path / "bad.json").write_text(json.dumps(tampered))
    refused = runner.invoke(cli, ["verify-receipt", str(tmp_path / "bad.json")])
    assert refused.exit_code == 3
    assert "Error:" in refused.stderr
    assert "Hint:" in refused.stderr


def test_the_trees_kept_for_receipts_are_caches_checked_on_use(ws: Workspace) -> None:
    """The consumers' tree kept at billing and the batches' upper levels kept by the first
    receipt are derived files: damaged or lost, they are rebuilt, never trusted."""
    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n, f"c{n % 3}", tokens=n) for n in range(70)])
    ws.bill_usage(scene.service, "2026-03", currency="EUR")
    [kept] = (ws.path / "cache" / "consumer-trees").iterdir()
    expected = verify_receipt(roundtrip(ws.usage_receipt("c1", "2026-03"))).quantities
    assert expected == {"calls": "23", "tokens": str(sum(range(1, 70, 3)))}
    batch_trees = sorted((ws.path / "cache" / "batch-trees").iterdir())
    assert len(batch_trees) == 2  # one batch of 70 events per meter
    assert ws.prepare_receipts(scene.service, "2026-03") == 2  # kept already: read, checked
    for damaged in (kept, *batch_trees):
        damaged.write_bytes(bytes(len(damaged.read_bytes())))
    assert verify_receipt(roundtrip(ws.usage_receipt("c1", "2026-03"))).quantities == expected
    for lost in (kept, *batch_trees):
        lost.unlink()  # another machine on the same PostgreSQL: recomputed
    assert verify_receipt(roundtrip(ws.usage_receipt("c2", "2026-03"))).events == 46
    assert kept.exists()
    assert all(path.exists() for path in batch_trees)


def test_a_receipt_of_a_bill_priced_at_a_later_tariff_fails(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bill forced past the rule (as an older quotepart would have written it) that
    prices March at a tariff set for April: the consumer sees it from the file alone."""
    import dataclasses
    from datetime import UTC, datetime

    import quotepart.store.rights
    from quotepart.ids import Period, RevenueId
    from quotepart.log.kinds import RevenueRecorded
    from quotepart.metering.billing import plan_bill

    scene = priced(ws)
    ws.meter(scene.service).ingest([event(n, "c1") for n in range(3)])
    april = ws.set_tariff(
        scene.service, "calls", "9", "EUR", effective=datetime(2026, 4, 1, tzinfo=UTC)
    )
    with ws.ledger.read() as conn:
        honest = plan_bill(
            conn, scene.service, Period.parse("2026-03"), "EUR", RevenueId.new(ws.clock), None
        )
    lines = [
        dataclasses.replace(line, tariff=april, unit_price="9", amount_minor=2700)
        if line.meter == "calls"
        else line
        for line in honest.lines
    ]
    forged = dataclasses.replace(
        honest, lines=tuple(lines), total_minor=sum(line.amount_minor for line in lines)
    )
    revenue = RevenueRecorded(
        forged.revenue, forged.service, forged.period, forged.total_minor, "EUR", "forged"
    )
    real = quotepart.store.rights.RULES["usage.billed"]
    monkeypatch.setitem(
        quotepart.store.rights.RULES,
        "usage.billed",
        dataclasses.replace(real, check=lambda writer, body, entry: None),
    )
    ws.append_many([(forged, scene.operator), (revenue, scene.operator)])
    monkeypatch.undo()
    with pytest.raises(VerificationError, match="takes effect after 2026-03 starts"):
        verify_receipt(roundtrip(ws.usage_receipt("c1", "2026-03")))
