"""The `quotepart` command line: parse, call the workspace, render."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from quotepart import __version__
from quotepart.cli._base import (
    QuotepartGroup,
    emit_json,
    json_option,
    load_workspace,
    stderr_console,
    workspace_options,
)
from quotepart.cli.demo import demo_command
from quotepart.cli.export_commands import export_group, ingest_group
from quotepart.cli.log_commands import log_group
from quotepart.cli.provenance_commands import (
    asset_group,
    contribute_command,
    lineage_command,
    party_group,
    run_group,
)
from quotepart.cli.report_commands import report_command
from quotepart.cli.sharing_commands import SHARING_COMMANDS
from quotepart.errors import QuotepartError
from quotepart.log import verifier_key
from quotepart.workspace import init_workspace


@click.group(cls=QuotepartGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="quotepart")
def cli() -> None:
    """Record, value and share the contributions behind AI models, in a signed Merkle log."""


@cli.command("init")
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


@cli.command("verify")
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
        "seconds": round(elapsed, 3),
    }
    if as_json:
        emit_json(document)
    else:
        click.echo(
            f"OK: {report.tree_size} entries, {report.signatures_checked} signatures, "
            f"{report.interior_nodes_checked} tree nodes, {report.checkpoints_checked} checkpoints "
            f"and the projections check out\nroot {report.root_hash.hex()}"
        )


@cli.command("rebuild")
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


cli.add_command(log_group)
cli.add_command(demo_command)


def main() -> None:
    cli(prog_name="quotepart")


for command in (
    party_group,
    asset_group,
    contribute_command,
    run_group,
    lineage_command,
    export_group,
    ingest_group,
    *SHARING_COMMANDS,
    report_command,
):
    cli.add_command(command)
