"""Where to draw the nodes of a small directed acyclic graph: layers from left to right.

Both chart libraries draw the lineage and the money flow from this one layout, so the
interactive page and the PDF show the same picture. In the lineage each node sits one
layer left of the nearest thing it feeds (so a compute grant used by the last run is
drawn beside that run, not at the far left); in the money flow each sits one layer
right of what pays it (so a party is drawn beside the asset that pays it, and no
line runs across other nodes). Nodes within a layer are ordered by the mean position
of their neighbours, which removes most crossings in graphs of this size.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from quotepart.money import format_amount
from quotepart.report.document import ReportDocument

N = TypeVar("N", bound=Hashable)


def layered(
    nodes: Iterable[N],
    edges: Iterable[tuple[N, N]],
    *,
    order: Mapping[N, str] | None = None,
    towards: str = "sinks",
) -> dict[N, tuple[float, float]]:
    """(x, y) in [0, 1] for each node of a DAG whose edges point the way things flowed.

    `towards="sinks"` puts each node as far right as it can go (one layer before the
    nearest node it feeds), `"sources"` as far left (one layer after the furthest node
    feeding it).

    `order` gives each node a sort key for its first placement (e.g. its kind and name),
    so the same graph always gets the same drawing. Nodes on a cycle (none should be:
    the lineage refuses cycles) are drawn in the first layer rather than lost.
    """
    node_list = list(dict.fromkeys(nodes))
    outgoing: dict[N, list[N]] = {n: [] for n in node_list}
    incoming: dict[N, list[N]] = {n: [] for n in node_list}
    for source, target in edges:
        if source in outgoing and target in outgoing and target not in outgoing[source]:
            outgoing[source].append(target)
            incoming[target].append(source)
    ahead = outgoing if towards == "sinks" else incoming
    distance: dict[N, int] = {}  # longest path to a sink (or from a source)

    def settle(node: N, visiting: set[N]) -> int:
        if node in distance:
            return distance[node]
        visiting.add(node)
        found = [settle(t, visiting) + 1 for t in ahead[node] if t not in visiting]
        visiting.discard(node)
        distance[node] = max(found, default=0)
        return distance[node]

    for node in node_list:
        settle(node, set())
    depth = max(distance.values(), default=0)
    layers: dict[int, list[N]] = {}
    keys = order or {}
    for node in sorted(node_list, key=lambda n: (keys.get(n, ""), str(n))):
        layer = depth - distance[node] if towards == "sinks" else distance[node]
        layers.setdefault(layer, []).append(node)
    rank: dict[N, float] = {}
    for column in layers.values():
        rank.update((node, float(i)) for i, node in enumerate(column))
    for _sweep in range(4):  # barycentre ordering, left to right then right to left
        for index in sorted(layers) if _sweep % 2 == 0 else sorted(layers, reverse=True):
            column = layers[index]
            neighbours = incoming if _sweep % 2 == 0 else outgoing

            def barycentre(node: N, near: dict[N, list[N]] = neighbours) -> float:
                placed = [rank[n] for n in near[node]]
                return sum(placed) / len(placed) if placed else rank[node]

            column.sort(key=lambda n: (barycentre(n), rank[n]))
            tallest = max(len(c) for c in layers.values())
            offset = (tallest - len(column)) / 2
            rank.update((node, offset + i) for i, node in enumerate(column))
    tallest = max((len(c) for c in layers.values()), default=1)
    positions: dict[N, tuple[float, float]] = {}
    for index, column in layers.items():
        x = index / depth if depth else 0.5
        for node in column:
            y = 1 - (rank[node] + 0.5) / tallest
            positions[node] = (x, y)
    return positions


# ------------------------------------------------------------------ the two graphs

KIND_LABELS = {
    "revenue": "revenue",
    "service": "service",
    "model": "model",
    "dataset": "dataset",
    "cohort": "cohort",
    "labelling_batch": "labelling batch",
    "compute_grant": "compute grant",
    "run": "run",
    "party": "party",
}
KIND_COLOURS = {  # Okabe-Ito: told apart by colour-blind readers too
    "revenue": "#000000",
    "service": "#D55E00",
    "model": "#0072B2",
    "dataset": "#009E73",
    "cohort": "#56B4E9",
    "labelling_batch": "#E69F00",
    "compute_grant": "#CC79A7",
    "run": "#999999",
    "party": "#6A3D9A",
}
_KIND_ORDER = {kind: f"{i:02d}" for i, kind in enumerate(KIND_LABELS)}


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    kind: str  # an asset kind, "run", "party" or "revenue"
    detail: str  # one more line for hover text and labels (a status, an amount)
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: list[Node]
    edges: list[tuple[str, str, int]]  # (from, to, minor units; 0 where no money is drawn)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def _placed(
    raw: list[tuple[str, str, str, str]], edges: list[tuple[str, str, int]], towards: str
) -> Graph:
    positions = layered(
        [node_id for node_id, *_ in raw],
        [(a, b) for a, b, _ in edges],
        order={node_id: _KIND_ORDER.get(kind, "99") + name for node_id, name, kind, _ in raw},
        towards=towards,
    )
    nodes = [Node(i, name, kind, detail, *positions[i]) for i, name, kind, detail in raw]
    return Graph(nodes, edges)


def lineage_graph(document: ReportDocument) -> Graph:
    """The value chain: inputs on the left, the reported asset (or its services) on the right."""
    raw = [
        (
            n.id,
            n.name,
            n.kind,
            f"{KIND_LABELS.get(n.kind, n.kind)}"
            + (f", {n.status}" if n.status and n.status != "succeeded" else ""),
        )
        for n in document.lineage.nodes
    ]
    edges = [(e.from_, e.to, 0) for e in document.lineage.edges]
    return _placed(raw, edges, "sinks")


def money_graph(document: ReportDocument, code: str) -> Graph:
    """Revenue -> service -> models -> assets -> parties, in minor units of `code`."""
    flow = document.money_flow[code]
    kinds = {n.id: n.kind for n in document.lineage.nodes}
    kinds.update({e.digest: "service" for e in document.earned_by if e.digest not in kinds})
    names: dict[str, str] = {"revenue": f"Revenue {document.period}"}
    edges: list[tuple[str, str, int]] = []
    for e in flow.assets:
        source = e.from_ or "revenue"
        names.setdefault(e.to, e.to_name)
        if e.from_:
            names.setdefault(e.from_, e.from_name if e.from_name is not None else e.from_)
        edges.append((source, e.to, e.amount_minor))
    for p in flow.parties:
        names.setdefault(p.at, p.at_name)
        names.setdefault(p.party, p.party_name)
        edges.append((p.at, p.party, p.amount_minor))
    inflow: dict[str, int] = {}
    outflow: dict[str, int] = {}
    for a, b, amount in edges:
        outflow[a] = outflow.get(a, 0) + amount
        inflow[b] = inflow.get(b, 0) + amount
    raw = []
    for node_id, name in names.items():
        amount = max(inflow.get(node_id, 0), outflow.get(node_id, 0))
        kind = (
            "revenue"
            if node_id == "revenue"
            else "party"
            if node_id.startswith("party:")
            else kinds.get(node_id, "dataset")
        )
        raw.append((node_id, name, kind, f"{format_amount(amount, code)} {code}"))
    return _placed(raw, edges, "sources")


# ------------------------------------------------------------------ stacking the columns


def columns_of(graph: Graph) -> dict[str, int]:
    """Each node's column, 0 on the left (the layers of `layered`)."""
    xs = sorted({n.x for n in graph.nodes})
    return {n.id: xs.index(n.x) for n in graph.nodes}


def stack_columns(graph: Graph, extent: Mapping[str, float], *, gap: float) -> Stacked:
    """Each column's nodes one under the other, in `layered`'s order, each given its
    `extent` (the height its label and marker need, in the caller's unit) and `gap`
    between two: no two labels overlap, however many nodes a column holds. Each column
    is centred on the tallest."""
    column = columns_of(graph)
    count = max(column.values(), default=-1) + 1
    stacks: list[list[Node]] = [[] for _ in range(count)]
    for node in sorted(graph.nodes, key=lambda n: -n.y):
        stacks[column[node.id]].append(node)
    needs = [sum(extent[n.id] for n in nodes) + gap * (len(nodes) - 1) for nodes in stacks]
    height = max(needs, default=0.0)
    top: dict[str, float] = {}
    for nodes, need in zip(stacks, needs, strict=True):
        at = (height - need) / 2
        for node in nodes:
            top[node.id] = at
            at += extent[node.id] + gap
    return Stacked(column, top, {n.id: extent[n.id] for n in graph.nodes}, height, count)


@dataclass(frozen=True, slots=True)
class Stacked:
    """Where each node's slot starts (`top`, from the top) and how tall it is (`size`)."""

    column: dict[str, int]
    top: dict[str, float]
    size: dict[str, float]
    height: float
    columns: int

    def centre(self, node_id: str) -> float:
        return self.top[node_id] + self.size[node_id] / 2


@dataclass(frozen=True, slots=True)
class Sankey:
    """A Sankey's geometry in the caller's unit: node `size` is `scale` × its amount,
    its centre at `centre`; `gaps` are the widths of the gaps between columns (the last,
    where two columns of labels face each other, twice the others)."""

    column: dict[str, int]
    centre: dict[str, float]
    size: dict[str, float]
    scale: float
    height: float
    gaps: list[float]

    pad: float  # the node padding that makes Plotly draw its nodes at `scale`


def node_values(graph: Graph) -> dict[str, int]:
    inflow: dict[str, int] = {}
    outflow: dict[str, int] = {}
    for a, b, amount in graph.edges:
        outflow[a] = outflow.get(a, 0) + amount
        inflow[b] = inflow.get(b, 0) + amount
    return {n.id: max(inflow.get(n.id, 0), outflow.get(n.id, 0)) for n in graph.nodes}


def sankey(
    graph: Graph,
    label: Mapping[str, float],
    *,
    gap: float,
    room: float,
    least: float,
    plotly: bool = True,
) -> Sankey:
    """The money flow's Sankey, spread over the whole height.

    Every party takes the last column, ordered like the nodes that pay them (so bands do
    not cross). Each node's slot is as tall as its band or its label (`label`, in the
    caller's unit), whichever is taller, so no two labels overlap; the height is what
    the fullest column's labels need plus `room` for the bands (at least `least`), and
    the scale the largest at which every column fits. Each column's slack is shared
    out between its nodes, so every column spans the whole height rather than the
    fullest one alone. For Plotly (`plotly=True`), the height also grows until Plotly
    can be made to draw at that scale (see `pad`).
    """
    parties = [n for n in graph.nodes if n.kind == "party"]
    layer = columns_of(graph)
    others = sorted({layer[n.id] for n in graph.nodes if n.kind != "party"})
    column = {n.id: others.index(layer[n.id]) for n in graph.nodes if n.kind != "party"}
    last = len(others)
    column.update({n.id: last for n in parties})
    value = node_values(graph)
    stacks: list[list[Node]] = [[] for _ in range(last + 1)]
    for node in sorted(graph.nodes, key=lambda n: -n.y):
        stacks[column[node.id]].append(node)
    stacks = [nodes for nodes in stacks if nodes]

    def need(nodes: list[Node], scale: float) -> float:
        return sum(max(value[n.id] * scale, label[n.id]) for n in nodes) + gap * (len(nodes) - 1)

    height = max(max((need(nodes, 0.0) for nodes in stacks), default=0.0) + room, least)
    fullest = max((len(nodes) for nodes in stacks), default=1)
    totals = [(len(nodes), sum(value[n.id] for n in nodes) or 1) for nodes in stacks]

    def plotly_scale(pad: float) -> float:  # how Plotly (d3-sankey) sizes nodes for a pad
        return min((height - (count - 1) * pad) / total for count, total in totals)

    for _ in range(60):
        low, high = 0.0, height / max(max(value.values(), default=1), 1)
        for _ in range(40):  # the largest scale at which every column fits
            middle = (low + high) / 2
            fits = all(need(nodes, middle) <= height for nodes in stacks)
            low, high = (middle, high) if fits else (low, middle)
        scale = low
        # d3-sankey caps the pad at 2/3 of the height over the fullest column's gaps; the
        # scale must be one it can reach with a pad below that cap, or the height grows.
        cap = 2 * height / (3 * (fullest - 1)) if fullest > 1 else 0.0
        if not plotly or plotly_scale(cap) <= scale * 1.000001:
            break
        height *= 1.05
    low, high = 0.0, cap
    for _ in range(60):  # the pad at which Plotly's scale is ours
        middle = (low + high) / 2
        low, high = (middle, high) if plotly_scale(middle) > scale else (low, middle)
    pad = low
    centre: dict[str, float] = {}

    def fed_from(node: Node) -> float:
        sources = [(amount, centre.get(a, 0.0)) for a, b, amount in graph.edges if b == node.id]
        total = sum(amount for amount, _ in sources) or 1
        return sum(amount * y for amount, y in sources) / total

    for index, nodes in enumerate(stacks):
        if index == len(stacks) - 1 and parties:
            nodes = sorted(nodes, key=fed_from)
        slots = [max(value[n.id] * scale, label[n.id]) for n in nodes]
        spare = height - sum(slots)
        spacing = spare / (len(nodes) - 1) if len(nodes) > 1 else 0.0
        at = 0.0 if len(nodes) > 1 else spare / 2
        for node, slot in zip(nodes, slots, strict=True):
            centre[node.id] = at + slot / 2
            at += slot + spacing
    gaps = [1.0] * (len(stacks) - 1)
    if gaps:
        gaps[-1] = 2.0
    size = {n.id: value[n.id] * scale for n in graph.nodes}
    return Sankey(column, centre, size, scale, height, gaps, pad)


def clipped(text: str, width: int, lines: int = 3) -> list[str]:
    """`text` wrapped at `width` characters, at most `lines` lines, the last cut with "…"
    where the text is longer (the full text is in the hover text)."""
    import textwrap

    wrapped = textwrap.wrap(text, width) or [text]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: max(width - 1, 1)].rstrip() + "…"
    return wrapped


__all__ = [
    "KIND_COLOURS",
    "KIND_LABELS",
    "Graph",
    "Node",
    "Sankey",
    "Stacked",
    "clipped",
    "columns_of",
    "layered",
    "lineage_graph",
    "money_graph",
    "node_values",
    "sankey",
    "stack_columns",
]
