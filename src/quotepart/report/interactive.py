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
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from quotepart.money import currency as find_currency
from quotepart.money import format_amount
from quotepart.report.document import ReportDocument
from quotepart.report.layout import KIND_COLOURS, KIND_LABELS, Graph, lineage_graph, money_graph

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Plotly is imported inside the functions that draw: `import quotepart` must not pay for it.
_CONFIG = {"displaylogo": False, "responsive": True}
_FONT = {"family": "DejaVu Sans, Arial, sans-serif", "size": 13}


def plotly_script() -> str:
    """Plotly's JavaScript, to be inlined once in the page's head."""
    import plotly.offline

    return str(plotly.offline.get_plotlyjs())


def _html(figure: go.Figure, div_id: str, height: int) -> str:
    """A chart's <div> and the script that draws it (a fixed id, so the page is reproducible)."""
    figure.update_layout(height=height, font=_FONT, template="plotly_white")
    return str(
        figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            default_height=f"{height}px",
            config=_CONFIG,
        )
    )


def _wrap(text: str, width: int = 18) -> str:
    return "<br>".join(textwrap.wrap(text, width) or [text])


def lineage_chart(document: ReportDocument) -> str:
    """The value chain as a layered network: arrows point from an input to what was made of it."""
    import plotly.graph_objects as go

    graph = lineage_graph(document)
    figure = go.Figure()
    _draw_arrows(figure, graph)
    for kind in KIND_LABELS:
        nodes = [n for n in graph.nodes if n.kind == kind]
        if not nodes:
            continue
        figure.add_trace(
            go.Scatter(
                x=[n.x for n in nodes],
                y=[n.y for n in nodes],
                mode="markers",
                name=KIND_LABELS[kind],
                text=[n.name for n in nodes],
                customdata=[n.detail for n in nodes],
                hovertemplate="<b>%{text}</b><br>%{customdata}<extra></extra>",
                marker={
                    "size": 22,
                    "color": KIND_COLOURS[kind],
                    "symbol": "square" if kind == "run" else "circle",
                    "line": {"width": 1, "color": "#ffffff"},
                },
            )
        )
    for n in graph.nodes:  # labels on a white ground, above the arrows that cross them
        figure.add_annotation(
            x=n.x, y=n.y, text=_wrap(n.name), showarrow=False, yshift=24,
            bgcolor="rgba(255, 255, 255, 0.85)", font={"size": 12, "color": "#222222"},
        )  # fmt: skip
    tallest = max(sum(1 for m in graph.nodes if m.x == n.x) for n in graph.nodes)
    figure.update_layout(
        title={"text": f"The value chain of {document.asset.name}: what it was made from"},
        xaxis={"visible": False, "range": [-0.1, 1.1]},
        yaxis={"visible": False, "range": [-0.05, 1.08]},
        legend={"title": {"text": "kind"}, "orientation": "h", "y": -0.02},
        margin={"l": 20, "r": 20, "t": 60, "b": 40},
    )
    return _html(figure, "chart-lineage", 220 + 75 * tallest)


def _draw_arrows(figure: go.Figure, graph: Graph) -> None:
    for source, target, _ in graph.edges:
        a, b = graph.node(source), graph.node(target)
        figure.add_annotation(
            x=b.x, y=b.y, ax=a.x, ay=a.y,
            xref="x", yref="y", axref="x", ayref="y",
            showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=1.4, arrowcolor="#8a8a8a",
            standoff=12, startstandoff=12, text="",
        )  # fmt: skip


def _tint(kind: str) -> str:
    """A link's colour: its source node's, seen through."""
    colour = KIND_COLOURS.get(kind, "#999999").lstrip("#")
    red, green, blue = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, 0.3)"


def _sankey_positions(
    graph: Graph, *, plot_height: int, pad: int
) -> tuple[list[float], list[float]]:
    """Node centres for a fixed Sankey: every party in the last column, the last gap wider.

    Plotly's own arrangement puts a party paid at a model beside the inputs, and packs the
    inputs' column against the parties', so their labels (right of the inputs, left of
    the parties) overwrite each other. Here parties take the last column, ordered like the
    nodes that pay them (so links do not cross), the last gap is twice as wide, and each
    column is stacked top-down at Plotly's own scale (the fullest column fills the
    height), so no two nodes overlap.
    """
    parties = [n for n in graph.nodes if n.kind == "party"]
    others = [n for n in graph.nodes if n.kind != "party"]
    columns = sorted({n.x for n in others})
    column_of = {n.id: columns.index(n.x) for n in others}
    last = len(columns)
    column_of.update({n.id: last for n in parties})
    gaps = [1.0] * last
    if gaps:
        gaps[-1] = 2.0
    at = [0.0]
    for gap in gaps:
        at.append(at[-1] + gap)
    span = at[-1] or 1.0
    inflow: dict[str, int] = {}
    outflow: dict[str, int] = {}
    for a, b, amount in graph.edges:
        outflow[a] = outflow.get(a, 0) + amount
        inflow[b] = inflow.get(b, 0) + amount
    value = {n.id: max(inflow.get(n.id, 0), outflow.get(n.id, 0)) for n in graph.nodes}
    stacks: list[list[Any]] = [[] for _ in range(last + 1)]
    for node in graph.nodes:
        stacks[column_of[node.id]].append(node)
    scale = min(
        (plot_height - pad * (len(nodes) - 1)) / max(sum(value[n.id] for n in nodes), 1)
        for nodes in stacks
        if nodes
    )
    centre: dict[str, float] = {}

    def stack(nodes: list[Any]) -> None:
        top = 0.0
        for node in nodes:
            size = value[node.id] * scale
            centre[node.id] = (top + size / 2) / plot_height
            top += size + pad

    for nodes in stacks[:last]:
        stack(sorted(nodes, key=lambda n: n.y))

    def fed_from(node: Any) -> float:
        sources = [(amount, centre.get(a, 0.0)) for a, b, amount in graph.edges if b == node.id]
        total = sum(amount for amount, _ in sources) or 1
        return sum(amount * y for amount, y in sources) / total

    stack(sorted(stacks[last], key=fed_from))
    xs = [0.001 + 0.998 * at[column_of[n.id]] / span for n in graph.nodes]
    ys = [min(max(centre[n.id], 0.001), 0.999) for n in graph.nodes]
    return xs, ys


def money_charts(document: ReportDocument) -> list[str]:
    """One Sankey per currency: revenue -> service -> models -> assets -> parties."""
    import plotly.graph_objects as go

    charts = []
    for number, code in enumerate(sorted(document.money_flow)):
        graph = money_graph(document, code)
        index = {n.id: i for i, n in enumerate(graph.nodes)}
        scale = 10 ** find_currency(code).minor_units
        earned = document.totals[code].earned.amount
        busiest = max(
            len([n for n in graph.nodes if n.kind == "party"]),
            len([n for n in graph.nodes if n.kind not in ("party", "revenue", "service", "model")]),
            4,
        )
        height = 300 + 92 * busiest
        xs, ys = _sankey_positions(graph, plot_height=height - 80, pad=44)
        figure = go.Figure(
            go.Sankey(
                arrangement="fixed",
                valueformat=",.2f" if scale > 1 else ",d",
                valuesuffix=f" {code}",
                node={
                    "label": [f"{_wrap(n.name, 28)}<br><b>{n.detail}</b>" for n in graph.nodes],
                    "color": [KIND_COLOURS.get(n.kind, "#999999") for n in graph.nodes],
                    "customdata": [KIND_LABELS.get(n.kind, n.kind) for n in graph.nodes],
                    "hovertemplate": "<b>%{label}</b><br>%{customdata}<extra></extra>",
                    "pad": 44,
                    "x": xs,
                    "y": ys,
                    "thickness": 16,
                    "line": {"width": 0},
                },
                link={
                    "source": [index[a] for a, _, _ in graph.edges],
                    "target": [index[b] for _, b, _ in graph.edges],
                    "value": [amount / scale for _, _, amount in graph.edges],
                    "customdata": [f"{format_amount(v, code)} {code}" for _, _, v in graph.edges],
                    "hovertemplate": "%{source.label} → %{target.label}<br>"
                    "<b>%{customdata}</b><extra></extra>",
                    "color": [_tint(graph.node(a).kind) for a, _, _ in graph.edges],
                },
            )
        )
        figure.update_layout(
            title={
                "text": f"Where the money went: {earned} {code} earned by "
                f"{document.asset.name} in {document.period} (amounts in {code})"
            },
            margin={"l": 20, "r": 20, "t": 60, "b": 20},
        )
        charts.append(_html(figure, f"chart-money-{number}", height))
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
                customdata=[f"{p.value} ± {p.stderr}" if p.stderr else p.value for p in players],
                hovertemplate="<b>%{x}</b><br>value %{customdata}<extra></extra>",
                name="value",
            )
        )
        utility = valuation.utility or "the model's score"
        figure.update_layout(
            title={
                "text": f"What each input of {valuation.model_name} was worth "
                f"({valuation.method}, {valuation.evaluations} evaluations; bars: ± 1 standard error)"
            },
            yaxis={"title": {"text": f"contribution value<br>(to {utility})"}, "zeroline": True},
            xaxis={"title": {"text": "input"}},
            margin={"l": 90, "r": 20, "t": 60, "b": 60},
            showlegend=False,
        )
        charts.append(_html(figure, f"chart-valuation-{number}", 420))
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
    figure.update_layout(
        title={
            "text": f"Usage of {document.asset.name} in {document.period}: "
            f"{usage.total_units} {unit}s by {usage.distinct_consumers} distinct consumers"
        },
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 70, "r": 70, "t": 60, "b": 80},
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
    return _html(figure, "chart-usage", 420)


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
