"""The report's usage statistics: exact meter totals, and per-consumer figures only as the
differentially private releases the log holds, each with its ε."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quotepart.log.kinds import PrivacyReleased
from quotepart.report import render_report
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.report.scene import ReportScene

CONSUMERS = [f"hospital-ward-{k}" for k in range(12)]


def cloud_events() -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for n in range(300):
        consumer = CONSUMERS[n % len(CONSUMERS)]
        events.append(
            {
                "specversion": "1.0",
                "id": f"triage-{n}",
                "source": "//api.example.org/triage",
                "type": "triage.request",
                "time": f"2026-01-{1 + n % 31:02d}T08:{n % 60:02d}:00Z",
                "subject": consumer,
                "data": {"images": 1 + n % 4},
            }
        )
    return events


@pytest.fixture(scope="module")
def reported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, ReportScene, bytes, bytes]]:
    folder = tmp_path_factory.mktemp("private")
    with init_workspace(folder / "ws", clock=FakeClock()) as ws:
        scene = ReportScene(ws)
        ws.define_meter(scene.service, "requests", event_type="triage.request", aggregation="count")
        ws.define_meter(
            scene.service, "images", event_type="triage.request", aggregation="sum",
            value_path="$.data.images",
        )  # fmt: skip
        ws.meter(scene.service).ingest(cloud_events())
        ws.set_privacy_budget(scene.service, "1")
        ws.release_usage_statistics(
            scene.service, "requests", "2026-01", query="daily-count", epsilon="0.5", bound=2
        )
        ws.release_usage_statistics(
            scene.service, "images", "2026-01", query="consumer-histogram", epsilon="0.5",
            edges=[50, 100],
        )  # fmt: skip
        scene.earn()
        rendered = render_report(ws.report_data(scene.service, "2026-Q1"), pdf=False)
        yield ws, scene, rendered.json, rendered.html


def test_the_report_shows_the_releases_as_the_log_holds_them(
    reported: tuple[Workspace, ReportScene, bytes, bytes],
) -> None:
    ws, scene, _, html = reported
    document = ws.report_data(scene.service, "2026-Q1").document
    private = document.usage.private
    assert [(r.query, r.meter, r.period, r.epsilon) for r in private] == [
        ("daily-count", "requests", "2026-01", "0.5"),
        ("consumer-histogram", "images", "2026-01", "0.5"),
    ]
    for release in private:
        body = ws.entry_at(release.entry).body_as(PrivacyReleased)
        assert release.values == body.values
        assert release.mechanism == body.mechanism
        assert release.service_name == "Triage API"
    page = html.decode()
    assert "Private statistics" in page
    assert "ε = 0.5" in page
    assert private[0].mechanism in page


def test_the_report_shows_exact_meter_totals_over_all_consumers(
    reported: tuple[Workspace, ReportScene, bytes, bytes],
) -> None:
    ws, scene, _, html = reported
    metered = {m.meter: m for m in ws.report_data(scene.service, "2026-Q1").document.usage.metered}
    assert (metered["requests"].events, metered["requests"].total) == (300, "300")
    assert metered["images"].total == str(sum(1 + n % 4 for n in range(300)))
    assert "Metered usage" in html.decode()


def test_nothing_about_one_consumer_is_in_the_clear(
    reported: tuple[Workspace, ReportScene, bytes, bytes],
) -> None:
    ws, _, json_bytes, html = reported
    text = json_bytes.decode() + html.decode()
    for consumer in CONSUMERS:
        assert consumer not in text
        assert ws.pseudonym(consumer).removeprefix("hmac-sha256:") not in text
    assert "hmac-sha256" not in text


def test_a_report_of_a_period_without_releases_shows_none(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = ReportScene(ws)
        scene.earn()
        usage = ws.report_data(scene.service, "2026-Q1").document.usage
        assert (usage.metered, usage.private) == ((), ())
