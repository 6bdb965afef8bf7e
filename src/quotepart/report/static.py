"""The report's static charts (matplotlib, SVG) and its PDF (WeasyPrint).

Why a second chart library: WeasyPrint lays out HTML and CSS but runs no JavaScript,
so the Plotly charts of report.html cannot be drawn into the PDF. Plotly's own static
export (kaleido) drives a Chrome binary of its own, which a fresh machine may not
have; matplotlib draws SVG in-process with nothing but Python. Both libraries draw
from the same document (report.json's) and the same layout (`quotepart.report.layout`), so the PDF
shows the same pictures as the page, without the interactivity.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import textwrap
import warnings
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from quotepart.report.document import ReportDocument
from quotepart.report.layout import (
    KIND_COLOURS,
    KIND_LABELS,
    clipped,
    lineage_graph,
    money_graph,
    sankey,
    stack_columns,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib is imported inside the functions that draw: `import quotepart` must not pay for it.
_RC: dict[Any, Any] = {
    "svg.hashsalt": "quotepart-report",  # fixed element ids: the same report, the same bytes
    "svg.fonttype": "none",  # text as text: the PDF draws it in DejaVu Sans, as the page
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


_WIDTH = 7.4  # inches: an A4 page within its margins, so the PDF shows the fonts at their size


def _svg(figure: Figure) -> str:
    """An <img> holding the figure as an SVG data URI (WeasyPrint draws SVG natively)."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context(_RC):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="chart" alt="" src="data:image/svg+xml;base64,{data}">'


def _figure(width: float, height: float) -> Figure:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _wrap(text: str, width: int = 20) -> str:
    return "\n".join(textwrap.wrap(text, width) or [text])


# Charts are drawn in points (1/72 inch) on a page-wide canvas, so that labels can be given
# the room their text takes: at 6.5 pt, DejaVu Sans averages under 3.9 pt a character.
_POINTS = _WIDTH * 72
_FONT = 6.5
_CHAR = 3.9
_LINE = 8.0
_TITLE = 9
_TALLEST = 560  # points of chart that fit on an A4 page below a section's heading


def _canvas(height: float, title: str) -> tuple[Figure, Any, float]:
    """A figure `height` points tall below its title, and axes in points, y downwards."""
    from matplotlib.figure import Figure

    lines = textwrap.wrap(title, 90) or [title]
    head = 6 + 12 * len(lines)
    figure = Figure(figsize=(_WIDTH, (height + head) / 72))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_xlim(0, _POINTS)
    axes.set_ylim(height, -head)
    axes.text(
        0, -head + 2, "\n".join(lines), ha="left", va="top", fontsize=_TITLE, fontweight="bold"
    )
    return figure, axes, head


def _curve(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    """The control points of a curve leaving (x0, y0) and reaching (x1, y1) level."""
    middle = (x0 + x1) / 2
    return [(x0, y0), (middle, y0), (middle, y1), (x1, y1)]


def lineage_svg(document: ReportDocument) -> str:
    """The value chain from left to right, as on the page: a column per depth, each label
    above its node in a slot of its own (so no two overlap), edges curving from an input
    to what was made of it, reaching it level, under the labels."""
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, PathPatch
    from matplotlib.path import Path

    graph = lineage_graph(document)
    count = len({n.x for n in graph.nodes})
    chars = 22 if count < 2 else max(12, min(26, int((_POINTS - 90) / (count - 1) / _CHAR) - 2))
    side = chars * _CHAR / 2 + 4
    pitch = (_POINTS - 2 * side) / (count - 1) if count > 1 else 0.0
    labels = {n.id: clipped(n.name, chars) for n in graph.nodes}
    marker = 9.0
    stacked = stack_columns(
        graph, {i: _LINE * len(lines) + 3 + marker for i, lines in labels.items()}, gap=6
    )
    x = {n.id: side + pitch * stacked.column[n.id] for n in graph.nodes}
    y = {n.id: stacked.top[n.id] + stacked.size[n.id] - marker / 2 for n in graph.nodes}
    with matplotlib.rc_context(_RC):
        figure, axes, _ = _canvas(
            stacked.height + 24,
            f"The value chain of {document.asset.name}: what it was made from "
            "(arrows: from an input to what was made of it)",
        )
        reach = marker / 2 + 1.5
        for source, target, _ in graph.edges:
            points = _curve(x[source] + reach, y[source], x[target] - reach - 4, y[target])
            codes = [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4]
            axes.add_patch(
                PathPatch(Path(points, codes), fc="none", ec="#9a9a9a", lw=0.9, zorder=1)
            )
            axes.add_patch(
                FancyArrowPatch(
                    (x[target] - reach - 5, y[target]), (x[target] - reach + 0.5, y[target]),
                    arrowstyle="-|>", mutation_scale=6, color="#9a9a9a", lw=0.9, zorder=1,
                )
            )  # fmt: skip
        handles = []
        for kind in KIND_LABELS:
            nodes = [n for n in graph.nodes if n.kind == kind]
            if nodes:
                shape = "s" if kind == "run" else "o"
                axes.scatter(
                    [x[n.id] for n in nodes], [y[n.id] for n in nodes], s=marker**2,
                    marker=shape, color=KIND_COLOURS[kind], zorder=3, linewidths=0,
                )  # fmt: skip
                handles.append(
                    Line2D([], [], marker=shape, ls="none", color=KIND_COLOURS[kind],
                           label=KIND_LABELS[kind])
                )  # fmt: skip
        for n in graph.nodes:
            axes.text(
                x[n.id], y[n.id] - marker / 2 - 2, "\n".join(labels[n.id]), ha="center",
                va="bottom", fontsize=_FONT, linespacing=1.25, zorder=4,
            )  # fmt: skip
        axes.legend(
            handles=handles, loc="lower left", bbox_to_anchor=(0, 0), ncols=len(handles),
            frameon=False, fontsize=_FONT + 0.5, handletextpad=0.2, columnspacing=1.2,
        )  # fmt: skip
        return _svg(figure)


def money_svgs(document: ReportDocument) -> list[str]:
    """One Sankey per currency, as on the page: bands as wide as the amounts they carry,
    from the revenue through the service, models and inputs to the parties."""
    return [_sankey_svg(document, code) for code in sorted(document.money_flow)]


def _sankey_svg(document: ReportDocument, code: str) -> str:
    import matplotlib
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path

    graph = money_graph(document, code)
    node_width = 6.0
    units = len({n.x for n in graph.nodes if n.kind != "party"}) + 1  # the last gap is double
    chars = max(12, min(26, int((_POINTS - node_width) / max(units, 1) / _CHAR) - 3))
    # A page holds about `_TALLEST` points of chart below a section's heading. Where the
    # labels of the fullest column need more, their type shrinks (to 5.5 pt at least),
    # then names take one line rather than two (the table below the chart names everyone
    # in full).
    columns = sankey(graph, {n.id: 0.0 for n in graph.nodes}, gap=0, room=1, least=1).column
    for most in (2, 1):
        names = {n.id: clipped(n.name, chars, most) for n in graph.nodes}
        fullest = max(
            sum(_LINE * (len(names[n.id]) + 1) + 6 for n in graph.nodes if columns[n.id] == c)
            for c in set(columns.values())
        )
        shrink = max(5.5 / _FONT, min(1.0, (_TALLEST - 100) / max(fullest, 1)))
        if fullest * shrink <= _TALLEST - 100:
            break
    # smaller type holds more characters in the same width
    names = {n.id: clipped(n.name, int(chars / shrink), most) for n in graph.nodes}
    font, line = _FONT * shrink, _LINE * shrink
    layout = sankey(
        graph,
        {i: line * (len(lines) + 1) + 3 for i, lines in names.items()},
        gap=3,
        room=min(280.0, max(100.0, _TALLEST - fullest * shrink)),
        least=220,
        plotly=False,
    )
    at = [0.0]
    for gap in layout.gaps:
        at.append(at[-1] + gap)
    span = at[-1] or 1.0
    x = {n.id: (_POINTS - node_width) * at[layout.column[n.id]] / span for n in graph.nodes}
    top = {n.id: layout.centre[n.id] - layout.size[n.id] / 2 for n in graph.nodes}
    last = len(layout.gaps)
    earned = document.totals[code].earned.amount
    with matplotlib.rc_context(_RC):
        figure, axes, _ = _canvas(
            layout.height,
            f"Where the money went: {earned} {code} earned by {document.asset.name} "
            f"in {document.period} (band width: amount in {code})",
        )
        leaving = dict(top)  # where each node's next band leaves, and arrives
        arriving = dict(top)
        out_at: dict[tuple[str, str], float] = {}  # bands leave in their targets' order
        for source, target, amount in sorted(
            graph.edges, key=lambda e: (e[0], layout.centre[e[1]])
        ):
            out_at[(source, target)] = leaving[source]
            leaving[source] += amount * layout.scale
        # ... and arrive in their sources' order, so that no two bands cross at a node
        for source, target, amount in sorted(
            graph.edges, key=lambda e: (e[1], layout.centre[e[0]])
        ):
            width = amount * layout.scale
            x0, x1 = x[source] + node_width, x[target]
            y0, y1 = out_at[(source, target)], arriving[target]
            arriving[target] += width
            upper = _curve(x0, y0, x1, y1)
            lower = _curve(x1, y1 + width, x0, y0 + width)
            codes = [Path.MOVETO, *[Path.CURVE4] * 3, Path.LINETO, *[Path.CURVE4] * 3,
                     Path.CLOSEPOLY]  # fmt: skip
            axes.add_patch(
                PathPatch(
                    Path([*upper, *lower, upper[0]], codes), lw=0,
                    fc=KIND_COLOURS.get(graph.node(source).kind, "#999999"), alpha=0.3,
                )
            )  # fmt: skip
        for n in graph.nodes:
            axes.add_patch(
                Rectangle(
                    (x[n.id], top[n.id]), node_width, max(layout.size[n.id], 0.6),
                    color=KIND_COLOURS.get(n.kind, "#999999"), lw=0, zorder=2,
                )
            )  # fmt: skip
            right = layout.column[n.id] < last
            axes.text(
                x[n.id] + node_width + 2 if right else x[n.id] - 2, layout.centre[n.id],
                "\n".join([*names[n.id], n.detail]), ha="left" if right else "right",
                va="center", fontsize=font, linespacing=1.25, zorder=3,
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6},
            )  # fmt: skip
        return _svg(figure)


def valuation_svgs(document: ReportDocument) -> list[str]:
    import matplotlib

    out = []
    for valuation in document.valuations:
        players = valuation.players
        values = [float(Fraction(p.value)) for p in players]
        errors = [float(Fraction(p.stderr)) if p.stderr else 0.0 for p in players]
        with matplotlib.rc_context(_RC):
            figure = _figure(_WIDTH, 3.2)
            axes = figure.add_subplot()
            axes.bar(
                [_wrap(p.name, 16) for p in players],
                values,
                yerr=errors,
                capsize=5,
                color=[
                    KIND_COLOURS.get(p.kind or "", "#999999") if v >= 0 else "#B22222"
                    for p, v in zip(players, values, strict=True)
                ],
                ecolor="#333333",
            )
            axes.axhline(0, color="#333333", lw=0.8)
            utility = valuation.utility or "the model's score"
            axes.set_ylabel(f"contribution value\n(share of {utility})")
            axes.set_xlabel("input")
            axes.set_title(
                f"What each input of {valuation.model_name} was worth ({valuation.method}, "
                f"{valuation.evaluations} evaluations; bars: ± 1 standard error)",
                loc="left",
                fontsize=9,
                fontweight="bold",
            )
            out.append(_svg(figure))
    return out


def usage_svg(document: ReportDocument) -> str | None:
    import matplotlib

    usage = document.usage
    if not usage.total_units:
        return None
    series = usage.series
    unit, per = usage.unit, usage.per
    labels = [s.start for s in series]
    with matplotlib.rc_context(_RC):
        figure = _figure(_WIDTH, 3.0)
        axes = figure.add_subplot()
        positions = list(range(len(series)))
        axes.bar(positions, [s.units for s in series], color=KIND_COLOURS["service"])
        axes.set_ylabel(f"{unit}s per {per}")
        axes.set_xlabel(per)
        step = max(1, -(-len(labels) // 8))  # at most 8 labels, level: none overprints another
        axes.set_xticks(positions[::step], labels[::step])
        twin = axes.twinx()
        twin.plot(positions, [s.consumers for s in series], color=KIND_COLOURS["model"], marker=".")
        twin.set_ylabel("distinct consumers (pseudonymous)", color=KIND_COLOURS["model"])
        twin.set_ylim(bottom=0)
        axes.set_title(
            f"Usage of {document.asset.name} in {document.period}: "
            f"{usage.total_units} {unit}s by {usage.distinct_consumers} distinct consumers",
            loc="left",
            fontsize=11,
            fontweight="bold",
        )
        return _svg(figure)


def charts(document: ReportDocument) -> dict[str, list[str]]:
    usage = usage_svg(document)
    return {
        "lineage": [lineage_svg(document)],
        "money": money_svgs(document),
        "valuations": valuation_svgs(document),
        "usage": [usage] if usage else [],
    }


# ------------------------------------------------------------------ the PDF


def _weasyprint() -> Any:
    """WeasyPrint, imported when a PDF is asked for: it loads Pango through ctypes/cffi,
    and a machine without Pango must still publish the JSON and HTML."""
    import weasyprint

    return weasyprint


# WeasyPrint (62 to 70 at least), on its first import on a machine without HarfBuzz's subset
# library (Debian: libharfbuzz-subset0), warns that a future version will require it; this
# version embeds fonts through fontTools' subsetter instead. That warning concerns the
# machine, not the caller: under `-W error` (our test suite) it would fail every report, so
# this one warning, matched by its message, category and module, is ignored where WeasyPrint
# is imported. Every other warning goes through, WeasyPrint's included.
_HARFBUZZ_SUBSET_MESSAGE = "HarfBuzz-Subset will be required by future versions of WeasyPrint"
_HARFBUZZ_SUBSET_MODULE = r"weasyprint\.text\.ffi\Z"


def pdf_bytes(page: str) -> tuple[bytes | None, str | None]:
    """The PDF of `page` (HTML), or None and one line saying why it could not be made."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=re.escape(_HARFBUZZ_SUBSET_MESSAGE),
                category=DeprecationWarning,
                module=_HARFBUZZ_SUBSET_MODULE,
            )
            # A WeasyPrint that cannot load Pango prints its installation advice to stdout
            # before raising: stdout is for data (`quotepart report --json`), so it is
            # kept here, and the reason below says what to install.
            with contextlib.redirect_stdout(io.StringIO()):
                weasyprint = _weasyprint()
    except (OSError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, (
            f"WeasyPrint cannot load its system libraries ({reason}); "
            "install Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0) for a PDF"
        )
    # Without HarfBuzz's subset library, WeasyPrint subsets fonts with fontTools, which
    # stamps each subset with the time of writing: the same report would give another PDF,
    # and so another report.published entry. Embedding the fonts whole keeps the PDF a
    # function of the page (larger, and only on such machines).
    from weasyprint.text import ffi as weasyprint_ffi

    document = weasyprint.HTML(string=page, base_url=None)
    data = document.write_pdf(full_fonts=weasyprint_ffi.harfbuzz_subset is None)
    assert isinstance(data, bytes)
    return data, None


__all__ = ["charts", "pdf_bytes"]
