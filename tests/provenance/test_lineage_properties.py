"""Lineage walks agree with a plain graph search, at any depth, before and after rebuild."""

from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotepart.ids import Digest
from quotepart.provenance.lineage import lineage
from quotepart.workspace import Workspace, init_workspace

# A DAG as a list of runs: run i uses some of the assets made before it and makes one.
dags = st.integers(min_value=1, max_value=14).flatmap(
    lambda runs: st.lists(
        st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=3),
        min_size=runs,
        max_size=runs,
    )
)


def record(ws: Workspace, dag: list[list[int]]) -> tuple[list[Digest], set[tuple[str, str]]]:
    """Record the DAG; return the assets and the expected child -> parent edges."""
    lab = ws.register_party("Lab", roles=("operator",))
    assets = [ws.register_data(b"seed", name="seed", by=lab)]
    edges: set[tuple[str, str]] = set()
    for number, picks in enumerate(dag):
        with ws.run(f"run {number}", operator=lab) as run:
            used = {assets[pick % len(assets)] for pick in picks}
            run.use(*used)
            made = ws.register_data(f"asset {number}".encode(), name=f"a{number}", by=lab)
            run.produce(made)
        edges |= {(str(run.id), str(digest)) for digest in used}
        edges.add((str(made), str(run.id)))
        assets.append(made)
    return assets, edges


def search(edges: set[tuple[str, str]], start: str, upstream: bool, depth: int | None) -> set[str]:
    """Breadth-first search on the expected edges: the oracle."""
    found, frontier, level = set(), deque([start]), 0
    while frontier and (depth is None or level < depth):
        next_frontier: deque[str] = deque()
        for node in frontier:
            for child, parent in edges:
                near, far = (child, parent) if upstream else (parent, child)
                if near == node and far not in found and far != start:
                    found.add(far)
                    next_frontier.append(far)
        frontier, level = next_frontier, level + 1
    return found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=dags, depth=st.one_of(st.none(), st.integers(min_value=1, max_value=4)))
def test_walks_equal_a_graph_search(dag: list[list[int]], depth: int | None) -> None:
    with tempfile.TemporaryDirectory() as folder, init_workspace(Path(folder) / "ws") as ws:
        assets, edges = record(ws, dag)
        for asset in (assets[0], assets[len(assets) // 2], assets[-1]):
            for upstream in (True, False):
                graph = ws.lineage(asset, "upstream" if upstream else "downstream", max_depth=depth)
                nodes = {node.id for node in graph.nodes} - {str(asset)}
                assert nodes == search(edges, str(asset), upstream, depth)
                assert {(e.child, e.parent) for e in graph.edges} <= edges
                with ws.store.engine.connect() as conn:  # the SQL walk, without the memory index
                    in_sql = lineage(
                        conn, str(asset), "upstream" if upstream else "downstream", max_depth=depth
                    )
                assert in_sql == graph
        before = ws.lineage(assets[-1]).to_json()
        ws.rebuild()
        assert ws.lineage(assets[-1]).to_json() == before
