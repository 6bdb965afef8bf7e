"""`quotepart demo`: the story of `quotepart.demo`, with a progress bar and who got paid what."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from quotepart.cli._base import resume_collector, shown, stderr_console, warnings_to_stderr
from quotepart.errors import InputError


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
    """A cooperative's model earns money; value, share, pay, report and verify it, end to end."""
    # Imported here: the story brings scikit-learn and its data, which `--help` must not load.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from quotepart.demo import PERIOD, STEPS, run_story
    from quotepart.money import format_amount
    from quotepart.workspace import init_workspace

    console = stderr_console()
    out = Console(highlight=False, soft_wrap=True, markup=False)  # data, never markup
    folder = workspace_dir or Path(tempfile.mkdtemp(prefix="quotepart-demo-")) / "workspace"
    if (folder / "workspace.json").exists():
        raise InputError(
            f"{folder} already holds a workspace; the demo would record its revenue a second time",
            hint="explore it with `quotepart statement`, `quotepart report`…, or pass a new --workspace",
        )
    output = folder.parent / f"{folder.name}-outputs"
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # The story's copied cohort is flagged (an OverlapWarning): a `Warning:` line, as elsewhere.
    with init_workspace(folder, database_url=database_url) as ws, warnings_to_stderr():
        resume_collector()
        console.print(f"workspace {folder} ({ws.database_url})", markup=False)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            console=console, transient=True, disable=not console.is_terminal,
        ) as bar:  # fmt: skip
            task = bar.add_task("", total=len(STEPS))

            def on_step(number: int, description: str) -> None:
                bar.update(task, completed=number, description=description)

            result = run_story(ws, output, out.print, progress=False, on_step=on_step)
        table = Table(title=f"{PERIOD}: who gets paid what (EUR)")
        table.add_column("party")
        table.add_column("amount", justify="right")
        for name, amount in sorted(result.amounts.items(), key=lambda kv: -kv[1]):
            table.add_row(shown(name), format_amount(amount, "EUR"))
        out.print(table)
    out.print(f"\ndone in {time.perf_counter() - started:.0f} s. Wrote:")
    for path in result.files:
        out.print(f"  {path}", markup=False)
    out.print(
        f"\nexplore: quotepart statement PARTY --period {PERIOD} --workspace {folder}", markup=False
    )
