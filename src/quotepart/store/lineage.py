"""Walks over the lineage graph (`lineage_edges`) in one recursive SQL statement.

Edges point from child to parent ("came from"). Upstream of a node is everything it
came from; downstream is everything that came from it. The unbounded walk lets the
database de-duplicate nodes (`UNION` over the node alone), so a graph with many paths
between two nodes costs one visit per node, not one per path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, bindparam, text

Direction = Literal["upstream", "downstream"]


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    child: str
    parent: str
    relation: str  # used | generated | derived


def _walk_sql(direction: Direction, starts: int) -> str:
    near, far = ("child", "parent") if direction == "upstream" else ("parent", "child")
    seeds = " UNION ".join(f"SELECT :s{i}" for i in range(starts))
    return (
        f"WITH RECURSIVE walk(node) AS ({seeds} "
        f"UNION SELECT e.{far} FROM lineage_edges e JOIN walk ON e.{near} = walk.node) "
        f"SELECT e.child, e.parent, e.relation FROM lineage_edges e "
        f"JOIN walk ON e.{near} = walk.node"
    )


def walk(
    conn: Connection,
    start: str | Sequence[str],
    direction: Direction = "upstream",
    *,
    max_depth: int | None = None,
) -> list[Edge]:
    """Every edge reachable from `start` in `direction`, to any depth or to `max_depth` hops."""
    seeds = [start] if isinstance(start, str) else list(dict.fromkeys(start))
    if not seeds:
        return []
    if max_depth is not None:
        return _walk_levels(conn, seeds, direction, max_depth)
    statement = text(_walk_sql(direction, len(seeds))).bindparams(
        *(bindparam(f"s{i}", value) for i, value in enumerate(seeds))
    )
    return sorted(Edge(*row) for row in conn.execute(statement))


def _walk_levels(
    conn: Connection, seeds: Sequence[str], direction: Direction, max_depth: int
) -> list[Edge]:
    """Breadth-first, one query per level: depth-limited walks stay short by definition."""
    near = "child" if direction == "upstream" else "parent"
    seen = set(seeds)
    frontier = list(seeds)
    edges: set[Edge] = set()
    for _ in range(max_depth):
        if not frontier:
            break
        statement = text(
            f"SELECT child, parent, relation FROM lineage_edges WHERE {near} IN :nodes"
        ).bindparams(bindparam("nodes", expanding=True))
        found = [Edge(*row) for row in conn.execute(statement, {"nodes": frontier})]
        edges.update(found)
        frontier = []
        for edge in found:
            node = edge.parent if direction == "upstream" else edge.child
            if node not in seen:
                seen.add(node)
                frontier.append(node)
    return sorted(edges)


def reaches(conn: Connection, start: Iterable[str], targets: Iterable[str]) -> str | None:
    """A target found downstream of (or among) `start`, if any: the cycle check for new runs."""
    wanted = set(targets)
    seeds = list(start)
    hit = next((node for node in seeds if node in wanted), None)
    if hit is not None:
        return hit
    for edge in walk(conn, seeds, "downstream"):
        if edge.child in wanted:
            return edge.child
    return None
