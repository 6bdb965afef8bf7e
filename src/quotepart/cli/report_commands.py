"""`quotepart report SERVICE_OR_MODEL --period P`: publish the fair value share report."""

from __future__ import annotations

from pathlib import Path

import click

from quotepart.cli._base import (
    emit_json,
    json_option,
    load_workspace,
    stderr_console,
    workspace_options,
)
from quotepart.ids import Period


@click.command("report")
@click.argument("asset", metavar="SERVICE_OR_MODEL")
@click.option("--period", required=True, help="2026, 2026-Q1 or 2026-03.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder to write into (default: ./report-<asset name>-<period>/).",
)
@click.option(
    "--by",
    "by",
    default=None,
    help="Who signs the report.published entry (default: who signed its first allocation).",
)
@click.option("--no-pdf", is_flag=True, help="Write report.json and report.html only.")
@workspace_options
@json_option
def report_command(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    asset: str,
    period: str,
    out_dir: Path | None,
    by: str | None,
    no_pdf: bool,
) -> None:
    """Publish the fair value share report of SERVICE_OR_MODEL (digest or name) for a period.

    Writes report.json, report.html (works offline) and report.pdf, and records their
    digests in the log, so the published report is provable. Prints the paths written.
    """
    the_period = Period.parse(period)  # refused before the workspace is opened
    with load_workspace(workspace_dir, database_url) as ws:
        signer = ws.resolve_party(by) if by else None
        files = ws.publish_report(asset, the_period, out_dir, by=signer, pdf=not no_pdf)
    paths = [files.json_path, files.html_path, *([files.pdf_path] if files.pdf_path else [])]
    if as_json:
        emit_json(
            {
                "json": str(files.json_path),
                "html": str(files.html_path),
                "pdf": None if files.pdf_path is None else str(files.pdf_path),
                "entry": files.leaf_index,
                "new": files.new,
                "pdf_skipped": files.pdf_skipped,
            }
        )
    else:
        for path in paths:
            click.echo(str(path))
    console = stderr_console()
    console.print(files.summary, markup=False, soft_wrap=True)
    if files.new:
        console.print(
            f"recorded as report.published, entry {files.leaf_index}", markup=False, soft_wrap=True
        )
    else:
        console.print(
            f"the same report was published before (entry {files.leaf_index}); nothing appended",
            markup=False,
            soft_wrap=True,
        )
    if files.pdf_skipped:
        console.print(f"PDF skipped: {files.pdf_skipped}", markup=False, soft_wrap=True)
