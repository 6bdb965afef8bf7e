"""`quotepart usage consume`: a durable NATS JetStream pull consumer feeding signed batches.

Each message is one CloudEvent; a message is acknowledged only once the batch holding it
is committed, so a killed consumer loses nothing (JetStream delivers it again, the
ingester drops what it already recorded). Progress lines go to stderr, one per batch;
the summary goes to stdout (or JSON with --json). See docs/metering-scale-out.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import BinaryIO

import click
import orjson

from quotepart.cli._base import json_option, load_workspace, workspace_options
from quotepart.cli._ingested import report_ingested
from quotepart.metering import Rejected
from quotepart.metering.nats import (
    DEFAULT_ACK_WAIT_S,
    DEFAULT_MAX_WAIT_S,
    BatchDone,
    ConsumeOptions,
)


@click.command("consume")
@click.argument("url")
@click.option("--stream", required=True, help="The JetStream stream holding the events.")
@click.option("--subject", required=True, help="Subject (filter) to consume, e.g. 'usage.>'.")
@click.option(
    "--durable",
    default=None,
    help="Durable consumer name; processes giving the same name share the work "
    "[default: quotepart-<stream>].",
)
@click.option("--service", default=None, help="Only this service's meters (default: all).")
@click.option("--by", default=None, help="Signing party (default: each service's operator).")
@click.option("--batch-size", type=click.IntRange(1, 1 << 20), default=10_000, show_default=True)
@click.option(
    "--max-wait",
    "max_wait_s",
    type=click.FloatRange(0.001, 60),
    default=DEFAULT_MAX_WAIT_S,
    show_default=True,
    help="Seconds after a batch's first event before it is committed, full or not.",
)
@click.option(
    "--max-events",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many messages (default: run until stopped).",
)
@click.option(
    "--idle-exit",
    "idle_exit_s",
    type=click.FloatRange(0.001),
    default=None,
    help="Stop after this many seconds without a message (default: never).",
)
@click.option(
    "--ack-wait",
    "ack_wait_s",
    type=click.FloatRange(1),
    default=DEFAULT_ACK_WAIT_S,
    show_default=True,
    help="Seconds before JetStream delivers an unacknowledged message again (new consumers).",
)
@click.option(
    "--create/--no-create",
    default=True,
    show_default=True,
    help="Create the stream (capturing --subject) and the durable consumer when missing.",
)
@click.option(
    "--reject",
    "reject_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append rejected events here, one JSON line each with its stream sequence and reason.",
)
@workspace_options
@json_option
def consume_command(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    url: str,
    stream: str,
    subject: str,
    durable: str | None,
    service: str | None,
    by: str | None,
    batch_size: int,
    max_wait_s: float,
    max_events: int | None,
    idle_exit_s: float | None,
    ack_wait_s: float,
    create: bool,
    reject_path: Path | None,
) -> None:
    """Record the CloudEvents published to a NATS JetStream stream at URL (nats://HOST:PORT).

    Runs a durable pull consumer: batches are committed when full or --max-wait seconds
    after their first event, and their messages acknowledged only then. SIGTERM or
    Ctrl-C finishes the batch being committed and hands the rest back. Bad events are
    reported and terminated (never delivered again). Exits 0, or 1 when some were rejected.
    """
    options = ConsumeOptions(
        url, stream, subject, durable=durable, batch_size=batch_size, max_wait_s=max_wait_s,
        max_events=max_events, idle_exit_s=idle_exit_s, ack_wait_s=ack_wait_s, create=create,
    )  # fmt: skip
    options.check()  # before opening the workspace
    reject_file: BinaryIO | None = None
    acknowledged = 0

    def on_reject(rejected: Rejected) -> None:
        if reject_file is not None:
            line = {"position": rejected.position, "reason": rejected.reason}
            reject_file.write(
                orjson.dumps(line) + b"\t" + rejected.raw.replace(b"\n", b" ") + b"\n"
            )
            reject_file.flush()

    def on_batch(done: BatchDone) -> None:
        nonlocal acknowledged
        acknowledged += done.events
        if as_json:
            return
        parts = [f"{done.recorded:,} recorded"]
        if done.duplicates:
            parts.append(f"{done.duplicates:,} duplicate(s)")
        if done.rejected:
            parts.append(f"{done.rejected:,} rejected")
        if done.redelivered:
            parts.append(f"{done.redelivered:,} redelivered")
        click.echo(
            f"{time.strftime('%H:%M:%S')} batch of {done.events:,}: {', '.join(parts)}; "
            f"{acknowledged:,} acknowledged",
            err=True,
        )

    try:
        if reject_path is not None:
            reject_file = reject_path.open("ab")
        with load_workspace(workspace_dir, database_url) as ws:
            click.echo(
                f"consuming {subject} of stream {stream} at {url} as "
                f"{options.durable_name} (Ctrl-C stops)",
                err=True,
            )
            result = ws.consume_usage(
                options, service=service, by=by, on_reject=on_reject, on_batch=on_batch
            )
    finally:
        if reject_file is not None:
            reject_file.close()
    report_ingested(
        result.ingested,
        as_json=as_json,
        reject_path=reject_path,
        summary=result.summary(),
        extra={
            "acknowledged": result.acknowledged,
            "terminated": result.terminated,
            "handed_back": result.handed_back,
            "redelivered": result.redelivered,
            "stopped_by": result.stopped_by,
        },
        batches=len(result.ingested.batches),
        position=" (stream sequence)",
    )
