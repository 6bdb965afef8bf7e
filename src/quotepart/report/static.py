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
import functools
import io
import re
import textwrap
import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from quotepart.report.document import ReportDocument
from quotepart.report.layout import KIND_COLOURS, KIND_LABELS, Graph, lineage_graph, money_graph

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib is imported inside the functions that draw: `import quotepart` must not pay for it.
_RC: dict[Any, Any] = {
    "svg.hashsalt": "quotepart-report",  # fixed element ids: the same report, the same bytes
    "svg.fonttype": "path",  # text as outlines: the PDF needs no matplotlib font
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


def _draw_graph(
    graph: Graph, title: str, *, label: Callable[[Any], str], widths: Callable[[int], float]
) -> str:
    import matplotlib

    tallest = max(sum(1 for m in graph.nodes if m.x == n.x) for n in graph.nodes)
    layers = sorted({n.x for n in graph.nodes})
    step = layers[1] - layers[0] if len(layers) > 1 else 1.0
    with matplotlib.rc_context(_RC):
        figure = _figure(_WIDTH, 1.3 + 0.8 * tallest)
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.set_xlim(-0.13, 1.13)
        axes.set_ylim(-0.08, 1.08)
        axes.set_title(title, loc="left", fontsize=9, fontweight="bold")
        for source, target, amount in graph.edges:
            a, b = graph.node(source), graph.node(target)
            # An edge that skips layers bends, so that it does not run through the nodes
            # drawn between its ends.
            bend = 0.0 if b.x - a.x <= step * 1.01 else (0.25 if b.y >= a.y else -0.25)
            axes.annotate(
                "",
                xy=(b.x, b.y),
                xytext=(a.x, a.y),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": KIND_COLOURS.get(a.kind, "#8a8a8a"),
                    "alpha": 0.45,
                    "lw": widths(amount),
                    "shrinkA": 8,
                    "shrinkB": 8,
                    "connectionstyle": f"arc3,rad={bend}",
                },
            )
        for kind in KIND_LABELS:
            nodes = [n for n in graph.nodes if n.kind == kind]
            if nodes:
                axes.scatter(
                    [n.x for n in nodes],
                    [n.y for n in nodes],
                    s=110,
                    marker="s" if kind == "run" else "o",
                    color=KIND_COLOURS[kind],
                    label=KIND_LABELS[kind],
                    zorder=3,
                )
        for n in graph.nodes:
            axes.annotate(
                label(n),
                (n.x, n.y),
                xytext=(0, 10),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
        kinds = len({n.kind for n in graph.nodes})
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=kinds, frameon=False)
        return _svg(figure)


def lineage_svg(document: ReportDocument) -> str:
    return _draw_graph(
        lineage_graph(document),
        f"The value chain of {document.asset.name}: what it was made from "
        "(arrows: from an input to what was made of it)",
        label=lambda n: _wrap(n.name),
        widths=lambda _: 1.2,
    )


def money_svgs(document: ReportDocument) -> list[str]:
    out = []
    for code in sorted(document.money_flow):
        graph = money_graph(document, code)
        largest = max((amount for _, _, amount in graph.edges), default=1) or 1
        earned = document.totals[code].earned.amount
        out.append(
            _draw_graph(
                graph,
                f"Where the money went: {earned} {code} earned by {document.asset.name} "
                f"in {document.period} (line width: amount in {code})",
                label=lambda n: f"{_wrap(n.name)}\n{n.detail}",
                widths=functools.partial(_width, largest=largest),
            )
        )
    return out


def _width(amount: int, *, largest: int) -> float:
    """Line width in points, in proportion to the amount."""
    return 0.8 + 11 * amount / largest


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
        step = max(1, len(labels) // 12)
        axes.set_xticks(positions[::step], labels[::step], rotation=30, ha="right")
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
            weasyprint = _weasyprint()
    except (OSError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, (
            f"WeasyPrint cannot load its system libraries ({reason}); "
            "install Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0) for a PDF"
        )
    document = weasyprint.HTML(string=page, base_url=None)
    data = document.write_pdf()
    assert isinstance(data, bytes)
    return data, None


__all__ = ["charts", "pdf_bytes"]
