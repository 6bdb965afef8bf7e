"""Walks over the lineage graph (`lineage_edges`) in one recursive SQL statement.

Edges point from child to parent ("came from"); a node is the leaf index of the entry
that registered it (an asset or a run). Upstream of a node is everything it came from;
downstream is everything that came from it. The unbounded walk lets the database
de-duplicate nodes (`UNION` over the node alone), so a graph with many paths between two
nodes costs one visit per node, not one per path; names come from primary-key joins in
the same statement.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, TextClause, bindparam, text

from quotepart.store.engine import select_where_in
from quotepart.store.schema import assets, runs

Direction = Literal["upstream", "downstream"]


@dataclass(frozen=True, slots=True)
class NodeRow:
    leaf_index: int
    id: str  # sha256:<hex> or run:<ULID>
    type: str  # asset | run
    kind: str  # the asset kind, or "run"
    name: str
    status: str | None


def _walk_cte(direction: Direction, starts: int) -> str:
    near, far = ("child", "parent") if direction == "upstream" else ("parent", "child")
    seeds = " UNION ".join(f"SELECT CAST(:s{i} AS BIGINT)" for i in range(starts))
    return (
        f"WITH RECURSIVE walk(node) AS ({seeds} "
        f"UNION SELECT e.{far} FROM lineage_edges e JOIN walk ON e.{near} = walk.node) "
    )


def _bound(sql: str, seeds: Sequence[int]) -> TextClause:
    return text(sql).bindparams(*(bindparam(f"s{i}", value) for i, value in enumerate(seeds)))


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a walk allocates thousands of small tuples.

    They are acyclic and die with the walk, yet their allocation triggers full (gen 2)
    collections of the whole process's heap: measured at 50-60 ms each, three times the
    walk itself on a 10,000-node graph (bench/lineage.py). Reference counting still
    frees everything; only the cycle search waits until the walk is done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def walk(
    conn: Connection,
    start: int | Sequence[int],
    direction: Direction = "upstream",
    *,
    max_depth: int | None = None,
) -> tuple[list[tuple[int, int, str]], dict[int, NodeRow]]:
    """Edges (child, parent, relation) reachable from `start`, and the nodes they lead to
    (the far end of each edge; the start nodes only when reached again), to any depth or
    to `max_depth` hops."""
    seeds = [start] if isinstance(start, int) else list(dict.fromkeys(start))
    if not seeds:
        return [], {}
    if max_depth is not None:
        return _walk_levels(conn, seeds, direction, max_depth)
    near, far = ("child", "parent") if direction == "upstream" else ("parent", "child")
    # One statement, run through the driver: each edge comes with its far end's name and
    # kind (primary-key joins), so the recursion runs once and no second lookup is needed.
    sql = (
        _walk_cte(direction, len(seeds))
        + "SELECT e.child, e.parent, e.relation, a.digest, a.asset_kind, a.name, "
        "r.run_id, r.name, r.status FROM lineage_edges e "
        f"JOIN walk ON e.{near} = walk.node "
        f"LEFT JOIN assets a ON a.leaf_index = e.{far} "
        f"LEFT JOIN runs r ON r.leaf_index = e.{far}"
    )
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for i in range(len(seeds)):
        sql = sql.replace(f":s{i}", marker, 1)
    with cyclic_gc_paused():
        rows = conn.exec_driver_sql(sql, tuple(seeds)).fetchall()
    edges = []
    nodes: dict[int, NodeRow] = {}
    upstream = direction == "upstream"
    for child, parent, relation, digest, kind, name, run_id, run_name, status in rows:
        edges.append((child, parent, relation))
        node = parent if upstream else child
        if node not in nodes:
            nodes[node] = (
                NodeRow(node, digest, "asset", kind, name, None)
                if digest is not None
                else NodeRow(node, run_id, "run", "run", run_name, status)
            )
    return edges, nodes


def _walk_levels(
    conn: Connection, seeds: Sequence[int], direction: Direction, max_depth: int
) -> tuple[list[tuple[int, int, str]], dict[int, NodeRow]]:
    """Breadth-first, one query per level: depth-limited walks stay short by definition."""
    near = "child" if direction == "upstream" else "parent"
    seen = set(seeds)
    frontier = list(seeds)
    edges: set[tuple[int, int, str]] = set()
    select_level = text(
        f"SELECT child, parent, relation FROM lineage_edges WHERE {near} IN :nodes"
    ).bindparams(bindparam("nodes", expanding=True))
    for _ in range(max_depth):
        if not frontier:
            break
        found = [
            (int(c), int(p), str(r)) for c, p, r in conn.execute(select_level, {"nodes": frontier})
        ]
        edges.update(found)
        frontier = []
        for child, parent, _relation in found:
            node = parent if direction == "upstream" else child
            if node not in seen:
                seen.add(node)
                frontier.append(node)
    return sorted(edges), describe(conn, seen)


def describe(conn: Connection, leaves: Iterable[int]) -> dict[int, NodeRow]:
    """Nodes by leaf index (primary-key lookups, in chunks)."""
    wanted = sorted(set(leaves))
    found = {
        int(leaf): NodeRow(int(leaf), str(digest), "asset", str(kind), str(name), None)
        for leaf, digest, kind, name in select_where_in(
            conn, assets, ["leaf_index", "digest", "asset_kind", "name"], "leaf_index", wanted
        )
    }
    for leaf, run_id, name, status in select_where_in(
        conn, runs, ["leaf_index", "run_id", "name", "status"], "leaf_index", wanted
    ):
        found[int(leaf)] = NodeRow(int(leaf), str(run_id), "run", "run", str(name), str(status))
    return found


def reaches(conn: Connection, start: Iterable[int], targets: Iterable[int]) -> int | None:
    """A target found downstream of (or among) `start`, if any: the cycle check for new runs."""
    wanted = set(targets)
    seeds = list(dict.fromkeys(start))
    if not seeds:
        return None
    rows = conn.execute(
        _bound(_walk_cte("downstream", len(seeds)) + "SELECT node FROM walk", seeds)
    )
    return next((int(row[0]) for row in rows if int(row[0]) in wanted), None)


class LineageIndex:
    """The lineage graph held in memory, brought up to date from the log before each walk.

    The graph only grows: every edge is written by the entry that made its newer end (a
    run for `used` and `generated`, an asset for `derived`), so an edge belongs to the
    entry at leaf `max(child, parent)`. Catching up after the log grew from size n to m
    reads only the nodes and edges whose entries lie in [n, m): three range scans on
    primary keys and indexes. A walk is then a search over Python dicts, an order of
    magnitude faster than the recursive SQL (bench/lineage.py), while every process
    still sees every other process's appends. Above `max_edges` the index stops
    growing and walks go back to SQL, so memory stays bounded.

    Loading costs more than one SQL walk (≈ 150 ms for 10,000 nodes, bench/lineage.py),
    so the first query of a process is answered in SQL and the index is built on the
    second: a one-shot command never pays for it, a server or notebook pays once.
    """

    def __init__(self, *, max_edges: int = 2_000_000) -> None:
        self.max_edges = max_edges
        self.queries = 0
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.size = 0
        self.edge_count = 0
        self.up: dict[int, list[tuple[int, str]]] = {}
        self.down: dict[int, list[tuple[int, str]]] = {}
        self.nodes: dict[int, NodeRow] = {}

    @property
    def usable(self) -> bool:
        return self.edge_count <= self.max_edges

    def refresh(self, conn: Connection) -> bool:
        """Catch up with the log; False when SQL should answer instead (the first query,
        or a graph too large to hold)."""
        with self._lock:
            self.queries += 1
            if not self.usable or self.queries == 1:
                return False
            size = int(conn.exec_driver_sql("SELECT tree_size FROM log_head").scalar_one())
            if size < self.size:  # the database was replaced under us: start again
                self._clear()
            if size == self.size:
                return True
            self._load(conn, self.size, size)
            self.size = size
            return self.usable

    def _load(self, conn: Connection, start: int, end: int) -> None:
        marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        span = (start, end)
        for leaf, digest, kind, name in conn.exec_driver_sql(
            "SELECT leaf_index, digest, asset_kind, name FROM assets "
            f"WHERE leaf_index >= {marker} AND leaf_index < {marker}",
            span,
        ):
            self.nodes[leaf] = NodeRow(leaf, digest, "asset", kind, name, None)
        for leaf, run_id, name, status in conn.exec_driver_sql(
            "SELECT leaf_index, run_id, name, status FROM runs "
            f"WHERE leaf_index >= {marker} AND leaf_index < {marker}",
            span,
        ):
            self.nodes[leaf] = NodeRow(leaf, run_id, "run", "run", name, status)
        rows = conn.exec_driver_sql(
            "SELECT child, parent, relation FROM lineage_edges "
            f"WHERE child >= {marker} AND child < {marker} AND child > parent "
            "UNION ALL SELECT child, parent, relation FROM lineage_edges "
            f"WHERE parent >= {marker} AND parent < {marker} AND parent > child",
            span + span,
        ).fetchall()
        for child, parent, relation in rows:
            self.up.setdefault(child, []).append((parent, relation))
            self.down.setdefault(parent, []).append((child, relation))
        self.edge_count += len(rows)

    def walk(
        self, start: int, direction: Direction, max_depth: int | None = None
    ) -> tuple[list[tuple[int, int, str]], dict[int, NodeRow]]:
        """Same answer as `walk` in SQL, from memory (call `refresh` first)."""
        upstream = direction == "upstream"
        adjacency = self.up if upstream else self.down
        seen = {start}
        frontier = [start]
        edges: list[tuple[int, int, str]] = []
        depth = 0
        while frontier and (max_depth is None or depth < max_depth):
            next_frontier = []
            for node in frontier:
                for other, relation in adjacency.get(node, ()):
                    edges.append((node, other, relation) if upstream else (other, node, relation))
                    if other not in seen:
                        seen.add(other)
                        next_frontier.append(other)
            frontier = next_frontier
            depth += 1
        nodes = self.nodes
        return edges, {leaf: nodes[leaf] for leaf in seen}
