"""The charts' layout, looked at as a reader does: in a browser at desktop and phone widths,
and in the PDF, for the report scene and for a wide value chain of 24+ parties.

No two pieces of text may overlap (in the page, the text Plotly draws in each chart's
SVG; in the PDF, every word pdfplumber finds, the charts' words included: matplotlib
writes its SVG text as text), no chart text may stick out of its chart, and no PDF page
may end with a heading whose section starts on the next.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from quotepart.report import ReportFiles
from quotepart.workspace import init_workspace
from tests.conftest import ON_CI, FakeClock
from tests.report.conftest import Published
from tests.report.test_browser import CHROMIUM, CHROMIUM_ARGS, _browser_or_skip
from tests.report.wide_scene import WideScene

# Every pair of text boxes that overlap (by more than a pixel), and every text box that
# sticks out of its chart, in each Plotly chart of the page.
_CLASHES = """
() => {
  const found = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const frame = plot.getBoundingClientRect();
    const boxes = [...plot.querySelectorAll('svg text')]
      .filter((t) => t.textContent.trim() && t.getBBox().width > 0)
      .map((t) => ({text: t.textContent, box: t.getBoundingClientRect()}));
    for (const [i, a] of boxes.entries()) {
      if (a.box.left < frame.left - 1 || a.box.right > frame.right + 1) {
        found.push(`${plot.id}: "${a.text}" sticks out of the chart`);
      }
      for (const b of boxes.slice(i + 1)) {
        if (a.box.left < b.box.right - 1 && b.box.left < a.box.right - 1 &&
            a.box.top < b.box.bottom - 1 && b.box.top < a.box.bottom - 1) {
          found.push(`${plot.id}: "${a.text}" overlaps "${b.text}"`);
        }
      }
    }
  }
  return found;
}
"""


@dataclass
class Drawn:
    name: str
    files: ReportFiles
    parties: int


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drawn]:
    folder = tmp_path_factory.mktemp("wide")
    with init_workspace(folder / "ws", clock=FakeClock()) as ws:
        scene = WideScene(ws)
        scene.earn()
        files = ws.publish_report(scene.service, "2026-Q1", folder / "out")
        yield Drawn("wide", files, len(scene.parties))


@pytest.fixture(params=["scene", "wide"])
def drawn(request: pytest.FixtureRequest, published: Published) -> Drawn:
    if request.param == "scene":
        return Drawn("scene", published.files, 8)
    result: Drawn = request.getfixturevalue("wide")
    return result


def test_the_wide_scene_has_more_than_twenty_parties(wide: Drawn) -> None:
    assert wide.parties > 20


@pytest.mark.parametrize("width", [1280, 420])
def test_no_two_chart_labels_overlap_in_the_browser(
    drawn: Drawn, width: int, tmp_path: Path
) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(drawn.files.html_path.resolve().as_uri())
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')]"
                ".every((p) => p.querySelector('.main-svg'))",
                timeout=30_000,
            )
            clashes = page.evaluate(_CLASHES)
            charts = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
            page.screenshot(path=str(tmp_path / f"{drawn.name}-{width}.png"), full_page=True)
        finally:
            browser.close()
    assert charts >= 2  # the lineage and the money flow at least
    assert clashes == []


def _overlaps(words: Sequence[dict[str, Any]], slack: float = 0.5) -> list[str]:
    """Each pair of words whose boxes overlap by more than `slack` points both ways."""
    found = []
    ordered = sorted(words, key=lambda w: float(w["x0"]))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if float(b["x0"]) >= float(a["x1"]) - slack:
                break
            if (
                float(a["top"]) < float(b["bottom"]) - slack
                and float(b["top"]) < float(a["bottom"]) - slack
            ):
                found.append(f"{a['text']!r} overlaps {b['text']!r}")
    return found


def _is_heading(word: dict[str, Any]) -> bool:
    """h1-h3 in print: bold and at least 10 pt (body text is 7.5 pt, chart titles 9 pt)."""
    return float(word["size"]) >= 10 and "bold" in str(word["fontname"]).lower()


def test_no_two_words_overlap_and_no_page_ends_with_a_heading_in_the_pdf(
    drawn: Drawn,
) -> None:
    pdfplumber = pytest.importorskip("pdfplumber")
    if drawn.files.pdf_path is None:
        if ON_CI:
            pytest.fail(f"CI=true but no PDF: {drawn.files.pdf_skipped}")
        pytest.skip(f"WeasyPrint cannot load here: {drawn.files.pdf_skipped}")
    problems = []
    with pdfplumber.open(drawn.files.pdf_path) as pdf:
        assert len(pdf.pages) >= 3
        chart_words = 0
        for number, page in enumerate(pdf.pages, start=1):
            words = page.extract_words(extra_attrs=["size", "fontname"])
            upright = [w for w in words if w["upright"]]  # rotated tick labels aside
            problems += [f"page {number}: {clash}" for clash in _overlaps(upright)]
            if number < len(pdf.pages):
                lowest = max(float(w["bottom"]) for w in words)
                last_line = [w for w in words if float(w["bottom"]) > lowest - 2]
                if any(_is_heading(w) for w in last_line):
                    text = " ".join(w["text"] for w in last_line)
                    problems.append(f"page {number} ends with a heading: {text}")
            chart_words += sum(1 for w in words if w["text"] == "EUR")
    assert problems == []
    assert chart_words > 10  # the charts' own words were read too
