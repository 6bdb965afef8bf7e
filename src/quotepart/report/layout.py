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


__all__ = [
    "KIND_COLOURS",
    "KIND_LABELS",
    "Graph",
    "Node",
    "layered",
    "lineage_graph",
    "money_graph",
]
