"""report.html in a real browser (Debian's headless chromium, driven by Playwright), offline.

It must draw every chart from what the file itself holds: no request may leave the page
(no CDN), no script may fail. Under CI=true this test never skips.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ON_CI
from tests.report.conftest import Published

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# What each chart drew, read from Plotly's own SVG (a title wrapped on lines: its lines
# joined by spaces).
_DRAWN = """
() => {
  const count = (root, selector) => root ? root.querySelectorAll(selector).length : 0;
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const byId = (id) => document.getElementById(id);
  return {
    plots: plots.map((p) => ({id: p.id, svg: count(p, '.main-svg'),
                              title: [...p.querySelectorAll('.gtitle .line')]
                                .map((line) => line.textContent).join(' ')
                                || (p.querySelector('.gtitle') || {}).textContent || ''})),
    lineageNodes: count(byId('chart-lineage'), '.scatterlayer .trace .point'),
    lineageArrows: count(byId('chart-lineage'), '.annotation-arrow-g'),
    sankeyNodes: count(byId('chart-money-0'), '.sankey-node'),
    sankeyLinks: count(byId('chart-money-0'), '.sankey-link'),
    valuationBars: count(byId('chart-valuation-0'), '.bars .point path'),
    usageBars: count(byId('chart-usage'), '.bars .point path'),
    usageLine: count(byId('chart-usage'), '.scatterlayer .trace .js-line'),
  };
}
"""


def _browser_or_skip() -> None:
    reason = None
    if importlib.util.find_spec("playwright") is None:
        reason = "playwright is not installed (pip install -e '.[test]')"
    elif not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if reason is not None:
        if ON_CI:
            pytest.fail(f"CI=true but {reason}: the browser test must run on CI")
        pytest.skip(reason)


def test_report_html_draws_every_chart_offline(published: Published, tmp_path: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import Route, sync_playwright

    document = json.loads(published.files.json_path.read_text())
    requests: list[str] = []
    blocked: list[str] = []
    errors: list[str] = []

    def route(request_route: Route) -> None:
        url = request_route.request.url
        if url.startswith("file://"):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    def console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", route)
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", console)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(published.files.html_path.resolve().as_uri())
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')]"
                ".every((p) => p.querySelector('.main-svg'))",
                timeout=30_000,
            )
            drawn = page.evaluate(_DRAWN)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            title = page.title()
        finally:
            browser.close()

    assert errors == []
    assert blocked == []
    assert [url for url in requests if not url.startswith("file://")] == []
    assert (tmp_path / "report.png").stat().st_size > 50_000
    assert title == "Fair value share report: Triage API, 2026-Q1"
    ids = [plot["id"] for plot in drawn["plots"]]
    assert ids == ["chart-lineage", "chart-money-0", "chart-valuation-0", "chart-usage"]
    assert all(plot["svg"] >= 1 for plot in drawn["plots"])
    titles = " | ".join(plot["title"] for plot in drawn["plots"])
    assert "The value chain of Triage API" in titles
    assert "Where the money went: 1698.25 EUR earned by Triage API" in titles
    assert "What each input of Triage model v2 was worth" in titles
    assert "Usage of Triage API in 2026-Q1" in titles
    assert drawn["lineageNodes"] == len(document["lineage"]["nodes"])
    assert drawn["lineageArrows"] == len(document["lineage"]["edges"])
    flow = document["money_flow"]["EUR"]
    assert drawn["sankeyLinks"] == len(flow["assets"]) + len(flow["parties"])
    parties = {p["party"] for p in flow["parties"]}
    assets = {e["to"] for e in flow["assets"]}
    assert drawn["sankeyNodes"] == 1 + len(assets) + len(parties)  # + the revenue
    assert drawn["valuationBars"] == len(document["valuations"][0]["players"])
    assert drawn["usageBars"] == len(document["usage"]["series"])
    assert drawn["usageLine"] == 1
