"""`quotepart export …` and `quotepart ingest …`: the log in PROV, OpenLineage and Croissant,
and OpenLineage events from existing pipelines into the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

import click

from quotepart.cli._base import (
    QuotepartGroup,
    emit_json,
    json_option,
    load_workspace,
    shown,
    stderr_console,
    workspace_options,
)
from quotepart.errors import InputError
from quotepart.provenance.export import (
    PROV_FORMATS,
    export_croissant,
    export_openlineage,
    export_prov,
)
from quotepart.provenance.ingest import ingest_openlineage

_OUT_OPTION = click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to FILE instead of stdout.",
)


def _write(text: str, out: Path | None) -> None:
    """The document on stdout, or in `out` with a note on stderr."""
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write {out}: {exc.strerror}", hint="choose a writable path"
        ) from exc
    stderr_console().print(f"wrote {out}")


@click.group("export", cls=QuotepartGroup)
def export_group() -> None:
    """Write the log in the standards other tools read: W3C PROV, OpenLineage, Croissant."""


@export_group.command("prov")
@click.argument("asset", required=False)
@click.option("--all", "whole", is_flag=True, help="Export the whole log.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(PROV_FORMATS),
    default="json",
    show_default=True,
    help="PROV-JSON or PROV-JSONLD.",
)
@_OUT_OPTION
@workspace_options
def prov_command(
    workspace_dir: Path,
    database_url: str | None,
    asset: str | None,
    whole: bool,
    format_: str,
    out: Path | None,
) -> None:
    """W3C PROV of ASSET's upstream lineage (a digest or a unique name), or of the whole log with --all."""
    if (asset is None) != whole:
        raise InputError(
            "name an ASSET or pass --all, not both" if whole else "name an ASSET or pass --all",
            hint="e.g. `quotepart export prov sha256:<hex>` or `quotepart export prov --all`",
        )
    with load_workspace(workspace_dir, database_url) as ws:
        text = export_prov(ws.provenance, asset, format=format_)
    _write(text if text.endswith("\n") else text + "\n", out)


@export_group.command("openlineage")
@click.argument("run_id", required=False)
@click.option("--all", "whole", is_flag=True, help="Every run (the default without RUN_ID).")
@_OUT_OPTION
@workspace_options
def openlineage_command(
    workspace_dir: Path,
    database_url: str | None,
    run_id: str | None,
    whole: bool,
    out: Path | None,
) -> None:
    """OpenLineage RunEvents (START, then COMPLETE or FAIL) of RUN_ID or of every run, as JSON lines."""
    if run_id is not None and whole:
        raise InputError(
            "name a RUN_ID or pass --all, not both", hint="RUN_ID looks like run:<ULID>"
        )
    with load_workspace(workspace_dir, database_url) as ws:
        text = export_openlineage(ws.provenance, None if run_id is None else [run_id])
    _write(text, out)


@export_group.command("croissant")
@click.argument("asset")
@_OUT_OPTION
@workspace_options
def croissant_command(
    workspace_dir: Path, database_url: str | None, asset: str, out: Path | None
) -> None:
    """Croissant 1.0 JSON-LD of a dataset, cohort or labelling batch (a digest or a unique name)."""
    with load_workspace(workspace_dir, database_url) as ws:
        text = export_croissant(ws.provenance, asset)
    _write(text, out)


@click.group("ingest", cls=QuotepartGroup)
def ingest_group() -> None:
    """Record the runs that other tools reported (OpenLineage events)."""


def _read_events(source: BinaryIO) -> tuple[list[Any], list[int]]:
    """The events of a JSON array or of JSON lines, with the line each starts on.

    A JSON array is one document: it is read whole or not at all. JSON lines are read
    one by one, so a broken line is reported (by the ingest) and the others still count.
    """
    try:
        text = source.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the events are not UTF-8 text: {exc}", hint="give JSON lines or a JSON array"
        ) from exc
    if text.lstrip().startswith("["):
        try:
            events = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"the JSON array of events is malformed: {exc}",
                hint="fix the file, or give one event per line (JSON lines) so that broken "
                "events are skipped one by one",
            ) from exc
        return list(events), []
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    return [line for _, line in lines], [number for number, _ in lines]


@ingest_group.command("openlineage")
@click.argument("source", metavar="FILE", type=click.File("rb"))
@click.option(
    "--operator",
    required=True,
    help="The party (party:<ULID>) the runs are recorded for; its key must be in this workspace.",
)
@workspace_options
@json_option
def ingest_openlineage_command(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    source: BinaryIO,
    operator: str,
) -> None:
    """Record the runs in FILE (OpenLineage events: JSON lines or a JSON array; - for stdin).

    Runs already in the log are left as they are, so ingesting a file again is harmless.
    Events that cannot become a run are listed on stderr with the reason.
    """
    events, line_numbers = _read_events(source)
    if not events:
        raise InputError(
            "FILE holds no events", hint="give one OpenLineage event per line, or a JSON array"
        )
    with load_workspace(workspace_dir, database_url) as ws:
        report = ingest_openlineage(ws.provenance, events, operator=ws.resolve_party(operator))

    def place(position: int | None) -> str:
        if position is None:
            return "run"
        return f"line {line_numbers[position]}" if line_numbers else f"event {position + 1}"

    if as_json:
        document = report.to_json()
        for item in document["skipped"]:
            item["where"] = place(item["position"])
        emit_json(document)
    else:
        for run in report.recorded:
            click.echo(str(run))
    console = stderr_console()
    for skipped in report.skipped:
        console.print(shown(f"Skipped {place(skipped.position)}: {skipped.reason}"))
    console.print(
        f"recorded {len(report.recorded)} run(s) and {len(report.assets)} new dataset(s); "
        f"{len(report.already_recorded)} run(s) already in the log; "
        f"{len(report.skipped)} skipped",
        markup=False,
    )
