"""CloudEvents ingestion: batches, pseudonyms, dedupe, closed months, rights, bad events."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from quotepart.errors import InputError, MalformedEntryError, NotFoundError, RightsError
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import UsageBatch
from quotepart.log.merkle import root_of_leaf_hashes
from quotepart.store.keyfolder import create_secret_file
from quotepart.store.schema import usage_events
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock


class Scene:
    """An operator with a model and a service metering tokens (sum) and calls (count)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.operator = ws.register_party("Operator", roles=["operator"])
        self.other = ws.register_party("Other", roles=["operator"])
        model = ws.register_asset(b"weights", asset_kind="model", name="M", by=self.operator)
        self.service = ws.register_service(
            name="LLM API", endpoint="https://api.example/v1", model=model, by=self.operator
        )
        ws.define_meter(
            self.service, "tokens", event_type="llm.completion", aggregation="sum",
            value_path="$.data.tokens", group_by=["$.data.model"],
        )  # fmt: skip
        ws.define_meter(self.service, "calls", event_type="llm.completion", aggregation="count")


def event(n: int, consumer: str = "customer-1", tokens: Any = 10, **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ev-{n}",
        "source": "//api.example/eu",
        "type": "llm.completion",
        "time": f"2026-03-{1 + n % 28:02d}T10:00:{n % 60:02d}Z",
        "subject": consumer,
        "data": {"tokens": tokens, "model": "large"},
        **extra,
    }


def batches_of(ws: Workspace) -> list[UsageBatch]:
    return [
        ws.entry_at(i).body_as(UsageBatch)
        for i in range(ws.store.tree_size())
        if ws.entry_at(i).kind == "usage.batch"
    ]


def stored_events(ws: Workspace) -> int:
    with ws.ledger.read() as conn:
        return int(conn.execute(select(func.count()).select_from(usage_events)).scalar_one())


def test_events_are_recorded_in_signed_batches_whose_roots_commit_to_them(ws: Workspace) -> None:
    scene = Scene(ws)
    events = [event(n, f"customer-{n % 3}", tokens=n * 7) for n in range(25)]
    result = ws.meter(scene.service).ingest(events, batch_size=10)
    assert (result.recorded, result.duplicates, result.rejected) == (50, 0, 0)
    batches = batches_of(ws)
    tokens = [b for b in batches if b.meter == "tokens"]
    calls = [b for b in batches if b.meter == "calls"]
    assert [b.events for b in tokens] == [10, 10, 5]
    assert sum(b.events for b in calls) == 25
    assert sum(Decimal(b.aggregate) for b in tokens) == sum(n * 7 for n in range(25))
    assert sum(Decimal(b.aggregate) for b in calls) == 25
    assert {str(b.period) for b in batches} == {"2026-03"}
    assert {b.epoch for b in batches} == {1}
    with ws.ledger.read() as conn:
        for index in result.batches:
            body = ws.entry_at(index).body_as(UsageBatch)
            leaves = [
                bytes(row.leaf)
                for row in conn.execute(
                    select(usage_events.c.leaf)
                    .where(usage_events.c.id >= index << 20, usage_events.c.id < (index + 1) << 20)
                    .order_by(usage_events.c.id)
                )
            ]
            assert root_of_leaf_hashes(leaves).hex() == body.root
    report = ws.verify()
    assert (report.usage_batches_checked, report.usage_events_checked) == (len(batches), 50)


def test_an_event_is_recorded_once_for_ever(ws: Workspace) -> None:
    scene = Scene(ws)
    events = [event(n) for n in range(5)]
    first = ws.meter(scene.service).ingest(events + events[:2])
    assert (first.recorded, first.duplicates) == (10, 4)  # two meters each
    again = ws.meter(scene.service).ingest(list(reversed(events)))
    assert (again.recorded, again.duplicates, again.batches) == (0, 10, [])
    # the same (source, id) with other content is the same event: not counted twice
    changed = ws.meter(scene.service).ingest([event(0, tokens=999)])
    assert changed.recorded == 0
    assert stored_events(ws) == 10


def test_json_lines_and_batch_arrays_are_read_alike(ws: Workspace) -> None:
    scene = Scene(ws)
    lines = b"\n".join(orjson.dumps(event(n)) for n in range(3)) + b"\n\n"
    array = orjson.dumps([event(n) for n in range(3, 6)])
    assert ws.meter(scene.service).ingest(lines).recorded == 6
    assert ws.meter(scene.service).ingest(array).recorded == 6
    with pytest.raises(InputError, match="batch is not valid JSON"):
        ws.meter(scene.service).ingest(b"[{" + array)


def test_events_of_the_cloudevents_sdk_and_of_openmeter_are_accepted(ws: Workspace) -> None:
    from cloudevents.v1.conversion import to_json
    from cloudevents.v1.http import CloudEvent

    scene = Scene(ws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sdk = CloudEvent(
            {"type": "llm.completion", "source": "//sdk", "subject": "customer-9"},
            {"tokens": 12, "model": "small"},
        )
        sdk_bytes = to_json(sdk)
    # OpenMeter's documented event shape: values may be numeric strings, time has an offset
    openmeter = {
        "specversion": "1.0", "type": "llm.completion", "id": "00001", "source": "my-app",
        "time": "2026-03-04T12:00:00.001+01:00", "subject": "customer-1",
        "data": {"tokens": "123.5", "model": "gpt-4"},
    }  # fmt: skip
    result = ws.meter(scene.service).ingest([sdk_bytes, openmeter, sdk])
    assert (result.recorded, result.rejected, result.duplicates) == (4, 0, 2), result.problems
    tokens = sum(Decimal(b.aggregate) for b in batches_of(ws) if b.meter == "tokens")
    assert tokens == Decimal("135.5")


BAD_EVENTS: list[tuple[bytes, str]] = [
    (orjson.dumps({k: v for k, v in event(1).items() if k != "id"}), "missing required attribute 'id'"),
    (orjson.dumps({k: v for k, v in event(2).items() if k != "source"}), "'source'"),
    (orjson.dumps({k: v for k, v in event(3).items() if k != "type"}), "'type'"),
    (orjson.dumps({k: v for k, v in event(4).items() if k != "specversion"}), "'specversion'"),
    (orjson.dumps(event(5, time="2026-13-40T99:00:00Z")), "not a valid date"),
    (orjson.dumps(event(6, time="yesterday")), "not an RFC 3339 timestamp"),
    (orjson.dumps(event(7, pad="x" * 70_000)), "more than the limit of 65,536"),
    (orjson.dumps({**event(8), "data": {"model": "large"}}), "value path $.data.tokens matches nothing"),
    (orjson.dumps(event(9, tokens="lots")), "is not a number (a sum meter)"),
    (orjson.dumps(event(10, tokens=-3)), "must be a number from 0"),
    (orjson.dumps(event(11, type="other.type")), "no meter counts events of type 'other.type'"),
    (b"{not json", "not valid JSON"),
    (orjson.dumps(event(12, specversion="0.3")), "specversion '0.3' is not supported"),
    (orjson.dumps(event(13, consumer="")), "no consumer"),
    (orjson.dumps(event(14, consumer="hmac-sha256:" + "0" * 64)), "already a pseudonym"),
    (orjson.dumps(event(15, BadName=1)), "attribute name 'BadName' is not valid"),
    (orjson.dumps([1, 2]), "not a JSON object"),
    (orjson.dumps(event(16, consumer="alice@example.org", source="//api/alice@example.org")), "appears elsewhere in the event"),
    (orjson.dumps({**event(17, consumer="bob.smith"), "data": {"tokens": 1, "user": "bob.smith"}}), "appears elsewhere"),
]  # fmt: skip


def test_each_bad_event_is_reported_at_its_position_and_the_good_ones_are_kept(
    ws: Workspace,
) -> None:
    scene = Scene(ws)
    lines: list[bytes] = []
    for bad, _ in BAD_EVENTS:
        lines.append(orjson.dumps(event(1000 + len(lines))))  # a good one before each bad one
        lines.append(bad)
    rejected: list[Any] = []
    result = ws.meter(scene.service).ingest(b"\n".join(lines), on_reject=rejected.append)
    assert result.recorded == 2 * len(BAD_EVENTS)  # the good ones, under both meters
    assert result.rejected == len(BAD_EVENTS) == len(rejected)
    for problem, (_bad, expected) in zip(result.problems, BAD_EVENTS, strict=True):
        assert expected in problem.reason, (problem, expected)
    assert [p.position for p in result.problems] == list(range(2, 2 * len(BAD_EVENTS) + 1, 2))
    assert rejected[0].raw == BAD_EVENTS[0][0]
    ws.verify()


def test_raw_consumer_identifiers_reach_no_byte_written(tmp_path: Path) -> None:
    consumers = [f"alice.secret-{n}@example.org" for n in range(5)]
    folder = tmp_path / "ws"
    with init_workspace(folder, clock=FakeClock()) as ws:
        scene = Scene(ws)
        good = [event(n, consumers[n % 5]) for n in range(40)]
        bad = [event(99, consumers[0], tokens="lots"), event(98, consumers[1], time="never")]
        result = ws.meter(scene.service).ingest(good + bad)
        assert result.rejected == 2
        assert not any(c in str(problem) for problem in result.problems for c in consumers)
        ws.verify()
        log_bytes = b"".join(ws.store.entry(i)[1] for i in range(ws.store.tree_size()))
    from click.testing import CliRunner

    from quotepart.cli import cli

    exports = b""
    for command in (["export", "prov", "--all"], ["export", "openlineage"], ["log", "entry", "7"]):
        result = CliRunner().invoke(cli, [*command, "--workspace", str(folder)])
        assert result.exit_code == 0, result.output
        exports += result.stdout_bytes + result.stderr_bytes
    assert b"usage.batch" in exports  # entry 7 is a batch: shown, pseudonyms only
    written = (
        log_bytes + exports + b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    )
    for consumer in consumers:
        assert consumer.encode() not in written
    assert b"alice" not in written


def test_late_events_count_in_the_next_open_month_never_in_a_billed_one(ws: Workspace) -> None:
    scene = Scene(ws)
    ws.meter(scene.service).ingest([event(n) for n in range(3)])  # March
    ws.record_revenue(
        scene.service, "100.00", "EUR", period="2026-03", source="invoice 17", by=scene.operator
    )
    late = ws.meter(scene.service).ingest([event(n) for n in range(3, 6)])
    assert late.late == 6
    assert late.recorded == 6
    for index in late.batches:
        body = ws.entry_at(index).body_as(UsageBatch)
        assert str(body.period) == "2026-04"
        assert body.note is not None
        assert "2026-03" in body.note
        assert "already billed" in body.note
    forced = UsageBatch(
        scene.service, "calls", body.period.__class__.parse("2026-03"), 1, "1", 1, "00" * 32,
        datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC),
    )  # fmt: skip
    with pytest.raises(RightsError, match="already billed") as caught:
        ws.ledger.append(forced, author=scene.operator)
    assert caught.value.rule == "closed-period"
    ws.verify()


def test_only_the_operator_or_its_metering_delegate_records_usage(ws: Workspace) -> None:
    scene = Scene(ws)
    size = ws.store.tree_size()
    with pytest.raises(RightsError, match="metering right"):
        ws.meter(scene.service).ingest([event(1)], by=scene.other)
    assert ws.store.tree_size() == size
    assert stored_events(ws) == 0
    with pytest.raises(RightsError, match="metering right"):
        ws.define_meter(scene.service, "x", event_type="t", aggregation="count", by=scene.other)
    ws.grant_right(scene.other, "metering", scene.service, by=scene.operator)
    assert ws.meter(scene.service).ingest([event(1)], by=scene.other).recorded == 2


def test_meters_refuse_bad_definitions_and_write_nothing(ws: Workspace) -> None:
    scene = Scene(ws)
    size = ws.store.tree_size()
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"aggregation": "sum"}, MalformedEntryError, "needs a value_path"),
        ({"aggregation": "count", "value_path": "$.data.x"}, MalformedEntryError, "takes no"),
        ({"aggregation": "sum", "value_path": "data.x"}, MalformedEntryError, "not a JSON path"),
        ({"aggregation": "median", "value_path": "$.x"}, MalformedEntryError, "aggregation"),
        ({"aggregation": "count", "consumer_path": "$"}, MalformedEntryError, "consumer_path"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            ws.define_meter(scene.service, "new", event_type="t", **options)
    with pytest.raises(InputError, match="already defined"):
        ws.define_meter(scene.service, "calls", event_type="t", aggregation="count")
    with pytest.raises(InputError, match="not a service"):
        ws.define_meter("M", "calls", event_type="t", aggregation="count")
    with pytest.raises(MalformedEntryError, match="slug"):
        ws.define_meter(scene.service, "Bad Name", event_type="t", aggregation="count")
    assert ws.store.tree_size() == size


def test_a_rotated_key_starts_an_epoch_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
        ws.meter(scene.service).ingest([event(1)])
        assert ws.rotate_usage_key() == 2
        second = ws.meter(scene.service).ingest([event(2)])
        assert {ws.entry_at(i).body_as(UsageBatch).epoch for i in second.batches} == {2}
        pseudonyms = set()
        with ws.ledger.read() as conn:
            pseudonyms = {bytes(r[0]) for r in conn.execute(select(usage_events.c.consumer))}
        assert len(pseudonyms) == 2  # one consumer, two epochs: unlinkable without the keys
        (tmp_path / "ws" / "keys" / "usage-2.key").unlink()
        with pytest.raises(NotFoundError, match="epoch 2 is missing"):
            ws.meter(scene.service).ingest([event(3)])
        assert stored_events(ws) == 4


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("UPDATE usage_events SET event = CAST(REPLACE(CAST(event AS TEXT), 'large', 'LARGE') AS BLOB) WHERE id = (SELECT MIN(id) FROM usage_events)", "do not hash to its leaf"),
        ("DELETE FROM usage_events WHERE id = (SELECT MAX(id) FROM usage_events)", "events stored"),
        ("UPDATE usage_events SET value = '99999' WHERE id = (SELECT MIN(id) FROM usage_events) AND value IS NOT NULL", "stored value differs"),
        ("UPDATE usage_totals SET total = '1'", "total of a consumer"),
        ("UPDATE usage_events SET consumer = X'" + "ab" * 32 + "' WHERE id = (SELECT MIN(id) FROM usage_events)", "another consumer"),
        ("INSERT INTO usage_events SELECT id + 1000, X'00112233445566778899AABBCCDDEEFF', consumer, at, value, leaf, event FROM usage_events WHERE id = (SELECT MAX(id) FROM usage_events)", "is missing"),
        ("INSERT INTO usage_events SELECT id + (1000 << 20), X'00112233445566778899AABBCCDDEEFF', consumer, at, value, leaf, event FROM usage_events WHERE id = (SELECT MAX(id) FROM usage_events)", "no signed batch"),
    ],
)  # fmt: skip
def test_verify_recomputes_every_batch_from_its_events(
    tmp_path: Path, tamper: str, message: str
) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
        ws.meter(scene.service).ingest([event(n, f"c{n % 2}", tokens=n) for n in range(1, 9)])
        ws.verify()
        with ws.store.engine.begin() as conn:
            conn.execute(text(tamper))
        with pytest.raises(Exception, match=message):
            ws.verify()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(list(range(12))),
    repeats=st.lists(st.integers(0, 11), max_size=8),
    late_first=st.booleans(),
    batch_size=st.integers(1, 7),
)
def test_duplicates_and_any_order_give_the_same_totals(
    tmp_path_factory: pytest.TempPathFactory,
    order: list[int],
    repeats: list[int],
    late_first: bool,
    batch_size: int,
) -> None:
    events = [event(n, f"c{n % 4}", tokens=n * 1.25) for n in range(12)]
    stream = [events[i] for i in order] + [events[i] for i in repeats]
    if late_first:
        stream.reverse()
    folder = tmp_path_factory.mktemp("ws")
    with init_workspace(folder / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
        half = len(stream) // 2
        ws.meter(scene.service).ingest(stream[:half], batch_size=batch_size)
        ws.meter(scene.service).ingest(stream[half:], batch_size=batch_size)
        with ws.ledger.read() as conn:
            totals = {
                (row.meter, bytes(row.consumer)): (row.events, row.total)
                for row in conn.execute(
                    text("SELECT meter, consumer, events, total FROM usage_totals")
                )
            }
        batches = batches_of(ws)
        ws.verify()
    by_consumer: dict[str, Decimal] = {}
    for n in range(12):
        by_consumer[f"c{n % 4}"] = by_consumer.get(f"c{n % 4}", Decimal(0)) + Decimal(str(n * 1.25))
    assert sorted(t for (meter, _), (_, t) in totals.items() if meter == "tokens") == sorted(
        str(v.normalize()) if v != v.to_integral_value() else str(int(v))
        for v in by_consumer.values()
    )
    assert sum(Decimal(b.aggregate) for b in batches if b.meter == "tokens") == sum(
        by_consumer.values()
    )
    assert sum(b.events for b in batches if b.meter == "calls") == 12


def test_an_operator_id_and_digest_types_are_what_the_entries_hold(ws: Workspace) -> None:
    scene = Scene(ws)
    [index, *_] = ws.meter(scene.service).ingest([event(1)]).batches
    entry = ws.entry_at(index)
    assert isinstance(entry.author, PartyId)
    assert entry.author == scene.operator
    assert isinstance(entry.body_as(UsageBatch).service, Digest)


@pytest.mark.parametrize("aggregation", ["sum", "max", "count", "unique_count"])
def test_totals_fold_across_batches_exactly_on_both_backends(
    ws: Workspace, aggregation: str
) -> None:
    scene = Scene(ws)
    path = None if aggregation == "count" else "$.data.size"
    ws.define_meter(scene.service, "m", event_type="file.stored", aggregation=aggregation,
                    value_path=path)  # fmt: skip
    sizes = ["0.1", "0.2", "12345678901234567890.00000000000000000001", "7", "0.30", "2.5"]
    events = [
        {**event(n, f"c{n % 2}"), "type": "file.stored", "data": {"size": size}}
        for n, size in enumerate(sizes)
    ]
    for part in range(0, len(events), 2):  # three ingestions: rows of one consumer fold in
        ws.meter(scene.service).ingest(events[part : part + 2], batch_size=1)
    with ws.ledger.read() as conn:
        rows = conn.execute(text("SELECT events, total FROM usage_totals WHERE meter = 'm'")).all()
    with localcontext(prec=100):  # the test's own sums must not round either
        values = [Decimal(size) for size in sizes]
        expected = {
            "sum": [sum(values[0::2]), sum(values[1::2])],
            "max": [max(values[0::2]), max(values[1::2])],
            "count": [Decimal(3), Decimal(3)],
            "unique_count": [],  # not additive: bills count distinct values from the events
        }[aggregation]
    assert sorted(Decimal(total) for _, total in rows) == sorted(expected)
    assert all(events == 3 for events, _ in rows)
    ws.verify()  # recomputes every total from the events


def test_parsing_in_worker_processes_records_the_same_batches(tmp_path: Path) -> None:
    events = [event(n, f"c{n % 7}", tokens=n) for n in range(2500)]
    events.insert(100, {"broken": True})
    roots = []
    key = b""
    for workers in (1, 2):
        folder = tmp_path / f"ws{workers}"
        with init_workspace(folder, clock=FakeClock()) as ws:
            scene = Scene(ws)
            if key:  # the same pseudonym key in both workspaces, so the same event bytes
                create_secret_file(ws.ledger.keys.usage_key_path, key)
            key = ws.ledger.keys.usage_key()
            result = ws.meter(scene.service).ingest(events, batch_size=400, workers=workers)
            assert (result.recorded, result.rejected) == (5000, 1)
            assert result.problems[0].position == 101
            roots.append([ws.entry_at(i).body_as(UsageBatch).root for i in result.batches])
            ws.verify()
    assert roots[0] == roots[1]


def test_an_event_recorded_by_another_writer_meanwhile_is_skipped_not_doubled(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ingesters read the dedupe index, then race to write: the loser's transaction
    fails on the unique key (nothing of it is kept), it checks again and records the rest."""
    from quotepart.metering import ingest as ingest_module

    scene = Scene(ws)
    real = ingest_module.seen_dedupe_keys
    calls = {"n": 0}

    def stale_then_real(conn: Any, keys: Any) -> set[bytes]:
        calls["n"] += 1
        if calls["n"] == 1:  # the first look misses what "the other writer" recorded
            ws.meter(scene.service).ingest([event(1)])
            return set()
        return real(conn, keys)

    monkeypatch.setattr(ingest_module, "seen_dedupe_keys", stale_then_real)
    result = ws.meter(scene.service).ingest([event(1), event(2)])
    assert (result.recorded, result.duplicates) == (2, 2)  # event 2 under both meters
    assert stored_events(ws) == 4
    ws.verify()


def test_whole_totals_that_grow_past_the_fast_path_stay_exact(ws: Workspace) -> None:
    """Whole values add in SQL while totals are small; a decimal stored total, or one of
    10^15 or more, sends the batch down the exact path, with nothing added twice."""
    scene = Scene(ws)
    big = 999_999_999_999_999  # just under 10^15
    steps = [(1, 1), (2, "0.5"), (3, 3), (big, big), (big, big), (7, 7)]  # (c0's, c1's)
    for n, (whole, mixed) in enumerate(steps):
        ws.meter(scene.service).ingest(
            [event(2 * n, "c0", tokens=whole), event(2 * n + 1, "c1", tokens=mixed)]
        )
    with ws.ledger.read() as conn:
        rows = conn.execute(
            text("SELECT events, total FROM usage_totals WHERE meter = 'tokens'")
        ).all()
    c0 = 1 + 2 + 3 + 2 * big + 7  # past 10^15 after step 4: the exact path from then on
    c1 = Decimal("1") + Decimal("0.5") + 3 + 2 * big + 7  # a decimal from step 2
    assert sorted(rows) == sorted([(6, str(c0)), (6, str(c1))])
    ws.verify()
