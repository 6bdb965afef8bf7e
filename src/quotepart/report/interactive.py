"""The report's interactive charts (Plotly), for report.html.

Plotly's own JavaScript is inlined into the page (`plotly.offline.get_plotlyjs()`), so
the page draws its charts with no network at all: a report is read on machines that
may be offline, and a page that fetched a script from a CDN could change after
publication while its digest in the log could not.

Every chart is drawn from report.json alone; amounts are shown in major units with
the currency in titles and hover text, and things are named, never shown as ids.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from quotepart.money import currency as find_currency
from quotepart.money import format_amount
from quotepart.report.document import ReportDocument
from quotepart.report.layout import (
    KIND_COLOURS,
    KIND_LABELS,
    Graph,
    clipped,
    lineage_graph,
    money_graph,
    sankey,
    stack_columns,
)
from quotepart.report.words import value_in_words

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Plotly is imported inside the functions that draw: `import quotepart` must not pay for it.
_CONFIG = {"displaylogo": False, "responsive": True}
_FONT = {"family": "DejaVu Sans, Arial, sans-serif", "size": 13}
_NARROWEST = 640  # pixels: narrower, a chart scrolls sideways rather than squeeze its labels


def plotly_script() -> str:
    """Plotly's JavaScript, to be inlined once in the page's head."""
    import plotly.offline

    return str(plotly.offline.get_plotlyjs())


def _html(figure: go.Figure, div_id: str, height: int, *, min_width: int = _NARROWEST) -> str:
    """A chart's <div> and the script that draws it (a fixed id, so the page is reproducible).

    The chart is never drawn narrower than `min_width` pixels: on a phone its figure
    scrolls sideways instead, so that its labels keep the room they were placed in."""
    figure.update_layout(height=height, font=_FONT, template="plotly_white")
    chart = str(
        figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            default_height=f"{height}px",
            config=_CONFIG,
        )
    )
    return f'<div class="chart-frame" style="min-width: {min_width}px">{chart}</div>'


def _title(text: str, width: int = 40) -> tuple[dict[str, Any], int]:
    """A title wrapped at `width` characters, so that it fits a phone's screen (Plotly does
    not wrap titles: a long one is cut at the chart's edge), and the top margin it needs."""
    lines = textwrap.wrap(text, width) or [text]
    title = {"text": "<br>".join(lines), "x": 0.01, "xanchor": "left", "font": {"size": 15}}
    return title, 30 + 19 * len(lines)


def _wrap(text: str, width: int = 18) -> str:
    return "<br>".join(textwrap.wrap(text, width) or [text])


# The lineage, in pixels: columns `_PITCH` apart, labels wrapped to fit between them.
_PITCH = 170
_SIDE = 85  # room left of the first column and right of the last, for half a label
_LABEL_CHARS = 20  # at 11 px, about 135 px: narrower than the pitch
_LINE = 15
_MARKER = 22
_GAP = 16


def lineage_chart(document: ReportDocument) -> str:
    """The value chain as a layered network, read from left to right: a column per depth,
    arrows from an input to what was made of it, each label above its node and wrapped
    (cut with "…" past three lines: the full name is in the hover text)."""
    import plotly.graph_objects as go

    graph = lineage_graph(document)
    labels = {n.id: clipped(n.name, _LABEL_CHARS) for n in graph.nodes}
    stacked = stack_columns(
        graph, {i: _LINE * len(lines) + 6 + _MARKER for i, lines in labels.items()}, gap=_GAP
    )
    x = {n.id: _SIDE + _PITCH * stacked.column[n.id] for n in graph.nodes}
    y = {n.id: stacked.top[n.id] + stacked.size[n.id] - _MARKER / 2 for n in graph.nodes}
    figure = go.Figure()
    _draw_edges(figure, graph, x, y)
    for kind in KIND_LABELS:
        nodes = [n for n in graph.nodes if n.kind == kind]
        if not nodes:
            continue
        figure.add_trace(
            go.Scatter(
                x=[x[n.id] for n in nodes],
                y=[y[n.id] for n in nodes],
                mode="markers",
                name=KIND_LABELS[kind],
                text=[n.name for n in nodes],
                customdata=[n.detail for n in nodes],
                hovertemplate="<b>%{text}</b><br>%{customdata}<extra></extra>",
                marker={
                    "size": _MARKER,
                    "color": KIND_COLOURS[kind],
                    "symbol": "square" if kind == "run" else "circle",
                    "line": {"width": 1, "color": "#ffffff"},
                },
            )
        )
    for n in graph.nodes:  # each label above its node, in its own slot
        figure.add_annotation(
            x=x[n.id], y=y[n.id] - _MARKER / 2 - 3, text="<br>".join(labels[n.id]),
            showarrow=False, xanchor="center", yanchor="bottom", hovertext=n.name,
            font={"size": 11, "color": "#222222"},
        )  # fmt: skip
    width = 2 * _SIDE + _PITCH * (stacked.columns - 1)
    title, top = _title(f"The value chain of {document.asset.name}: what it was made from")
    figure.update_layout(
        title=title,
        xaxis={"visible": False, "range": [0, width], "fixedrange": True},
        yaxis={"visible": False, "range": [stacked.height + 4, -4], "fixedrange": True},
        legend={"title": {"text": "kind"}, "orientation": "h", "y": 0, "yanchor": "top"},
        margin={"l": 20, "r": 20, "t": top, "b": 70},
        hovermode="closest",
    )
    return _html(figure, "chart-lineage", int(stacked.height) + 8 + top + 70, min_width=width + 40)


def _draw_edges(
    figure: go.Figure, graph: Graph, x: Mapping[str, float], y: Mapping[str, float]
) -> None:
    """Each edge as a curve that leaves its source and reaches its target level (so it
    passes under the labels, which sit above the nodes), with an arrowhead at the end."""
    import plotly.graph_objects as go

    xs: list[float | None] = []
    ys: list[float | None] = []
    reach = _MARKER / 2 + 2
    for source, target, _ in graph.edges:
        x0, y0, x1, y1 = x[source] + reach, y[source], x[target] - reach - 8, y[target]
        middle = (x0 + x1) / 2
        for step in range(25):
            t = step / 24
            a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
            xs.append(a * x0 + b * middle + c * middle + d * x1)
            ys.append(a * y0 + b * y0 + c * y1 + d * y1)
        xs.append(None)
        ys.append(None)
    figure.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="lines", line={"color": "#9a9a9a", "width": 1.4},
            hoverinfo="skip", showlegend=False,
        )
    )  # fmt: skip
    for _, target, _ in graph.edges:
        figure.add_annotation(
            x=x[target], y=y[target], ax=x[target] - reach - 10, ay=y[target],
            xref="x", yref="y", axref="x", ayref="y",
            showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=1.4, arrowcolor="#9a9a9a",
            standoff=_MARKER / 2 + 1, text="",
        )  # fmt: skip


def _tint(kind: str) -> str:
    """A link's colour: its source node's, seen through."""
    colour = KIND_COLOURS.get(kind, "#999999").lstrip("#")
    red, green, blue = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, 0.3)"


# The Sankey, in pixels: a gap between columns is `_SANKEY_PITCH` wide (the last twice:
# the labels of its two columns face each other there), labels wrapped to fit one.
_SANKEY_PITCH = 170
_SANKEY_CHARS = 20
_SANKEY_LINE = 14


def money_charts(document: ReportDocument) -> list[str]:
    """One Sankey per currency: revenue -> service -> models -> assets -> parties, its
    columns spread over the whole height, labels beside their nodes without overlap."""
    import plotly.graph_objects as go

    charts = []
    for number, code in enumerate(sorted(document.money_flow)):
        graph = money_graph(document, code)
        index = {n.id: i for i, n in enumerate(graph.nodes)}
        scale = 10 ** find_currency(code).minor_units
        earned = document.totals[code].earned.amount
        names = {n.id: clipped(n.name, _SANKEY_CHARS, 2) for n in graph.nodes}
        layout = sankey(
            graph,
            {i: _SANKEY_LINE * (len(lines) + 1) + 6 for i, lines in names.items()},
            gap=8,
            room=320,
            least=360,
        )
        span = sum(layout.gaps) or 1.0
        at = [0.0]
        for gap in layout.gaps:
            at.append(at[-1] + gap)
        title, top = _title(
            f"Where the money went: {earned} {code} earned by "
            f"{document.asset.name} in {document.period} (amounts in {code})"
        )
        figure = go.Figure(
            go.Sankey(
                arrangement="fixed",
                valueformat=",.2f" if scale > 1 else ",d",
                valuesuffix=f" {code}",
                textfont={"size": 11},
                node={
                    "label": [
                        "<br>".join(names[n.id]) + f"<br><b>{n.detail}</b>" for n in graph.nodes
                    ],
                    "color": [KIND_COLOURS.get(n.kind, "#999999") for n in graph.nodes],
                    "customdata": [
                        [n.name, KIND_LABELS.get(n.kind, n.kind), n.detail] for n in graph.nodes
                    ],
                    "hovertemplate": "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
                    "%{customdata[2]}<extra></extra>",
                    "pad": layout.pad,
                    "x": [0.001 + 0.998 * at[layout.column[n.id]] / span for n in graph.nodes],
                    "y": [
                        min(max(layout.centre[n.id] / layout.height, 0.001), 0.999)
                        for n in graph.nodes
                    ],
                    "thickness": 16,
                    "line": {"width": 0},
                },
                link={
                    "source": [index[a] for a, _, _ in graph.edges],
                    "target": [index[b] for _, b, _ in graph.edges],
                    "value": [amount / scale for _, _, amount in graph.edges],
                    "customdata": [
                        f"{graph.node(a).name} → {graph.node(b).name}<br>"
                        f"<b>{format_amount(v, code)} {code}</b>"
                        for a, b, v in graph.edges
                    ],
                    "hovertemplate": "%{customdata}<extra></extra>",
                    "color": [_tint(graph.node(a).kind) for a, _, _ in graph.edges],
                },
            )
        )
        figure.update_layout(title=title, margin={"l": 20, "r": 20, "t": top, "b": 20})
        width = int(_SANKEY_PITCH * span) + 40 + 16
        height = int(layout.height) + top + 20
        charts.append(_html(figure, f"chart-money-{number}", height, min_width=width))
    return charts


def valuation_charts(document: ReportDocument) -> list[str]:
    """Each model's inputs: contribution value with ± one standard error."""
    import plotly.graph_objects as go

    charts = []
    for number, valuation in enumerate(document.valuations):
        players = valuation.players
        values = [float(Fraction(p.value)) for p in players]
        errors = [float(Fraction(p.stderr)) if p.stderr else 0.0 for p in players]
        colours = [
            KIND_COLOURS.get(p.kind or "", "#999999") if v >= 0 else "#B22222"
            for p, v in zip(players, values, strict=True)
        ]
        figure = go.Figure(
            go.Bar(
                x=[_wrap(p.name, 16) for p in players],
                y=values,
                error_y={"type": "data", "array": errors, "visible": True, "color": "#333333"},
                marker={"color": colours},
                customdata=[value_in_words(p.value, p.stderr) for p in players],
                hovertemplate="<b>%{x}</b><br>value %{customdata}<extra></extra>",
                name="value",
            )
        )
        utility = valuation.utility or "the model's score"
        title, top = _title(
            f"What each input of {valuation.model_name} was worth "
            f"({valuation.method}, {valuation.evaluations} evaluations; bars: ± 1 standard error)"
        )
        figure.update_layout(
            title=title,
            yaxis={"title": {"text": f"contribution value<br>(to {utility})"}, "zeroline": True},
            xaxis={"title": {"text": "input"}},
            margin={"l": 90, "r": 20, "t": top, "b": 60},
            showlegend=False,
        )
        charts.append(_html(figure, f"chart-valuation-{number}", 360 + top))
    return charts


def usage_chart(document: ReportDocument) -> str | None:
    """Units per day (or month) as bars, distinct consumers as a line on a second axis."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    usage = document.usage
    if not usage.total_units:
        return None
    series = usage.series
    unit, per = usage.unit, usage.per
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Bar(
            x=[s.start for s in series],
            y=[s.units for s in series],
            name=f"{unit}s per {per}",
            marker={"color": KIND_COLOURS["service"]},
            hovertemplate=f"%{{x}}<br>%{{y}} {unit}s<extra></extra>",
        ),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(
            x=[s.start for s in series],
            y=[s.consumers for s in series],
            name=f"distinct consumers per {per}",
            mode="lines+markers",
            line={"color": KIND_COLOURS["model"]},
            hovertemplate="%{x}<br>%{y} distinct consumers<extra></extra>",
        ),
        secondary_y=True,
    )
    title, top = _title(
        f"Usage of {document.asset.name} in {document.period}: "
        f"{usage.total_units} {unit}s by {usage.distinct_consumers} distinct consumers"
    )
    figure.update_layout(
        title=title,
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        margin={"l": 70, "r": 70, "t": top + 28, "b": 80},
        bargap=0.15,
    )
    most = max(s.consumers for s in series)
    figure.update_xaxes(title_text=per, range=_date_range(series[0].start, series[-1].start, per))
    figure.update_yaxes(title_text=f"{unit}s per {per}", secondary_y=False, rangemode="tozero")
    figure.update_yaxes(
        title_text="distinct consumers (pseudonymous)",
        secondary_y=True,
        rangemode="tozero",
        showgrid=False,
        dtick=max(1, math.ceil(most / 5)),
        tickformat=",d",
    )
    return _html(figure, "chart-usage", 388 + top)


def _date_range(first: str, last: str, per: str) -> list[str]:
    """The axis range of a period: half a bar before its first day (or month), after its last."""
    half = timedelta(hours=12) if per == "day" else timedelta(days=15)
    start = datetime.fromisoformat(first if per == "day" else first + "-01") - half
    end = datetime.fromisoformat(last if per == "day" else last + "-01") + half
    return [start.isoformat(sep=" "), end.isoformat(sep=" ")]


def charts(document: ReportDocument) -> dict[str, list[str]]:
    """Every chart of the page, by section."""
    usage = usage_chart(document)
    return {
        "lineage": [lineage_chart(document)],
        "money": money_charts(document),
        "valuations": valuation_charts(document),
        "usage": [usage] if usage else [],
    }


__all__ = ["charts", "plotly_script"]
