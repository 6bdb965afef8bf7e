"""`quotepart demo`: a small data cooperative records who contributed what, then proves it."""

from __future__ import annotations

import hashlib
import tempfile
from fractions import Fraction
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from quotepart.cli._base import stderr_console
from quotepart.log import Checkpoint, leaf_hash, verify_consistency, verify_inclusion
from quotepart.workspace import Workspace, init_workspace


def synthetic_records(site: str, count: int) -> bytes:
    """Deterministic stand-in records for one hospital's cohort (no real data ships with quotepart)."""
    rows = []
    for number in range(count):
        seed = hashlib.sha256(f"{site}/{number}".encode()).digest()
        rows.append(f"{site},{number},{seed[0] % 90 + 10},{seed[1] % 2},{seed[2] % 40 + 100}")
    return ("site,patient,age,outcome,systolic_bp\n" + "\n".join(rows) + "\n").encode()


def run_demo(ws: Workspace, console: Console) -> None:
    coop = ws.register_party("Riverside Health Data Cooperative", roles=("coop", "operator"))
    north = ws.register_party("North Valley Hospital", roles=("contributor",))
    south = ws.register_party("South Bay Clinic", roles=("contributor",))
    annotators = ws.register_party("Open Label Collective", roles=("contributor",))
    lab = ws.register_party("Civic AI Lab", roles=("contributor", "operator"))
    console.print(f"registered {len(ws.parties())} parties, each with its own Ed25519 key")

    north_cohort = ws.register_asset(
        synthetic_records("north", 1200),
        asset_kind="cohort",
        name="North Valley cardiology cohort",
        by=north,
    )
    south_cohort = ws.register_asset(
        synthetic_records("south", 800),
        asset_kind="cohort",
        name="South Bay cardiology cohort",
        by=south,
    )
    labels = ws.register_asset(
        b"outcome labels for 2000 records, double-annotated",
        asset_kind="labelling_batch",
        name="Outcome labels, round 1",
        by=annotators,
    )
    model = ws.register_asset(
        b"gradient-boosted risk model v1 (weights)",
        asset_kind="model",
        name="Heart-risk model v1",
        by=lab,
    )
    ws.record_contribution(north, north_cohort, role="data", share=1, by=north)
    ws.record_contribution(south, south_cohort, role="data", share=Fraction(3, 4), by=south)
    ws.record_contribution(coop, south_cohort, role="data", share=Fraction(1, 4), by=coop)
    ws.record_contribution(annotators, labels, role="annotation", share=1, by=annotators)
    ws.record_contribution(lab, model, role="code", share=1, by=lab)
    again = ws.register_asset(
        synthetic_records("north", 1200), asset_kind="cohort", name="(same bytes again)", by=north
    )
    assert again == north_cohort
    console.print("registered 4 assets and 5 contributions; re-registering a cohort added nothing")


def print_summary(ws: Workspace, out: Console) -> None:
    names = {record.party: record.name for record in ws.parties()}
    assets = {record.asset: record for record in ws.assets()}
    table = Table(title="Contributions in the log", show_lines=False)
    for column in ("entry", "party", "asset", "kind", "role", "share"):
        table.add_column(column)
    for record in ws.contributions():
        asset = assets[record.asset]
        table.add_row(
            str(record.leaf_index),
            names[record.party],
            asset.name,
            asset.asset_kind,
            record.role,
            str(record.share),
        )
    out.print(table)


@click.command("demo")
@click.option(
    "--workspace",
    "workspace_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Create the demo workspace here (default: a new temporary folder).",
)
@click.option(
    "--database-url", envvar="QUOTEPART_DATABASE_URL", default=None, help="Use PostgreSQL."
)
def demo_command(workspace_dir: Path | None, database_url: str | None) -> None:
    """Create a workspace, record a small cooperative's contributions, then verify everything."""
    console = stderr_console()
    out = Console(highlight=False, soft_wrap=True, markup=False)  # data, never markup
    if not out.is_terminal:
        out.width = 110
    folder = workspace_dir or Path(tempfile.mkdtemp(prefix="quotepart-demo-")) / "workspace"
    with init_workspace(folder, database_url=database_url) as ws:
        console.print(f"workspace {folder} ({ws.database_url})")
        run_demo(ws, console)
        print_summary(ws, out)

        size = ws.store.tree_size()
        index = ws.contributions()[0].leaf_index
        proof = ws.store.inclusion_proof(index)
        _, data = ws.store.entry(index)
        verify_inclusion(leaf_hash(data), index, size, proof.proof, proof.root_hash)
        old = 5
        consistency = ws.store.consistency_proof(old, size)
        verify_consistency(old, size, consistency.old_root, consistency.new_root, consistency.proof)
        checkpoint = Checkpoint.open(ws.store.latest_checkpoint() or "", ws.verifier)
        if checkpoint.root_hash != proof.root_hash:
            raise click.ClickException("checkpoint and proof disagree")  # pragma: no cover
        out.print(
            f"entry {index} is in the tree of {size} ({len(proof.proof)}-hash inclusion proof); "
            f"the tree of {old} is a prefix of it ({len(consistency.proof)}-hash consistency proof)"
        )
        out.print("\nsigned checkpoint:\n")
        out.print(ws.store.latest_checkpoint() or "", end="")
        out.print(f"\nverifier key: {ws.verifier}\n")
        report = ws.verify()
        out.print(
            f"verify: OK — {report.tree_size} entries, {report.signatures_checked} signatures, "
            f"{report.checkpoints_checked} checkpoints, projections equal a replay"
        )
        out.print(f"\nexplore it: quotepart log checkpoint --workspace {folder}")
