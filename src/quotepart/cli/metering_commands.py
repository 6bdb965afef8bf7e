"""`quotepart meter|usage`: declare meters, ingest CloudEvents, rotate the pseudonym key.

Events come one per line (JSON lines) or as a CloudEvents batch array, from a file or
stdin. A bad event is reported with its position and never stops the good ones; with
`--reject FILE` the bad events are written there, one per line, to fix and send again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import click
import orjson
from rich.progress import Progress, SpinnerColumn, TextColumn

from quotepart.cli._base import (
    emit_json,
    emit_rows,
    json_option,
    load_workspace,
    stderr_console,
    workspace_options,
)
from quotepart.cli._ingested import report_ingested
from quotepart.log.kinds import AGGREGATIONS
from quotepart.metering import Rejected


@click.group("meter")
def meter_group() -> None:
    """Declare how a service's CloudEvents are counted; list meters; rotate the pseudonym key."""


@meter_group.command("add")
@click.argument("service")
@click.argument("name")
@click.option("--event-type", required=True, help="The CloudEvents `type` this meter counts.")
@click.option(
    "--aggregation", required=True, type=click.Choice(sorted(AGGREGATIONS)), help="How to fold."
)
@click.option("--value-path", default=None, help="JSON path of the value, e.g. $.data.tokens.")
@click.option("--group-by", multiple=True, help="JSON path to group by (repeatable).")
@click.option(
    "--consumer-path", default="$.subject", show_default=True, help="Where the consumer id is."
)
@click.option("--by", default=None, help="Signing party (default: the service's operator).")
@workspace_options
@json_option
def meter_add(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    service: str,
    name: str,
    event_type: str,
    aggregation: str,
    value_path: str | None,
    group_by: tuple[str, ...],
    consumer_path: str,
    by: str | None,
) -> None:
    """Define meter NAME of SERVICE: which events it counts and how (signed, once)."""
    with load_workspace(workspace_dir, database_url) as ws:
        index = ws.define_meter(
            service, name, event_type=event_type, aggregation=aggregation,
            value_path=value_path, group_by=group_by, consumer_path=consumer_path, by=by,
        )  # fmt: skip
    if as_json:
        emit_json({"meter": name, "entry": index})
    else:
        click.echo(f"meter {name} defined (entry {index})")


@meter_group.command("list")
@click.argument("service")
@workspace_options
@json_option
def meter_list(workspace_dir: Path, database_url: str | None, as_json: bool, service: str) -> None:
    """The meters of SERVICE."""
    with load_workspace(workspace_dir, database_url) as ws:
        meters = ws.meters(service)
    rows = [
        {
            "name": meter.name,
            "event_type": meter.event_type,
            "aggregation": meter.aggregation,
            "value_path": meter.value_path or "",
            "group_by": " ".join(meter.group_by),
            "consumer_path": meter.consumer_path,
        }
        for meter in meters
    ]
    emit_rows(
        rows,
        lambda row: (
            f"{row['name']:<16} {row['aggregation']:<12} {row['event_type']:<32} "
            f"{row['value_path'] or '-':<20} consumer {row['consumer_path']}"
        ),
        as_json=as_json,
    )


@meter_group.command("rotate-key")
@workspace_options
@json_option
def meter_rotate_key(workspace_dir: Path, database_url: str | None, as_json: bool) -> None:
    """Start a new pseudonym key epoch (older keys stay, for receipts of older events)."""
    with load_workspace(workspace_dir, database_url) as ws:
        epoch = ws.rotate_usage_key()
    if as_json:
        emit_json({"epoch": epoch})
    else:
        click.echo(
            f"usage pseudonym key epoch {epoch} is now in use; copy keys/usage-{epoch}.key to "
            "every machine that ingests for this workspace"
        )


@click.group("usage")
def usage_group() -> None:
    """Ingest, bill and receipt the services' usage; set tariffs; release private statistics.

    Events come in as CloudEvents and are recorded in signed, Merkle-rooted batches.
    """


@usage_group.command("ingest")
@click.argument(
    "source", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@click.option("--service", default=None, help="Only this service's meters (default: all).")
@click.option("--by", default=None, help="Signing party (default: each service's operator).")
@click.option(
    "--reject",
    "reject_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the rejected events here, one JSON line each with its position and reason.",
)
@click.option("--batch-size", type=click.IntRange(1, 1 << 20), default=10_000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes that parse, pseudonymise and hash while this one writes.",
)
@workspace_options
@json_option
def usage_ingest(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    source: Path,
    service: str | None,
    by: str | None,
    reject_path: Path | None,
    batch_size: int,
    workers: int,
) -> None:
    """Record the CloudEvents in SOURCE (a file, or - for stdin; JSON lines or a batch array).

    Exits 0 when every event was recorded or was a duplicate, 1 when some were rejected.
    """
    reject_file: BinaryIO | None = None

    def on_reject(rejected: Rejected) -> None:
        if reject_file is not None:
            line = {"position": rejected.position, "reason": rejected.reason}
            reject_file.write(
                orjson.dumps(line)
                + b"\t"
                + rejected.raw.rstrip(b"\r\n").replace(b"\n", b" ")
                + b"\n"
            )

    stream: BinaryIO = sys.stdin.buffer if str(source) == "-" else source.open("rb")
    try:
        if reject_path is not None:
            reject_file = reject_path.open("wb")
        with (
            load_workspace(workspace_dir, database_url) as ws,
            Progress(
                SpinnerColumn(), TextColumn("{task.completed:,} events"),
                console=stderr_console(), transient=True, disable=as_json,
            ) as progress,
        ):  # fmt: skip
            task = progress.add_task("ingest", total=None)
            result = ws.ingest_usage(
                service, stream, by=by, batch_size=batch_size, on_reject=on_reject,
                progress=lambda done: progress.advance(task, done), workers=workers,
            )  # fmt: skip
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        if reject_file is not None:
            reject_file.close()
    report_ingested(result, as_json=as_json, reject_path=reject_path, summary=result.summary())


@click.group("service")
def service_group() -> None:
    """Register a service: an API endpoint backed by a model, whose usage is metered."""


@service_group.command("add")
@click.argument("name")
@click.option("--endpoint", required=True, help="Where the service answers (a URL).")
@click.option("--model", required=True, help="The model behind it (digest, prefix or name).")
@click.option("--by", required=True, help="The operator registering it.")
@click.option("--unit", default="request", show_default=True, help="What one use is.")
@workspace_options
@json_option
def service_add(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    name: str,
    endpoint: str,
    model: str,
    by: str,
    unit: str,
) -> None:
    """Register service NAME, backed by MODEL, operated by BY."""
    with load_workspace(workspace_dir, database_url) as ws:
        digest = ws.register_service(
            name=name, endpoint=endpoint, model=ws.resolve_asset(model), by=ws.resolve_party(by),
            unit=unit,
        )  # fmt: skip
    if as_json:
        emit_json({"service": str(digest), "name": name})
    else:
        click.echo(f"service {name} registered: {digest}")


# `usage budget` and `usage release`: differentially private statistics (privacy_commands)
from quotepart.cli.privacy_commands import usage_budget, usage_release  # noqa: E402

usage_group.add_command(usage_budget)
usage_group.add_command(usage_release)

# `usage consume`: a durable NATS JetStream pull consumer (consume_commands)
from quotepart.cli.consume_commands import consume_command  # noqa: E402

usage_group.add_command(consume_command)
from quotepart.cli.billing_commands import (  # noqa: E402 - the billing commands join `usage`
    usage_bill,
    usage_receipt,
    usage_tariff,
    usage_tariffs,
)

for _command in (usage_tariff, usage_tariffs, usage_bill, usage_receipt):
    usage_group.add_command(_command)
