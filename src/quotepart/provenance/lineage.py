"""Lineage queries: upstream and downstream of any asset or run, and what they mean.

"Which contributions feed this model" is the contributions on every asset upstream of
it; "which models used my data" is every model downstream of the data. Both are one
recursive walk (`quotepart.store.lineage`) plus one lookup of names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from quotepart.errors import NotFoundError
from quotepart.ids import Digest, RunId
from quotepart.log.kinds import format_fraction
from quotepart.provenance.resolve import find_asset
from quotepart.store.lineage import Direction, LineageIndex, NodeRow, cyclic_gc_paused, walk
from quotepart.store.queries import provenance as queries
from quotepart.text import printable

LineageNode = NodeRow
"""An asset or run in a lineage: id, type (asset/run), kind, name, status, leaf_index."""


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    child: str
    parent: str
    relation: str  # used | generated | derived


@dataclass(frozen=True)
class Lineage:
    root: LineageNode
    direction: Direction
    nodes: tuple[LineageNode, ...]  # root first, then in log order
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> LineageNode:
        return self._by_id[node_id]

    @functools.cached_property
    def _by_id(self) -> dict[str, LineageNode]:
        return {node.id: node for node in self.nodes}

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root.id,
            "direction": self.direction,
            "nodes": [
                {k: v for k, v in vars_of(node).items() if v is not None} for node in self.nodes
            ],
            "edges": [
                {"child": e.child, "parent": e.parent, "relation": e.relation} for e in self.edges
            ],
        }

    def to_dot(self) -> str:
        """Graphviz: arrows point the way things flowed (from an input to what used it)."""
        lines = [f"digraph {_dot_string(self.direction + ' lineage')} {{", "  rankdir=LR;"]
        for node in self.nodes:
            shape = "box" if node.type == "run" else "ellipse"
            label = _dot_string(f"{node.name}\n{node.kind}")
            lines.append(f"  {_dot_string(node.id)} [label={label}, shape={shape}];")
        for edge in self.edges:
            lines.append(
                f"  {_dot_string(edge.parent)} -> {_dot_string(edge.child)} [label={_dot_string(edge.relation)}];"
            )
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """Mermaid flowchart (renders on GitHub and GitLab pages)."""
        ids = {node.id: f"n{i}" for i, node in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for node in self.nodes:
            text = _mermaid_text(f"{node.name} ({node.kind})")
            lines.append(
                f'  {ids[node.id]}{"[" if node.type == "run" else "(["}"{text}"{"]" if node.type == "run" else "])"}'
            )
        for edge in self.edges:
            lines.append(
                f"  {ids[edge.parent]} -->|{_mermaid_text(edge.relation)}| {ids[edge.child]}"
            )
        return "\n".join(lines) + "\n"


_DOT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n"}
_MERMAID_PLAIN = frozenset(" _.,:;'/+=@!?*$^~-()[]")
"""Safe inside a quoted Mermaid label; `%` and `{}` are not (a `%%{init}%%` directive is
read anywhere in the text), nor `"`, `#`, backticks, `<`, `>` and `&`."""


def _dot_string(text: str) -> str:
    """A DOT quoted string holding `text` as it reads: backslashes and quotes escaped (so no
    `\\N`-style label escape applies), line breaks as `\\n`, other control characters
    spelled out (`printable`)."""
    return '"' + "".join(_DOT_ESCAPES.get(char) or _dot_char(char) for char in text) + '"'


def _dot_char(char: str) -> str:
    return printable(char).replace("\\", "\\\\")


def _mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: letters, digits and plain punctuation as they are, every
    other character as an entity code (`#60;`), so no HTML, quote, `%%` directive or line
    break is read as anything but text."""
    return "".join(
        char if char.isalnum() or char in _MERMAID_PLAIN else f"#{ord(char)};" for char in text
    )


def vars_of(node: LineageNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "type": node.type,
        "kind": node.kind,
        "name": node.name,
        "status": node.status,
    }


def describe_nodes(conn: Connection, node_ids: set[str]) -> dict[str, LineageNode]:
    """Assets and runs by their ids (digest or run id), with their leaf indexes."""
    return queries.lineage_nodes(conn, node_ids)


def resolve_node(conn: Connection, reference: str) -> LineageNode:
    """The asset or run named by `reference` (see `locate`)."""
    return locate(conn, reference)[0]


def locate(conn: Connection, reference: str) -> tuple[LineageNode, int]:
    """A node (and its leaf index) named by its digest, its run id, or (when unique) an
    asset's exact name or digest prefix (`sha256:2e0df31b`).

    Raises:
        InputError: a malformed `sha256:` digest or `run:` id, or a name or prefix that
            more than one asset has (the candidates listed).
        NotFoundError: nothing in the log has that id, prefix or name.
    """
    if reference.startswith("run:"):
        reference = str(RunId.parse(reference))
    elif reference.startswith("sha256:") and not queries.is_digest_prefix(reference):
        reference = str(Digest.parse(reference))  # InputError unless a whole digest
    else:
        reference = str(find_asset(conn, reference) or reference)
    found = (
        queries.lineage_nodes(conn, {reference}).get(reference)
        if not reference.startswith("sha256:") or len(reference) == 71
        else None
    )
    if found is None:
        raise NotFoundError(
            f"no asset or run {reference!r} in this log",
            hint="list assets with `quotepart asset list`; ids look like sha256:<hex> or run:<ULID>",
        )
    return found, found.leaf_index


def lineage(
    conn: Connection,
    reference: str,
    direction: Direction = "upstream",
    *,
    max_depth: int | None = None,
    index: LineageIndex | None = None,
) -> Lineage:
    """Everything upstream or downstream of an asset or run, from the in-memory `index`
    when one is given (and small enough), else in SQL."""
    root, leaf = locate(conn, reference)
    with cyclic_gc_paused():
        if index is not None and index.refresh(conn):
            edge_rows, node_rows = index.walk(leaf, direction, max_depth)
        else:
            edge_rows, node_rows = walk(conn, leaf, direction, max_depth=max_depth)
        return _lineage(root, leaf, direction, edge_rows, node_rows)


def _lineage(
    root: LineageNode,
    leaf: int,
    direction: Direction,
    edge_rows: list[tuple[int, int, str]],
    node_rows: dict[int, NodeRow],
) -> Lineage:
    ids = {leaf_index: row.id for leaf_index, row in node_rows.items()}
    ids[leaf] = root.id
    # In log order: sorting integer tuples is cheap, and older facts come first.
    edges = tuple(
        Edge(ids[child], ids[parent], relation) for child, parent, relation in sorted(edge_rows)
    )
    others = tuple(node_rows[key] for key in sorted(node_rows) if key != leaf)
    return Lineage(root, direction, (root, *others), edges)


@dataclass(frozen=True, slots=True)
class FeedingContribution:
    party: str
    party_name: str
    asset: str
    asset_name: str
    asset_kind: str
    role: str
    share: str
    leaf_index: int


def contributions_feeding(
    conn: Connection, reference: str, *, index: LineageIndex | None = None
) -> list[FeedingContribution]:
    """Every contribution on the node itself or on any asset upstream of it."""
    graph = lineage(conn, reference, "upstream", index=index)
    asset_ids = sorted(node.id for node in graph.nodes if node.type == "asset")
    records = queries.contribution_records(conn, asset_ids)
    names = queries.party_names(conn, {str(c.party) for c in records})
    return [
        FeedingContribution(
            str(c.party),
            names[str(c.party)],
            str(c.asset),
            graph.node(str(c.asset)).name,
            graph.node(str(c.asset)).kind,
            c.role,
            format_fraction(c.share),
            c.leaf_index,
        )
        for c in records
    ]


def models_using(
    conn: Connection, reference: str, *, index: LineageIndex | None = None
) -> list[LineageNode]:
    """Every model downstream of an asset: the models built, at any remove, on it."""
    graph = lineage(conn, reference, "downstream", index=index)
    return [node for node in graph.nodes[1:] if node.kind == "model"]
