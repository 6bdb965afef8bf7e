"""`quotepart revenue|policy|consent|valuation|share|statement|verify-statement`: fair sharing."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from quotepart.cli._base import (
    echo_text,
    emit_json,
    emit_rows,
    json_option,
    load_workspace,
    read_json,
    read_json_object,
    shown,
    stderr_console,
    workspace_options,
)
from quotepart.errors import InputError
from quotepart.ids import parse_timestamp
from quotepart.log.kinds import (
    MISSING_VALUATION,
    NEGATIVE_VALUES,
    UPSTREAM_MODES,
    WEIGHTINGS,
    RevenueRecorded,
)
from quotepart.money import format_amount, parse_ratio
from quotepart.sharing import verify_statement
from quotepart.store.keyfolder import write_private_file


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key or not item:
            raise InputError(f"{what} {value!r} is not NAME=VALUE", hint=f"e.g. --{what} data=4/5")
        pairs[key] = item
    return pairs


# ----------------------------------------------------------------- revenue


@click.group("revenue")
def revenue_group() -> None:
    """Record and list revenue earned by models and services."""


@revenue_group.command("record")
@click.argument("asset")
@click.argument("amount")
@click.argument("currency")
@click.option("--period", required=True, help="2026, 2026-Q1 or 2026-03.")
@click.option("--source", required=True, help="Where the money came from (invoice, payout id).")
@click.option("--by", "by", required=True, help="The party recording it (its key is held here).")
@workspace_options
@json_option
def revenue_record(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    asset: str,
    amount: str,
    currency: str,
    period: str,
    source: str,
    by: str,
) -> None:
    """Record AMOUNT (major units, e.g. 1234.56) of CURRENCY earned by ASSET (model or service)."""
    with load_workspace(workspace_dir, database_url) as ws:
        revenue = ws.record_revenue(
            ws.resolve_asset(asset),
            amount,
            currency,
            period=period,
            source=source,
            by=ws.resolve_party(by),
        )
    if as_json:
        emit_json({"revenue": str(revenue)})
    else:
        click.echo(str(revenue))


@revenue_group.command("list")
@workspace_options
@json_option
def revenue_list(workspace_dir: Path, database_url: str | None, as_json: bool) -> None:
    """List recorded revenue."""
    with load_workspace(workspace_dir, database_url) as ws:
        rows = []
        for _, entry in ws.revenue_entries():
            body = entry.body_as(RevenueRecorded)
            rows.append(
                {
                    "revenue": str(body.revenue),
                    "asset": str(body.asset),
                    "period": str(body.period),
                    "amount_minor": body.amount_minor,
                    "amount": format_amount(body.amount_minor, body.currency),
                    "currency": body.currency,
                    "source": body.source,
                }
            )
    emit_rows(
        rows,
        lambda row: (
            f"{row['revenue']}  {row['period']}  {row['amount']} {row['currency']}  {row['asset']}"
        ),
        as_json=as_json,
    )


# ------------------------------------------------------------------ policy


@click.group("policy")
def policy_group() -> None:
    """Set how a model's or service's revenue is shared."""


@policy_group.command("set")
@click.argument("asset")
@click.option("--pool", required=True, help="Contributors' part of the revenue, e.g. 1/5.")
@click.option(
    "--role", "roles", multiple=True, required=True, help="ROLE=RATIO of the pool, repeated."
)
@click.option(
    "--weighting",
    "weightings",
    multiple=True,
    help=f"ROLE=HOW, HOW one of {', '.join(sorted(WEIGHTINGS))} (default valuation).",
)
@click.option(
    "--negative-values",
    type=click.Choice(sorted(NEGATIVE_VALUES)),
    default="clip",
    help="clip (shift is refused for new policies: a harmful sybil input games it).",
)
@click.option("--missing-valuation", type=click.Choice(sorted(MISSING_VALUATION)), default="refuse")
@click.option("--declared", "declared", multiple=True, help="ASSET=WEIGHT for declared weighting.")
@click.option(
    "--floor",
    default="0",
    help="Least ratio of a role an input (or party) gets, if valued above twice its error.",
)
@click.option("--cap", default="1", help="Most ratio of a role an input (or party) gets.")
@click.option(
    "--per",
    type=click.Choice(["party", "input"]),
    default=None,
    help="Weigh, clip, floor and cap per registrant (party) or per asset (input); "
    "default party when a role is valued, else input.",
)
@click.option("--upstream", type=click.Choice(sorted(UPSTREAM_MODES)), default="dilute")
@click.option("--upstream-share", default="0", help="Per ancestor, with --upstream fixed.")
@click.option(
    "--minimum-payout", type=int, default=0, help="Minor units; smaller balances carry over."
)
@click.option("--operator", default=None, help="Who keeps the rest (default: --by).")
@click.option("--by", "by", required=True, help="The party setting the policy.")
@workspace_options
def policy_set(
    workspace_dir: Path,
    database_url: str | None,
    asset: str,
    pool: str,
    roles: tuple[str, ...],
    weightings: tuple[str, ...],
    negative_values: str,
    missing_valuation: str,
    declared: tuple[str, ...],
    floor: str,
    cap: str,
    upstream: str,
    upstream_share: str,
    minimum_payout: int,
    per: str | None,
    operator: str | None,
    by: str,
) -> None:
    """Set the sharing policy of ASSET (a model or service); it replaces the previous one."""
    role_ratios = {
        role: parse_ratio(ratio, what=f"--role {role}")
        for role, ratio in _pairs(roles, "role").items()
    }
    weighting = dict.fromkeys(role_ratios, "valuation") | _pairs(weightings, "weighting")
    pool_ratio = parse_ratio(pool, what="--pool")  # bad input is reported before lookups
    with load_workspace(workspace_dir, database_url) as ws:
        index = ws.set_policy(
            ws.resolve_asset(asset),
            pool=pool_ratio,
            roles=role_ratios,
            weighting=weighting,
            negative_values=negative_values,
            missing_valuation=missing_valuation,
            declared={
                ws.resolve_asset(a): parse_ratio(w, what=f"--declared {a}")
                for a, w in _pairs(declared, "declared").items()
            },
            floor=parse_ratio(floor, what="--floor"),
            cap=parse_ratio(cap, what="--cap"),
            upstream=upstream,
            upstream_share=parse_ratio(upstream_share, what="--upstream-share"),
            minimum_payout=minimum_payout,
            per=per,
            operator=ws.resolve_party(operator) if operator else None,
            by=ws.resolve_party(by),
        )
    click.echo(f"policy recorded as entry {index}")


# ----------------------------------------------------------------- consent


@click.group("consent")
def consent_group() -> None:
    """Grant or withdraw a contributor's consent to use an asset."""


def _consent(action: str) -> click.Command:
    @click.command(action)
    @click.argument("party")
    @click.argument("asset")
    @click.option(
        "--effective", default=None, help="RFC 3339 UTC time it takes effect (default now)."
    )
    @workspace_options
    def command(
        workspace_dir: Path, database_url: str | None, party: str, asset: str, effective: str | None
    ) -> None:
        moment: datetime | None = parse_timestamp(effective) if effective else None
        with load_workspace(workspace_dir, database_url) as ws:
            method = ws.grant_consent if action == "grant" else ws.withdraw_consent
            index = method(ws.resolve_party(party), ws.resolve_asset(asset), effective=moment)
        click.echo(f"consent {action} recorded as entry {index}")

    command.help = (
        f"Record that PARTY {'grants' if action == 'grant' else 'withdraws'} consent for ASSET."
    )
    return command


consent_group.add_command(_consent("grant"))
consent_group.add_command(_consent("withdraw"))


# --------------------------------------------------------------- valuation


@click.group("valuation")
def valuation_group() -> None:
    """Record contribution values of a model's inputs."""


@valuation_group.command("record")
@click.argument("model")
@click.argument("values_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--method", required=True)
@click.option("--evaluations", type=int, required=True)
@click.option("--seed", type=int, default=None)
@click.option("--by", "by", required=True)
@workspace_options
def valuation_record(
    workspace_dir: Path,
    database_url: str | None,
    model: str,
    values_file: Path,
    method: str,
    evaluations: int,
    seed: int | None,
    by: str,
) -> None:
    """Record VALUES_FILE ({"sha256:…": "0.12", …}) as MODEL's valuation."""
    values = read_json(
        values_file.read_text,
        unreadable=f"cannot read values file {values_file}",
        hint="pass a JSON file",
    )
    if not isinstance(values, dict):
        raise InputError(
            f"{values_file} is not an object of asset -> value", hint='{"sha256:…": "0.12"}'
        )
    with load_workspace(workspace_dir, database_url) as ws:
        index = ws.record_valuation(
            ws.resolve_asset(model),
            {ws.resolve_asset(a): str(v) for a, v in values.items()},
            method=method,
            evaluations=evaluations,
            seed=seed,
            by=ws.resolve_party(by),
        )
    click.echo(f"valuation recorded as entry {index}")


# ------------------------------------------------------------------- share


@click.command("share")
@click.argument("revenue")
@click.option(
    "--by", "by", default=None, help="Who signs the allocation (default: who recorded the revenue)."
)
@workspace_options
@json_option
def share_command(
    workspace_dir: Path, database_url: str | None, as_json: bool, revenue: str, by: str | None
) -> None:
    """Compute and record the exact allocation of REVENUE through the lineage."""
    with load_workspace(workspace_dir, database_url) as ws:
        shared = ws.share(revenue, by=ws.resolve_party(by) if by else None)
        names = {str(p.party): p.name for p in ws.parties()}
    allocation = shared.allocation
    if as_json:
        emit_json(
            {
                "revenue": allocation.revenue,
                "currency": allocation.currency,
                "total_minor": allocation.total_minor,
                "entry": shared.leaf_index,
                "new": shared.new,
                "amounts": {str(p): a for p, a in allocation.amounts.items()},
                "notes": allocation.notes,
            }
        )
        return
    console = stderr_console()
    if not shared.new:
        console.print(shown(f"{allocation.revenue} was shared before (entry {shared.leaf_index})."))
    table = Table(
        title=shown(
            f"{allocation.revenue}: {format_amount(allocation.total_minor, allocation.currency)} {allocation.currency}"
        )
    )
    table.add_column("party")
    table.add_column("name")
    table.add_column("amount", justify="right")
    for party, amount in sorted(allocation.amounts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(  # names are what parties typed: shown as text, never as markup
            str(party), shown(names.get(str(party), "")), format_amount(amount, allocation.currency)
        )
    Console(highlight=False).print(table)
    for note in allocation.notes:
        console.print(shown(f"note: {note}"))


# --------------------------------------------------------------- statement


@click.command("statement")
@click.argument("party", metavar="PARTY")
@click.option("--period", required=True, help="2026, 2026-Q1 or 2026-03.")
@click.option("--csv", "as_csv", is_flag=True, help="One CSV row per line.")
@click.option(
    "--proof", is_flag=True, help="A self-contained file for `quotepart verify-statement`."
)
@workspace_options
@json_option
def statement_command(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    party: str,
    period: str,
    as_csv: bool,
    proof: bool,
) -> None:
    """What PARTY earned in a period, each line traced to the entries behind it."""
    with load_workspace(workspace_dir, database_url) as ws:
        party_id = ws.resolve_party(party)
        if proof:
            emit_json(ws.statement_proof(party_id, period))
            return
        statement = ws.statement(party_id, period)
    if as_json:
        emit_json(statement.to_json())
    elif as_csv:
        sys.stdout.write(statement.to_csv())
    else:
        names = statement.names
        echo_text(f"{names.label(str(party_id))}, {period}")
        for item in statement.items:
            echo_text(
                f"  {item.revenue} ({item.period}): {format_amount(item.amount_minor, item.currency)} {item.currency}"
            )
            for line in item.lines:
                at = "" if line.at is None else f" at {names.label(str(line.at), width=24)}"
                path = " > ".join(
                    f"{hop.what} {names.label(hop.ref, width=24)}" for hop in line.trace
                )
                echo_text(
                    f"    {format_amount(line.amount_minor, item.currency):>12}  {line.reason}{at}: {path}"
                )
                for signed in item.signed_for(line):
                    echo_text(f"{'':>18}{signed.describe(names)}")
        for currency, amount in statement.totals.items():
            echo_text(f"  total: {format_amount(amount, currency)} {currency}")
        if not statement.items:
            echo_text(f"  no allocation to {names.name(str(party_id)) or party_id} in {period}")
        if statement.claims:
            echo_text("  claims against your registrations:")
            for claim in statement.claims:
                echo_text(
                    f"    {names.label(claim.asset, width=24)}: claimed by "
                    f"{names.label(claim.claimant)} (entry {claim.leaf_index}): {claim.reason}"
                )


@click.command("verify-statement")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--key", default=None, help="The log's verifier key you trust (from its operator).")
@json_option
def verify_statement_command(file: Path, key: str | None, as_json: bool) -> None:
    """Check a statement file offline: proofs, checkpoint, signatures, and the amounts, recomputed."""
    document = read_json_object(
        sys.stdin.read if str(file) == "-" else file.read_text,
        unreadable=f"cannot read statement file {file}",
        not_object=f"{file} is not a statement file",
        hint="pass the file `quotepart statement --proof` wrote",
    )
    verified = verify_statement(document, trusted_key=key)
    if as_json:
        emit_json(
            {
                "party": str(verified.party),
                "party_name": verified.party_name,
                "period": str(verified.period),
                "totals": verified.totals,
                "paid_at": verified.paid_at,
                "allocations": verified.allocations,
                "entries": verified.entries,
                "tree_size": verified.tree_size,
                "origin": verified.origin,
                "verifier_key": verified.verifier_key,
            }
        )
        return
    totals = (
        ", ".join(f"{format_amount(a, c)} {c}" for c, a in verified.totals.items()) or "nothing"
    )
    party = (
        f"{verified.party_name} ({verified.party})" if verified.party_name else str(verified.party)
    )
    echo_text(
        f"OK: {party} earned {totals} in {verified.period}, recomputed from "
        f"{verified.allocations} allocation(s) and {verified.entries} entries included in "
        f"{verified.origin} at size {verified.tree_size}"
    )
    for asset, name in verified.paid_at.items():
        echo_text(f"  paid at {name} ({asset})" if name else f"  paid at {asset}")
    if key is None:
        stderr_console().print(
            f"checked against the key in the file: {verified.verifier_key}\n"
            "compare it with the key the log's operator publishes, or pass --key"
        )


# ------------------------------------------------------------------ payout


@click.group("payout")
def payout_group() -> None:
    """Export owed balances to a payment rail (SEPA pain.001, mobile-money CSV)."""


@payout_group.command("export")
@click.option("--period", required=True, help="Pay revenue booked up to the end of this period.")
@click.option("--currency", required=True)
@click.option(
    "--rail",
    type=click.Choice(["sepa", "mobile_money"]),
    default=None,
    help="Only this rail (default: every rail the payees' references ask for).",
)
@click.option("--by", "by", required=True, help="The party recording the payout.")
@click.option("--debtor-name", default=None, help="SEPA: the paying account's holder.")
@click.option("--debtor-iban", default=None, help="SEPA: the paying account.")
@click.option("--debtor-bic", default=None)
@click.option("--minimum", type=int, default=None, help="Minor units (default: the policies').")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Copy the file here; with files of two rails, the rail is added to the name.",
)
@workspace_options
def payout_export(
    workspace_dir: Path,
    database_url: str | None,
    period: str,
    currency: str,
    rail: str | None,
    by: str,
    debtor_name: str | None,
    debtor_iban: str | None,
    debtor_bic: str | None,
    minimum: int | None,
    output: Path | None,
) -> None:
    """Write a payment file per rail for every balance owed; exporting again pays only what is owed since."""
    with load_workspace(workspace_dir, database_url) as ws:
        exported = ws.export_payout(
            period,
            currency,
            rail,
            by=ws.resolve_party(by),
            debtor_name=debtor_name,
            debtor_iban=debtor_iban,
            debtor_bic=debtor_bic,
            minimum_minor=minimum,
        )
    console = stderr_console()
    code = currency.upper()
    if not exported.files:
        console.print(f"nothing to pay for {exported.period} in {code}: no payout recorded")
    for file in exported.files:
        console.print(
            ("" if file.new else "exported before, nothing owed since; the same file again: ")
            + f"{file.payout} ({file.rail}): {len(file.paid)} payment(s), "
            f"{format_amount(sum(file.paid.values()), code)} {code}"
        )
    if exported.carried:
        console.print(f"{len(exported.carried)} balance(s) below the minimum carried over")
    for held in exported.held:
        echo_text(  # one unwrapped line per payee, for people and for grep
            f"carried: {held.name} ({held.reference or 'no reference'}), "
            f"{format_amount(held.amount_minor, code)} {code}: {held.reason}",
            err=True,
        )
    for file in exported.files:
        target = file.path
        if output is not None:
            target = (
                output
                if len(exported.files) == 1
                else output.with_name(f"{output.stem}-{file.rail}{file.path.suffix}")
            )
            write_private_file(target, file.content)  # names and IBANs: owner only
        click.echo(str(target))
