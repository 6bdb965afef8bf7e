"""`quotepart init|verify|rebuild`: make a workspace, audit it, replay its projections."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from quotepart.cli._base import (
    emit_json,
    json_option,
    load_workspace,
    stderr_console,
    workspace_options,
)
from quotepart.errors import QuotepartError
from quotepart.log import verifier_key
from quotepart.workspace import init_workspace


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path), required=False)
@click.option(
    "--workspace",
    "workspace_dir",
    envvar="QUOTEPART_HOME",
    type=click.Path(path_type=Path),
    default=None,
    help="Same as DIRECTORY.",
)
@click.option(
    "--database-url",
    envvar="QUOTEPART_DATABASE_URL",
    default=None,
    help="Keep the log in this PostgreSQL database instead of SQLite.",
)
@click.option(
    "--origin", default=None, help="The log's origin line (default: quotepart.local/<ULID>)."
)
@json_option
def init_command(
    directory: Path | None,
    workspace_dir: Path | None,
    database_url: str | None,
    origin: str | None,
    as_json: bool,
) -> None:
    """Create a workspace in DIRECTORY (default: the current folder)."""
    folder = directory or workspace_dir or Path(".")
    with init_workspace(folder, database_url=database_url, origin=origin) as ws:
        key = verifier_key(ws.origin, ws.log_key.public)
        if as_json:
            emit_json(
                {
                    "workspace": str(folder),
                    "origin": ws.origin,
                    "verifier_key": key,
                    "database": ws.database_url,
                }
            )
        else:
            click.echo(
                f"workspace  {folder}\norigin     {ws.origin}\nlog key    {key}\ndatabase   {ws.database_url}"
            )


@click.command("verify")
@workspace_options
@json_option
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Processes for signature checks."
)
def verify_command(
    workspace_dir: Path, database_url: str | None, as_json: bool, workers: int | None
) -> None:
    """Check every leaf hash, signature, tree node and checkpoint, and the projections against a replay."""
    console = stderr_console()
    started = time.perf_counter()
    with (
        load_workspace(workspace_dir, database_url) as ws,
        Progress(
            TextColumn("verifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as progress,
    ):
        task = progress.add_task("verify", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = ws.verify(workers=workers, progress=advance)
        except QuotepartError as exc:
            if as_json:
                emit_json({"ok": False, "error": exc.message})
            raise
    elapsed = time.perf_counter() - started
    document = {
        "ok": True,
        "tree_size": report.tree_size,
        "root_hash": report.root_hash.hex(),
        "signatures_checked": report.signatures_checked,
        "interior_nodes_checked": report.interior_nodes_checked,
        "checkpoints_checked": report.checkpoints_checked,
        "parties": len(report.parties),
        "usage_batches_checked": report.usage_batches_checked,
        "usage_events_checked": report.usage_events_checked,
        "usage_bills_checked": report.usage_bills_checked,
        "seconds": round(elapsed, 3),
    }
    if as_json:
        emit_json(document)
    else:
        click.echo(
            f"OK: {report.tree_size} entries, {report.signatures_checked} signatures, "
            f"{report.interior_nodes_checked} tree nodes, {report.checkpoints_checked} checkpoints "
            f"and the projections check out"
            + (
                f"; {report.usage_batches_checked} usage batches recomputed from "
                f"{report.usage_events_checked} events"
                + (
                    f", {report.usage_bills_checked} bills from their batches"
                    if report.usage_bills_checked
                    else ""
                )
                if report.usage_batches_checked
                else ""
            )
            + f"\nroot {report.root_hash.hex()}"
        )


@click.command("rebuild")
@workspace_options
@json_option
def rebuild_command(workspace_dir: Path, database_url: str | None, as_json: bool) -> None:
    """Drop the projections and replay the log into them."""
    with load_workspace(workspace_dir, database_url) as ws:
        replayed = ws.rebuild()
    if as_json:
        emit_json({"replayed": replayed})
    else:
        click.echo(f"rebuilt the projections from {replayed} entries")
