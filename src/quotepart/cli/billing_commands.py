"""`quotepart usage tariff|bill|receipt` and `quotepart verify-receipt`: bills and receipts.

A consumer's identifier is read from `--consumer` or QUOTEPART_CONSUMER, pseudonymised
under every key epoch of the workspace, and never printed nor written into the receipt.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from quotepart.cli._base import (
    emit_json,
    emit_rows,
    json_option,
    load_workspace,
    read_json_object,
    workspace_options,
)
from quotepart.errors import InputError
from quotepart.money import format_amount


def _moment(text: str | None) -> datetime | None:
    """A date (its first instant, UTC) or an RFC 3339 timestamp with its offset."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text + ("T00:00:00+00:00" if len(text) == 10 else ""))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(
            f"not a date or timestamp: {text!r}",
            hint="write 2026-03-01 or 2026-03-01T00:00:00Z (with its UTC offset)",
        )
    return moment.astimezone(UTC)


@click.command("tariff")
@click.argument("service")
@click.argument("meter")
@click.argument("unit_price")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. EUR.")
@click.option("--effective", default=None, help="From when (YYYY-MM-DD or RFC 3339; default: now).")
@click.option("--by", default=None, help="Signing party (default: the service's operator).")
@workspace_options
@json_option
def usage_tariff(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    service: str,
    meter: str,
    unit_price: str,
    currency: str,
    effective: str | None,
    by: str | None,
) -> None:
    """Set UNIT_PRICE (major units per unit) of METER of SERVICE in a currency, from a date."""
    with load_workspace(workspace_dir, database_url) as ws:
        index = ws.set_tariff(
            service, meter, unit_price, currency, effective=_moment(effective), by=by
        )
    if as_json:
        emit_json({"meter": meter, "unit_price": unit_price, "currency": currency, "entry": index})
    else:
        click.echo(f"tariff of {meter}: {unit_price} {currency} per unit (entry {index})")


@click.command("tariffs")
@click.argument("service")
@workspace_options
@json_option
def usage_tariffs(
    workspace_dir: Path, database_url: str | None, as_json: bool, service: str
) -> None:
    """List the tariffs of SERVICE."""
    with load_workspace(workspace_dir, database_url) as ws:
        rows = [
            {
                "meter": t.meter,
                "currency": t.currency,
                "unit_price": t.unit_price,
                "effective": t.effective,
                "entry": t.leaf_index,
            }
            for t in ws.tariffs(service)
        ]
    emit_rows(
        rows,
        lambda r: (
            f"{r['meter']}\t{r['unit_price']} {r['currency']}\tfrom {r['effective']}"
            f"\t(entry {r['entry']})"
        ),
        as_json=as_json,
    )


@click.command("bill")
@click.argument("service")
@click.option("--period", required=True, help="A month (2026-03), quarter or year.")
@click.option("--currency", required=True, help="The tariffs' currency, e.g. EUR.")
@click.option(
    "--evidence",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The invoice or payment evidence: its SHA-256 goes into the bill and the revenue.",
)
@click.option("--by", default=None, help="Signing party (default: the service's operator).")
@click.option(
    "--prepare-receipts",
    is_flag=True,
    help="Then keep the trees receipts read (once, so that no receipt reads a whole batch).",
)
@workspace_options
@json_option
def usage_bill(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    service: str,
    period: str,
    currency: str,
    evidence: Path | None,
    by: str | None,
    prepare_receipts: bool,
) -> None:
    """Bill SERVICE's metered usage in a period at the tariffs in force; it closes the period."""
    with load_workspace(workspace_dir, database_url) as ws:
        bill = ws.bill_metered_usage(service, period, currency=currency, evidence=evidence, by=by)
        if prepare_receipts:
            prepared = ws.prepare_receipts(service, period)
            click.echo(f"receipts prepared: {prepared:,} batch tree(s) kept", err=True)
    body = bill.body
    if as_json:
        emit_json(
            {
                "revenue": str(bill.revenue),
                "entry": bill.leaf_index,
                "bill": body.to_body(),
                "total": format_amount(body.total_minor, body.currency),
            }
        )
    else:
        click.echo(bill.summary())


@click.command("receipt")
@click.argument("consumer_argument", metavar="[CONSUMER]", required=False)
@click.option(
    "--consumer",
    envvar="QUOTEPART_CONSUMER",
    default=None,
    help="The consumer's own identifier, instead of CONSUMER (or QUOTEPART_CONSUMER, which "
    "keeps it out of the shell's history and process list); never written out.",
)
@click.option("--period", required=True, help="The billed period.")
@click.option("--service", default=None, help="The service (default: the one billed then).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the receipt here (default: stdout).",
)
@workspace_options
def usage_receipt(
    workspace_dir: Path,
    database_url: str | None,
    consumer_argument: str | None,
    consumer: str | None,
    period: str,
    service: str | None,
    output: Path | None,
) -> None:
    """A consumer's receipt of a bill: its events, proved, for `quotepart verify-receipt`."""
    if consumer_argument is not None and consumer is not None and consumer_argument != consumer:
        raise InputError(
            "two different consumers: CONSUMER and --consumer (or QUOTEPART_CONSUMER)",
            hint="name the consumer once",
        )
    consumer = consumer_argument if consumer_argument is not None else consumer
    if consumer is None:
        raise InputError(
            "which consumer? none was named",
            hint="quotepart usage receipt CONSUMER --period P (or --consumer, or "
            "QUOTEPART_CONSUMER)",
        )
    with load_workspace(workspace_dir, database_url) as ws:
        receipt = ws.usage_receipt(consumer, period, service=service)
    text = json.dumps(receipt, indent=1, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise InputError(
            f"cannot write {output}: {exc.strerror}", hint="choose a writable path"
        ) from exc
    click.echo(f"receipt of {len(receipt['events']):,} event(s) written to {output}", err=True)


@click.command("verify-receipt")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--key", default=None, help="The log's verifier key you trust (from its operator).")
@json_option
def verify_receipt_command(file: Path, key: str | None, as_json: bool) -> None:
    """Check a usage receipt offline: proofs, checkpoint, signatures, and the billed quantities."""
    from quotepart.metering.receipts import verify_receipt

    document = read_json_object(
        sys.stdin.read if str(file) == "-" else file.read_text,
        unreadable=f"cannot read receipt file {file}",
        not_object=f"{file} is not a receipt file",
        hint="pass the file `quotepart usage receipt` wrote",
    )
    verified = verify_receipt(document, trusted_key=key)
    if as_json:
        emit_json(
            {
                "service": str(verified.service),
                "period": str(verified.period),
                "revenue": verified.revenue,
                "quantities": verified.quantities,
                "unit_prices": verified.unit_prices,
                "currency": verified.currency,
                "events": verified.events,
                "tree_size": verified.tree_size,
                "origin": verified.origin,
                "verifier_key": verified.verifier_key,
            }
        )
        return
    quantities = ", ".join(
        f"{q} {m} at {verified.unit_prices.get(m, '?')} {verified.currency}"
        for m, q in verified.quantities.items()
    )
    click.echo(
        f"OK: {verified.events:,} event(s) of {verified.service} in {verified.period}, "
        f"billed as {quantities or 'nothing'} ({verified.revenue}); proved in "
        f"{verified.origin} at size {verified.tree_size:,}"
    )
    if key is None:  # the file's own key proves nothing about which log it came from
        click.echo(
            f"Note: checked against the key in the file, {verified.verifier_key}; compare it "
            "with the key the log's operator publishes, or pass it with --key",
            err=True,
        )


__all__ = [
    "usage_bill",
    "usage_receipt",
    "usage_tariff",
    "usage_tariffs",
    "verify_receipt_command",
]
