"""Differentially private usage statistics: OpenDP releases, their ε, the budget rule.

OpenDP's noise cannot be seeded (on purpose), so these tests check what follows from
the mechanism: every released value is near the exact one within a bound that fails
with probability below 1e-6, the mean error over many releases is near zero, and the
recorded ε and noise scale follow from the documented sensitivity.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from quotepart.cli import cli
from quotepart.errors import InputError, NotFoundError, RightsError
from quotepart.log.kinds import PrivacyReleased
from quotepart.metering.privacy import (
    DEFAULT_COUNT_BOUND,
    _calibrate,
    _count_measurement,
    _epsilon_text,
    _sum_measurement,
)
from quotepart.workspace import Workspace, open_workspace
from tests.metering.test_ingest import Scene


def march(n: int, consumer: str, day: int, tokens: Any = 10) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ev-{n}",
        "source": "//api.example/eu",
        "type": "llm.completion",
        "time": f"2026-03-{day:02d}T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "subject": consumer,
        "data": {"tokens": tokens, "model": "large"},
    }


def tail_bound(scale: float, cells: int, failure: float = 1e-6) -> float:
    """|Laplace(scale)| stays below this on all `cells` cells with probability 1 - failure."""
    return scale * math.log(cells / failure)


def released(ws: Workspace, index: int) -> PrivacyReleased:
    return ws.entry_at(index).body_as(PrivacyReleased)


@pytest.fixture
def scene(ws: Workspace) -> Scene:
    scene = Scene(ws)
    # 40 consumers; consumer k uses the service on days 1..(k % 5 + 1), k % 3 + 1 calls a day
    events, n = [], 0
    for k in range(40):
        for day in range(1, k % 5 + 2):
            for _ in range(k % 3 + 1):
                events.append(march(n, f"c-{k}", day, tokens=100 * (k % 4 + 1)))
                n += 1
    ws.meter(scene.service).ingest(events)
    return scene


def exact_daily_calls() -> list[int]:
    calls = [0] * 31
    for k in range(40):
        for day in range(1, k % 5 + 2):
            calls[day - 1] += min(k % 3 + 1, DEFAULT_COUNT_BOUND)
    return calls


def test_a_daily_count_is_released_with_opendp_noise_and_its_epsilon(
    ws: Workspace, scene: Scene
) -> None:
    ws.set_privacy_budget(scene.service, "2")
    size = ws.store.tree_size()
    result = ws.release_usage_statistics(
        scene.service, "calls", "2026-03", query="daily-count", epsilon="1", bound=3
    )
    assert ws.store.tree_size() > size
    body = released(ws, result.leaf_index)
    assert body == result.body
    assert (body.meter, str(body.period), body.query) == ("calls", "2026-03", "daily-count")
    # one consumer adds at most 3 events on each of 31 days: d_in = 93; scale = d_in / ε
    assert result.d_in == "93"
    assert result.scale == pytest.approx(93, rel=1e-6)
    assert Fraction(body.epsilon) <= 1
    assert float(body.epsilon) == pytest.approx(1, rel=1e-9)
    assert body.mechanism == "opendp:discrete-laplace;bound=3;d_in=93;scale=93"
    assert [label for label, _ in body.values][:2] == ["2026-03-01", "2026-03-02"]
    assert len(body.values) == 31
    errors = [
        int(v) - exact for (_, v), exact in zip(body.values, exact_daily_calls(), strict=True)
    ]
    assert max(abs(e) for e in errors) < tail_bound(93, 31)
    ws.verify()


def test_a_day_bound_keeps_each_consumers_earliest_days_and_lowers_the_sensitivity(
    ws: Workspace, scene: Scene
) -> None:
    ws.set_privacy_budget(scene.service, "10")
    result = ws.release_usage_statistics(
        scene.service, "calls", "2026-03", query="daily-count", epsilon=5, bound=3, days=2
    )
    assert (result.d_in, result.days) == ("6", 2)  # 3 events on each of 2 days
    assert result.body.mechanism == "opendp:discrete-laplace;bound=3;days=2;d_in=6;scale=1.2"
    exact = [0] * 31
    for k in range(40):
        for day in range(1, min(k % 5 + 1, 2) + 1):
            exact[day - 1] += k % 3 + 1
    assert exact[2:] == [0] * 29  # the third day onwards is nobody's first two
    for (_, value), want in zip(result.body.values, exact, strict=True):
        assert abs(int(value) - want) < tail_bound(result.scale, 31)


def test_daily_sums_clip_each_consumers_day_and_stay_near_the_exact_sums(
    ws: Workspace, scene: Scene
) -> None:
    ws.set_privacy_budget(scene.service, "100")
    result = ws.release_usage_statistics(
        scene.service, "tokens", "2026-03", query="daily-sum", epsilon="60", bound="500"
    )
    body = result.body
    assert body.mechanism.startswith("opendp:laplace;bound=500;d_in=15500;")
    exact = [Decimal(0)] * 31
    for k in range(40):
        for day in range(1, k % 5 + 2):
            exact[day - 1] += min(Decimal(100 * (k % 4 + 1) * (k % 3 + 1)), Decimal(500))
    scale = result.scale
    assert scale == pytest.approx(15500 / 60, rel=1e-6)
    for (_, value), want in zip(body.values, exact, strict=True):
        assert abs(Decimal(value) - want) < Decimal(tail_bound(scale, 31))


def test_the_consumer_histogram_counts_consumers_per_public_bucket(
    ws: Workspace, scene: Scene
) -> None:
    ws.set_privacy_budget(scene.service, "50")
    result = ws.release_usage_statistics(
        scene.service, "calls", "2026-03", query="consumer-histogram", epsilon="20",
        edges=[2, 5, 10],
    )  # fmt: skip
    body = result.body
    assert [label for label, _ in body.values] == ["[0, 2)", "[2, 5)", "[5, 10)", "[10, ∞)"]
    assert result.d_in == "1"
    exact = [0, 0, 0, 0]
    for k in range(40):
        calls = (k % 5 + 1) * (k % 3 + 1)
        exact[sum(calls >= edge for edge in (2, 5, 10))] += 1
    for (_, value), want in zip(body.values, exact, strict=True):
        assert abs(int(value) - want) < tail_bound(result.scale, 4)


def test_the_noise_is_unbiased_and_its_scale_is_the_calibrated_one() -> None:
    """On a large synthetic table, OpenDP's calibrated measurements: mean error near 0,
    mean absolute error near the scale (Laplace: E|X| = scale)."""
    days = 30
    make = _count_measurement(list(range(days)))
    measurement = make(40.0)
    assert measurement.map(40 * days) == pytest.approx(days, rel=1e-9)
    rows = np.repeat(np.arange(days, dtype=np.int64), 10_000)
    errors = np.concatenate([np.asarray(measurement(rows)) - 10_000 for _ in range(200)])
    assert abs(errors.mean()) < 4 * 40 * math.sqrt(2) / math.sqrt(errors.size)
    assert errors.__abs__().mean() == pytest.approx(40, rel=0.05)
    sums = _sum_measurement(days)(25.0)
    noisy = np.concatenate([np.asarray(sums(np.full(days, 1e6))) - 1e6 for _ in range(200)])
    assert abs(noisy.mean()) < 4 * 25 * math.sqrt(2) / math.sqrt(noisy.size)
    assert np.abs(noisy).mean() == pytest.approx(25, rel=0.05)


def test_repeated_releases_through_the_workspace_are_unbiased_at_the_recorded_scale(
    ws: Workspace, scene: Scene
) -> None:
    ws.set_privacy_budget(scene.service, "1000")
    exact = np.array(exact_daily_calls())
    errors = []
    for _ in range(40):
        result = ws.release_usage_statistics(
            scene.service, "calls", "2026-03", query="daily-count", epsilon=1, bound=3
        )
        assert result.scale == pytest.approx(93, rel=1e-6)
        errors.append(np.array([int(v) for _, v in result.body.values]) - exact)
    pooled = np.concatenate(errors)
    assert abs(pooled.mean()) < 4 * 93 * math.sqrt(2) / math.sqrt(pooled.size)
    assert np.abs(pooled).mean() == pytest.approx(93, rel=0.15)


@settings(max_examples=40, deadline=None)
@given(
    epsilon=st.decimals(min_value="0.01", max_value="20", places=3),
    d_in=st.integers(1, 10_000),
)
def test_opendp_calibrates_the_scale_and_the_recorded_epsilon_is_within_the_ask(
    epsilon: Decimal, d_in: int
) -> None:
    measurement, scale = _calibrate(_count_measurement(list(range(3))), d_in, epsilon)
    spent = Decimal(_epsilon_text(measurement.map(d_in)))
    assert spent <= epsilon
    assert spent >= epsilon * Decimal("0.999999")
    assert scale == pytest.approx(d_in / float(epsilon), rel=1e-5)


def test_releases_within_the_budget_pass_and_one_beyond_it_is_refused(
    ws: Workspace, scene: Scene
) -> None:
    ws.set_privacy_budget(scene.service, "1")
    ws.release_usage_statistics(
        scene.service, "calls", "2026-03", query="daily-count", epsilon="0.6"
    )
    ws.release_usage_statistics(
        scene.service, "tokens", "2026-03", query="consumer-histogram", epsilon="0.4"
    )
    size = ws.store.tree_size()
    with pytest.raises(RightsError) as caught:
        ws.release_usage_statistics(
            scene.service, "calls", "2026-03", query="daily-count", epsilon="0.01"
        )
    assert caught.value.rule == "privacy-budget"
    assert caught.value.hint is not None
    assert ws.store.tree_size() == size
    # the budget is per month of usage: April still has all of it
    ws.release_usage_statistics(scene.service, "calls", "2026-04", query="daily-count", epsilon="1")
    ws.verify()


def test_without_a_budget_nothing_is_released(ws: Workspace, scene: Scene) -> None:
    size = ws.store.tree_size()
    with pytest.raises(RightsError, match="no privacy budget") as caught:
        ws.release_usage_statistics(
            scene.service, "calls", "2026-03", query="daily-count", epsilon=1
        )
    assert caught.value.rule == "privacy-budget"
    assert ws.store.tree_size() == size


def test_a_party_without_the_metering_right_can_neither_budget_nor_release(
    ws: Workspace, scene: Scene
) -> None:
    size = ws.store.tree_size()
    with pytest.raises(RightsError, match="metering right"):
        ws.set_privacy_budget(scene.service, "1", by=scene.other)
    ws.set_privacy_budget(scene.service, "1")
    size = ws.store.tree_size()
    with pytest.raises(RightsError, match="metering right"):
        ws.release_usage_statistics(
            scene.service, "calls", "2026-03", query="daily-count", epsilon=1, by=scene.other
        )
    assert ws.store.tree_size() == size
    ws.grant_right(scene.other, "metering", scene.service, by=scene.operator)
    ws.release_usage_statistics(
        scene.service, "calls", "2026-03", query="daily-count", epsilon=1, by=scene.other
    )


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"epsilon": "0"}, InputError, "positive number"),
        ({"epsilon": "-1"}, InputError, "positive number"),
        ({"epsilon": "lots"}, InputError, "positive number"),
        ({"epsilon": float("nan")}, InputError, "positive number"),
        ({"query": "consumer-list"}, InputError, "unknown private query"),
        ({"meter": "calls", "query": "daily-sum", "bound": 5}, InputError, "count meter"),
        ({"meter": "tokens", "query": "daily-sum"}, InputError, "needs a bound"),
        ({"bound": "0"}, InputError, "positive whole number"),
        ({"bound": "1.5"}, InputError, "positive whole number"),
        ({"period": "2026-Q1"}, InputError, "one month"),
        ({"period": "March"}, InputError, "not a period"),
        ({"meter": "seconds"}, NotFoundError, "no meter"),
        ({"query": "consumer-histogram", "edges": [10, 5]}, InputError, "increasing"),
        ({"query": "consumer-histogram", "bound": 3}, InputError, "no bound"),
        ({"query": "consumer-histogram", "days": 3}, InputError, "no bound or days"),
        ({"days": 0}, InputError, "days must be a positive whole number"),
        ({"days": 32}, InputError, "at most 31"),
        ({"bound": "1e30"}, InputError, "at most 1,000,000"),
        ({"epsilon": "1e-9"}, InputError, "below 0.000001"),
        (
            {"meter": "tokens", "query": "daily-sum", "bound": "1e15", "epsilon": "0.000001"},
            InputError,
            "OpenDP cannot release",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_hint_and_write_nothing(
    ws: Workspace, scene: Scene, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    ws.set_privacy_budget(scene.service, "5")
    size = ws.store.tree_size()
    call: dict[str, Any] = {
        "meter": "calls", "period": "2026-03", "query": "daily-count", "epsilon": "1", **options,
    }  # fmt: skip
    meter, period = call.pop("meter"), call.pop("period")
    with pytest.raises(error, match=match) as caught:
        ws.release_usage_statistics(scene.service, meter, period, **call)
    assert getattr(caught.value, "hint", None)
    assert ws.store.tree_size() == size


@pytest.mark.parametrize("epsilon", ["0", "-0.5", "x", ""])
def test_a_budget_must_be_a_positive_number(ws: Workspace, epsilon: str) -> None:
    scene = Scene(ws)
    size = ws.store.tree_size()
    with pytest.raises(InputError, match="positive number"):
        ws.set_privacy_budget(scene.service, epsilon)
    assert ws.store.tree_size() == size


def test_a_month_without_usage_releases_noisy_zeros(ws: Workspace, scene: Scene) -> None:
    ws.set_privacy_budget(scene.service, "1")
    result = ws.release_usage_statistics(
        scene.service, "calls", "2026-02", query="daily-count", epsilon=1
    )
    assert [label for label, _ in result.body.values][-1] == "2026-02-28"
    assert all(abs(int(v)) < tail_bound(result.scale, 28) for _, v in result.body.values)


def test_the_cli_sets_a_budget_releases_and_refuses_beyond_it(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    with open_workspace(folder) as ws:
        scene = Scene(ws)
        ws.meter(scene.service).ingest([march(n, f"c-{n % 7}", 1 + n % 20) for n in range(60)])

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--workspace", str(folder)])

    budget = run("usage", "budget", "LLM API", "1")
    assert budget.exit_code == 0, budget.output
    assert "ε = 1 per month" in budget.stdout
    shown = run(
        "usage", "release", "LLM API", "calls", "--period", "2026-03", "--query",
        "daily-count", "--epsilon", "0.75", "--json",
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert (data["query"], data["epsilon"], len(data["values"])) == ("daily-count", "0.75", 31)
    assert ";days=" not in data["mechanism"]
    text = run(
        "usage", "release", "LLM API", "tokens", "--period", "2026-03", "--query",
        "consumer-histogram", "--epsilon", "0.15", "--edges", "100,1000",
    )  # fmt: skip
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[1].startswith("[0, 100)\t")
    capped = run(
        "usage", "release", "LLM API", "tokens", "--period", "2026-03", "--query",
        "daily-sum", "--epsilon", "0.1", "--bound", "50", "--days", "3", "--json",
    )  # fmt: skip
    assert capped.exit_code == 0, capped.output
    assert ";bound=50;days=3;d_in=150;" in json.loads(capped.stdout)["mechanism"]
    refused = run(
        "usage", "release", "LLM API", "calls", "--period", "2026-03", "--query",
        "daily-count", "--epsilon", "0.1",
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "Error:" in refused.stderr
    assert "Hint:" in refused.stderr
    assert "budget" in refused.stderr
    bad = run("usage", "budget", "LLM API", "0")
    assert bad.exit_code == 2
    assert "positive number" in bad.stderr
