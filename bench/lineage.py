"""Lineage query (upstream closure) on a 10,000-node provenance graph, on SQLite.

Issue "Provenance SDK", target: upstream closure of any asset under 50 ms p95 on SQLite,
through `Workspace.lineage(asset)` (the code path of `quotepart lineage ASSET`): one
recursive SQL statement plus one lookup of names and kinds.

1. Build the graph through the public SDK, signed entries and all: `layers` layers, each
   with `width` runs; a run uses 1-4 assets from earlier layers (mostly the previous
   one, sometimes far back, like a model fine-tuned on an old corpus) and produces one
   new asset. 10,000 nodes = 5,000 assets + 5,000 runs with ~17,000 edges by default.
   Two shapes: `projects` (default): 20 pipelines side by side, 5 % of inputs taken
   from another pipeline (shared corpora and base models), closures of hundreds of
   nodes; `dense`: one pipeline where everything mixes, so the top closures hold most
   of the graph (a stress case).
2. Time upstream closures of random assets from the top layers (the deep, wide ones)
   and, for scale, from uniformly random assets. Report p50/p95/p99. `quotepart` is the
   workspace's path: its in-memory `LineageIndex`, caught up with the log before every
   query (the first load is timed apart); `quotepart_recursive_sql` is the fallback for
   graphs too large to hold, one recursive SQL statement.
3. Competitors in the same run, on the same graph: networkx `ancestors` on the graph
   held in memory (loading it is timed separately, once), and the same walk done
   breadth-first with one SQL query per level (what an ORM loop would do). Every
   closure is checked to equal networkx's, and the index's to equal the SQL walk's.

    python bench/lineage.py            # 10,000 nodes
    python bench/lineage.py --quick    # 2,000 nodes
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_ms,
    fmt_ratio,
    log,
    machine_info,
    new_table,
    percentiles_ms,
    results_path,
    stdout,
    stopwatch,
    write_results,
)

from quotepart.errors import VerificationError
from quotepart.ids import Digest, RunId
from quotepart.log.kinds import AssetRegistered, RunRecorded
from quotepart.provenance.lineage import lineage
from quotepart.store.lineage import LineageIndex, walk
from quotepart.workspace import Workspace, init_workspace

TARGET_P95_MS = 50.0


def build_graph(
    ws: Workspace, layers: int, width: int, seed: int, projects: int = 1, cross: float = 0.0
) -> list[list[Digest]]:
    """Assets by layer; every run appended in one batch per layer (signed, projected)."""
    rng = random.Random(seed)
    lab = ws.register_party("Lab", roles=("operator",))
    seeds = [Digest.of_bytes(f"seed {i}".encode()) for i in range(width)]
    ws.append_many([(AssetRegistered(d, "dataset", f"seed {i}"), lab) for i, d in enumerate(seeds)])
    by_layer = [seeds]
    for layer in range(1, layers):
        made = [Digest.of_bytes(f"asset {layer}/{i}".encode()) for i in range(width)]
        bodies: list[Any] = [
            (
                AssetRegistered(d, "model" if layer % 5 == 0 else "dataset", f"asset {layer}/{i}"),
                lab,
            )
            for i, d in enumerate(made)
        ]
        now = ws.clock()
        for position, output in enumerate(made):
            inputs = set()
            for _ in range(rng.randint(1, 4)):
                back = 1 if rng.random() < 0.8 else rng.randint(1, layer)
                pool = by_layer[layer - back]
                if rng.random() >= cross:  # stay inside this project's pipeline
                    pool = pool[position % projects :: projects]
                inputs.add(rng.choice(pool))
            bodies.append(
                (
                    RunRecorded(
                        run=RunId.new(ws.clock),
                        name=f"run {layer}",
                        operator=lab,
                        status="succeeded",
                        started=now,
                        ended=now,
                        inputs=tuple(sorted(inputs)),
                        outputs=(output,),
                    ),
                    lab,
                )
            )
        ws.append_many(bodies)
        by_layer.append(made)
    return by_layer


def load_networkx(ws: Workspace) -> tuple[nx.DiGraph, dict[str, int]]:
    """The edges as a networkx graph over node ids, and each asset's node (leaf index)."""
    graph = nx.DiGraph()
    with ws.store.engine.connect() as conn:
        names = dict(conn.exec_driver_sql("SELECT leaf_index, digest FROM assets").all())
        names.update(conn.exec_driver_sql("SELECT leaf_index, run_id FROM runs").all())
        for child, parent in conn.exec_driver_sql("SELECT child, parent FROM lineage_edges"):
            graph.add_edge(names[child], names[parent])  # child -> parent: descendants = upstream
    return graph, {name: leaf for leaf, name in names.items()}


def time_queries(
    ws: Workspace, graph: nx.DiGraph, leaves: dict[str, int], targets: Sequence[Digest]
) -> dict[str, Any]:
    ours, in_sql, per_level, rival, sizes = [], [], [], [], []
    ws.lineage(targets[0])  # answered in SQL: the index loads on the second query
    ws.lineage(targets[0])  # loads the in-memory index (timed apart)
    with ws.store.engine.connect() as conn:
        for target in targets:
            with stopwatch() as elapsed:
                found = ws.lineage(target)
            ours.append(elapsed[0])
            with stopwatch() as elapsed:
                sql_found = lineage(conn, str(target), "upstream")
            in_sql.append(elapsed[0])
            if sql_found != found:
                raise VerificationError(f"the SQL walk and the index disagree on {target}")
            with stopwatch() as elapsed:
                _edges, level_nodes = walk(conn, leaves[str(target)], "upstream", max_depth=10**6)
            per_level.append(elapsed[0])
            with stopwatch() as elapsed:
                expected = nx.descendants(graph, str(target)) if str(target) in graph else set()
            rival.append(elapsed[0])
            nodes = {node.id for node in found.nodes} - {str(target)}
            by_level = {node.id for node in level_nodes.values()} - {str(target)}
            if nodes != expected or by_level != expected:
                raise VerificationError(f"closure of {target} differs from networkx's")
            sizes.append(len(nodes))
    return {
        "quotepart": percentiles_ms(ours),
        "quotepart_recursive_sql": percentiles_ms(in_sql),
        "sql_one_query_per_level": percentiles_ms(per_level),
        "networkx_in_memory": percentiles_ms(rival),
        "closure_nodes": {"mean": sum(sizes) / len(sizes), "max": max(sizes)},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--nodes", type=int, help="assets + runs (default 10,000; quick 2,000)")
    parser.add_argument("--layers", type=int, default=50, help="depth of the graph")
    parser.add_argument("--queries", type=int, help="timed closures per kind (300; quick 100)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--projects", type=int, default=20, help="pipelines side by side")
    parser.add_argument("--cross", type=float, default=0.05, help="share of inputs from elsewhere")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    nodes = args.nodes or (2_000 if args.quick else 10_000)
    queries = args.queries or (100 if args.quick else 300)
    width = nodes // (2 * args.layers)
    shapes = {"projects": (args.projects, args.cross), "dense": (1, 0.0)}
    results: dict[str, Any] = {}
    for shape, (projects, cross) in shapes.items():
        with (
            tempfile.TemporaryDirectory(prefix="quotepart-bench-lineage-", dir=args.workdir) as tmp,
            init_workspace(Path(tmp) / "ws") as ws,
        ):
            log(f"{shape}: {args.layers} layers x {width} runs, {projects} pipeline(s)")
            with stopwatch() as built:
                by_layer = build_graph(ws, args.layers, width, args.seed, projects, cross)
            with ws.store.engine.connect() as conn:
                edge_count = conn.exec_driver_sql("SELECT count(*) FROM lineage_edges").scalar_one()
                node_count = conn.exec_driver_sql(
                    "SELECT (SELECT count(*) FROM assets) + (SELECT count(*) FROM runs)"
                ).scalar_one()
            with stopwatch() as loaded:
                graph, leaves = load_networkx(ws)
            with ws.store.engine.connect() as conn, stopwatch() as index_loaded:
                index = LineageIndex()
                index.queries = 1  # as if a first query had been answered in SQL
                index.refresh(conn)
            rng = random.Random(args.seed)
            top = [d for layer in by_layer[-3:] for d in layer]
            everything = [d for layer in by_layer for d in layer]
            results[shape] = {
                "nodes": node_count,
                "edges": edge_count,
                "pipelines": projects,
                "cross_pipeline_inputs": cross,
                "build_seconds": built[0],
                "networkx_load_ms": loaded[0] * 1e3,
                "index_load_ms": index_loaded[0] * 1e3,
                "top_layers": time_queries(ws, graph, leaves, rng.choices(top, k=queries)),
                "uniform": time_queries(ws, graph, leaves, rng.choices(everything, k=queries)),
            }
    table = new_table(
        "Upstream closure on SQLite (ms)",
        ["graph", "start", "closure (mean/max)", "method", "p50", "p95", "p99", "p95 ratio"],
        caption=f"target: quotepart p95 < {TARGET_P95_MS:.0f} ms on the `projects` graph; "
        "networkx is the same closure on the graph already loaded in memory",
        text_columns=4,
    )
    for shape, result in results.items():
        label = f"{shape} {result['nodes']:,}n/{result['edges']:,}e"
        for start in ("top_layers", "uniform"):
            figures = result[start]
            base = figures["quotepart"]["p95_ms"]
            closure = f"{figures['closure_nodes']['mean']:,.0f}/{figures['closure_nodes']['max']:,}"
            for method in (
                "quotepart",
                "quotepart_recursive_sql",
                "sql_one_query_per_level",
                "networkx_in_memory",
            ):
                row = figures[method]
                table.add_row(
                    label,
                    start,
                    closure,
                    method,
                    fmt_ms(row["p50_ms"]),
                    fmt_ms(row["p95_ms"]),
                    fmt_ms(row["p99_ms"]),
                    fmt_ratio(row["p95_ms"] / base),
                )
    stdout.print(table)
    projects_p95 = max(
        results["projects"][k]["quotepart"]["p95_ms"] for k in ("top_layers", "uniform")
    )
    met = projects_p95 < TARGET_P95_MS
    log(f"target p95 < {TARGET_P95_MS} ms on the projects graph: {'met' if met else 'NOT met'}")
    write_results(
        results_path("lineage", quick=args.quick, override=args.output),
        {
            "benchmark": "lineage",
            "issue": "Provenance SDK: parties, assets, runs and lineage",
            "machine": machine_info(),
            "parameters": {
                "nodes": nodes,
                "layers": args.layers,
                "runs_per_layer": width,
                "queries_per_kind": queries,
                "seed": args.seed,
                "quick": args.quick,
            },
            "target": {"p95_ms_max": TARGET_P95_MS, "graph": "projects", "met": met},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
