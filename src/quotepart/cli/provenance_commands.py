"""`quotepart party|asset|contribute|run|lineage`: the provenance SDK from the shell."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from quotepart.cli._base import (
    echo_text,
    emit_json,
    emit_rows,
    json_option,
    load_workspace,
    read_json_object,
    warnings_to_stderr,
    workspace_options,
)
from quotepart.cli.rights_commands import delegation_row, names_of
from quotepart.errors import AlreadyRegisteredError, InputError
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import AGENT_TYPES, ASSET_KINDS, CONTRIBUTION_ROLES, PARTY_ROLES
from quotepart.money import parse_ratio
from quotepart.provenance import record_proof, verify_record_proof
from quotepart.provenance.tables import read_table
from quotepart.store.queries.provenance import OverlapRecord
from quotepart.workspace import Workspace

# ----------------------------------------------------------------- parties


@click.group("party")
def party_group() -> None:
    """Register and list parties (contributors, operators, consumers, auditors, coops)."""


@party_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(sorted(PARTY_ROLES)),
    default=["contributor"],
)
@click.option(
    "--type", "agent_type", type=click.Choice(sorted(AGENT_TYPES)), default="organisation"
)
@click.option("--payout", default=None, help="IBAN or mobile-money number (kept off the log).")
@workspace_options
@json_option
def party_add(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    name: str,
    roles: tuple[str, ...],
    agent_type: str,
    payout: str | None,
) -> None:
    """Register a party NAME with a new signing key kept in the workspace."""
    with load_workspace(workspace_dir, database_url) as ws, warnings_to_stderr():
        party = ws.register_party(name, roles=roles, agent_type=agent_type, payout_reference=payout)
    if as_json:
        emit_json({"party": str(party), "name": name, "roles": sorted(set(roles))})
    else:
        click.echo(str(party))


@party_group.command("payout")
@click.argument("party")
@click.argument("reference")
@workspace_options
def party_payout(workspace_dir: Path, database_url: str | None, party: str, reference: str) -> None:
    """Pay PARTY to REFERENCE (IBAN or E.164 number) from now on, signed by the party's own key."""
    with load_workspace(workspace_dir, database_url) as ws, warnings_to_stderr():
        leaf = ws.change_payout_reference(ws.resolve_party(party), reference)
    click.echo(str(leaf))


@party_group.command("list")
@workspace_options
@json_option
def party_list(workspace_dir: Path, database_url: str | None, as_json: bool) -> None:
    """List the registered parties."""
    with load_workspace(workspace_dir, database_url) as ws:
        rows = [
            {"party": str(p.party), "name": p.name, "roles": list(p.roles)} for p in ws.parties()
        ]
    emit_rows(
        rows,
        lambda row: f"{row['party']}  {row['name']}  ({', '.join(row['roles'])})",
        as_json=as_json,
    )


# ------------------------------------------------------------------ assets


@click.group("asset")
def asset_group() -> None:
    """Register, list, show and claim assets; prove that a record is in one."""


@asset_group.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True)
@click.option("--by", "by", required=True, help="The registering party (its key is held here).")
@click.option(
    "--kind",
    "asset_kind",
    type=click.Choice(sorted(ASSET_KINDS - {"service", "compute_grant"})),
    default="dataset",
)
@click.option("--table", is_flag=True, help="Read PATH as a table and digest its records.")
@click.option("--license", "license_id", default=None, help="SPDX licence id, e.g. CC-BY-4.0.")
@click.option("--creator", "creators", multiple=True)
@click.option("--description", default=None)
@click.option("--of", "derived_from", multiple=True, help="Digest of the asset it derives from.")
@workspace_options
@json_option
def asset_add(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    path: Path,
    name: str,
    by: str,
    asset_kind: str,
    table: bool,
    license_id: str | None,
    creators: tuple[str, ...],
    description: str | None,
    derived_from: tuple[str, ...],
) -> None:
    """Register the file, folder or table at PATH (the same content twice is one asset)."""
    data: Any = read_table(path) if table else path
    if not path.exists():  # reported before the lookup of --by
        raise InputError(f"cannot read {path}: no such file or folder", hint="check the path")
    with load_workspace(workspace_dir, database_url) as ws, warnings_to_stderr():
        caller = ws.resolve_party(by)
        try:
            digest = ws.register_data(
                data,
                name=name,
                by=caller,
                asset_kind=asset_kind,
                license=license_id,
                creators=creators,
                description=description,
                derived_from=[ws.resolve_asset(d) for d in derived_from],
            )
        except AlreadyRegisteredError as exc:
            raise _registered_first(ws, exc, caller) from exc
        record = ws.asset(digest)
        found = [o for o in ws.overlaps(digest) if o.asset == digest]
        parties, assets = names_of(ws)
        copied = [_overlap_row(ws, o, parties, assets, "from") for o in found]
    assert record is not None
    if as_json:
        emit_json(
            {
                "asset": str(digest),
                "name": record.name,
                "asset_kind": record.asset_kind,
                "copied_from": copied,
            }
        )
    else:
        click.echo(str(digest))


def _registered_first(
    ws: Workspace, exc: AlreadyRegisteredError, caller: PartyId
) -> AlreadyRegisteredError:
    """The error again, in the shell's words: names, not ids, and the command that disputes it."""
    names = {str(p.party): p.name for p in ws.parties()}
    record = ws.asset(Digest.parse(exc.asset))
    what = exc.asset if record is None else f"{record.name!r} ({exc.asset})"
    registrant = names.get(exc.registrant, exc.registrant)
    return AlreadyRegisteredError(
        f"{what} was registered first by {registrant} ({exc.registrant}) at "
        f"{exc.registered_at} (entry {exc.leaf_index}); nothing was recorded in the name of "
        f"{names.get(str(caller), str(caller))}",
        asset=exc.asset,
        registrant=exc.registrant,
        registered_at=exc.registered_at,
        leaf_index=exc.leaf_index,
        hint=f"use the asset by its digest; to dispute the registration, file a claim: "
        f"quotepart asset claim {exc.asset} --reason TEXT --by {caller}",
    )


def _overlap_row(
    ws: Workspace,
    overlap: OverlapRecord,
    parties: dict[str, str],
    assets: dict[str, str],
    direction: str,
) -> dict[str, Any]:
    """One overlap for `asset show` / `asset add --json`, with its sentence in `summary`.

    direction "from": the asset shown is the copy; "by": it is the original.
    """
    other = overlap.earlier if direction == "from" else overlap.asset
    record = ws.asset(other)
    registrant = "" if record is None else str(record.registered_by)
    who = parties.get(registrant, registrant)
    label = f"{assets.get(str(other), str(other))!r} ({other})"
    how = " as near-duplicates" if overlap.match == "near" else ""
    summary = (
        f"{overlap.records:,} of {overlap.of:,} records copied{how} from {label} "
        f"(registered by {who})"
        if direction == "from"
        else f"its records were copied by {label} (registered by {who}): "
        f"{overlap.records:,} of that asset's {overlap.of:,} records{how}"
    )
    return {
        "asset" if direction == "by" else "earlier": str(other),
        "registrant": registrant,
        "registrant_name": who,
        "records": overlap.records,
        "of": overlap.of,
        "match": overlap.match,
        "tolerance": overlap.tolerance,
        "leaf_index": overlap.leaf_index,
        "summary": summary,
    }


@asset_group.command("claim")
@click.argument("asset")
@click.option("--reason", required=True, help="Why the registration is wrong.")
@click.option("--by", required=True, help="The party filing the claim (its key is held here).")
@workspace_options
def asset_claim(
    workspace_dir: Path, database_url: str | None, asset: str, reason: str, by: str
) -> None:
    """Dispute who registered ASSET: a signed claim, shown wherever its registrant is."""
    with load_workspace(workspace_dir, database_url) as ws:
        leaf = ws.file_claim(ws.resolve_asset(asset), reason, by=ws.resolve_party(by))
    click.echo(str(leaf))


@asset_group.command("list")
@workspace_options
@json_option
def asset_list(workspace_dir: Path, database_url: str | None, as_json: bool) -> None:
    """List the registered assets."""
    with load_workspace(workspace_dir, database_url) as ws:
        rows = [
            {"asset": str(a.asset), "asset_kind": a.asset_kind, "name": a.name} for a in ws.assets()
        ]
    emit_rows(
        rows, lambda row: f"{row['asset']}  {row['asset_kind']:<15}  {row['name']}", as_json=as_json
    )


@asset_group.command("show")
@click.argument("asset")
@workspace_options
def asset_show(workspace_dir: Path, database_url: str | None, asset: str) -> None:
    """Print the full registration of ASSET (metadata included) as JSON.

    Beside the registration's fields: `registered_by` (who signed it), `claims` (the
    claims filed on it), `delegations` (the rights over it delegated and not revoked),
    `record_set` (a table's order-independent identity `set_root`, from the record
    index) and `overlaps`: `copied_from` (earlier assets that hold its records, which
    are credited to them) and `copied_by` (later assets that hold its records).
    """
    with load_workspace(workspace_dir, database_url) as ws:
        digest = ws.resolve_asset(asset)
        entry = ws.asset_entry(digest)
        record = ws.asset(digest)
        assert entry is not None
        assert record is not None
        parties, assets = names_of(ws)
        shown = entry.to_body()
        shown["registered_by"] = {
            "party": str(record.registered_by),
            "name": parties.get(str(record.registered_by)),
            "leaf_index": record.leaf_index,
        }
        shown["claims"] = [
            {
                "claimant": str(c.claimant),
                "claimant_name": parties.get(str(c.claimant)),
                "reason": c.reason,
                "leaf_index": c.leaf_index,
            }
            for c in ws.claims(digest)
        ]
        shown["delegations"] = [
            delegation_row(d, parties, assets) for d in ws.delegations(digest, active=True)
        ]
        indexed = ws.record_set(digest)
        if indexed is not None:
            shown["record_set"] = {
                "set_root": indexed.set_root,
                "records": indexed.records,
                "numeric_fields": indexed.fields,
                "tolerance": indexed.tolerance,
            }
        overlaps = ws.overlaps(digest)
        shown["overlaps"] = {
            "copied_from": [
                _overlap_row(ws, o, parties, assets, "from") for o in overlaps if o.asset == digest
            ],
            "copied_by": [
                _overlap_row(ws, o, parties, assets, "by") for o in overlaps if o.earlier == digest
            ],
        }
        emit_json(shown)


@asset_group.command("prove-record")
@click.argument("asset")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--row", type=click.IntRange(min=0), required=True, help="0-based record number.")
@click.option("--table", is_flag=True, help="SOURCE is a table file (as registered with --table).")
@workspace_options
def asset_prove_record(
    workspace_dir: Path, database_url: str | None, asset: str, source: Path, row: int, table: bool
) -> None:
    """Prove that record ROW of SOURCE is in ASSET, and that ASSET is in the log.

    Prints a self-contained JSON proof: the record, its Merkle path to the asset's digest,
    the asset's log entry with its inclusion proof, and the signed checkpoint. Check it
    anywhere with `quotepart asset verify-record`.
    """
    data: Any = read_table(source) if table else source
    with load_workspace(workspace_dir, database_url) as ws:
        digest = ws.resolve_asset(asset)
        member = ws.prove_record(digest, data, row)
        emit_json(record_proof(ws.store, member, digest, ws.verifier))


@asset_group.command("verify-record")
@click.argument("proof_file", type=click.File("r"))
@click.option(
    "--verifier-key",
    default=None,
    help="The log's verifier key, from a source you trust (default: the one in the file).",
)
def asset_verify_record(proof_file: Any, verifier_key: str | None) -> None:
    """Check a `prove-record` file offline: record → asset digest → log entry → signed checkpoint."""
    document = read_json_object(
        proof_file.read,
        unreadable="the proof file is malformed",
        not_object="the proof file is malformed: not a JSON object",
        hint="produce it with `quotepart asset prove-record`",
    )
    verified = verify_record_proof(document, trusted_key=verifier_key)
    click.echo(
        f"OK: record {verified.record_index} of {verified.record_count} is in {verified.asset}, "
        f"registered at entry {verified.leaf_index} of the log {verified.origin} "
        f"(checkpoint of size {verified.tree_size}, signature checked)"
    )
    if verifier_key is None:
        click.echo(
            "Note: the verifier key came from the file itself; pass --verifier-key from a "
            "source you trust to rule out a forged log.",
            err=True,
        )


# ----------------------------------------------------------- contributions


@click.command("contribute")
@click.argument("asset")
@click.option(
    "--party", "shares", multiple=True, required=True, help="PARTY=SHARE, e.g. party:01H…=1/2"
)
@click.option("--role", type=click.Choice(sorted(CONTRIBUTION_ROLES)), required=True)
@click.option("--by", required=True, help="The party signing the entries (key held here).")
@click.option("--normalise", is_flag=True, help="Scale the shares to add up to the whole.")
@workspace_options
def contribute_command(
    workspace_dir: Path,
    database_url: str | None,
    asset: str,
    shares: tuple[str, ...],
    role: str,
    by: str,
    normalise: bool,
) -> None:
    """Record who contributed ASSET, with declared shares adding up to the whole."""
    parsed: dict[str, Fraction] = {}
    for item in shares:
        party, separator, share = item.rpartition("=")
        if not separator:
            raise InputError(
                f"--party {item!r} is not PARTY=SHARE", hint="e.g. --party party:01H…=1/2"
            )
        parsed[party] = parse_ratio(share, what=f"the share of {party}")
    with load_workspace(workspace_dir, database_url) as ws:
        digest = ws.resolve_asset(asset)
        shares_of = {ws.resolve_party(party): share for party, share in parsed.items()}
        indexes = ws.contribute(
            digest, shares_of, role=role, by=ws.resolve_party(by), normalise=normalise
        )
    click.echo(f"recorded {len(indexes)} contribution(s) to {digest}")


# -------------------------------------------------------------------- runs


@click.group("run")
def run_group() -> None:
    """List and show recorded runs."""


@run_group.command("list")
@workspace_options
@json_option
def run_list(workspace_dir: Path, database_url: str | None, as_json: bool) -> None:
    with load_workspace(workspace_dir, database_url) as ws:
        rows = [
            {"run": str(r.run), "name": r.name, "status": r.status, "ended": r.ended.isoformat()}
            for r in ws.runs()
        ]
    emit_rows(
        rows,
        lambda row: f"{row['run']}  {row['status']:<9}  {row['ended']}  {row['name']}",
        as_json=as_json,
    )


@run_group.command("show")
@click.argument("run_id")
@workspace_options
def run_show(workspace_dir: Path, database_url: str | None, run_id: str) -> None:
    """Print the full record of RUN_ID as JSON."""
    with load_workspace(workspace_dir, database_url) as ws:
        node = ws.lineage(run_id, max_depth=0).root
        emit_json(ws.run_entry(node.id).to_body())


# ----------------------------------------------------------------- lineage


@click.command("lineage")
@click.argument("node")
@click.option(
    "--upstream",
    "direction",
    flag_value="upstream",
    default=True,
    help="What NODE came from (default).",
)
@click.option("--downstream", "direction", flag_value="downstream", help="What came from NODE.")
@click.option(
    "--depth", type=click.IntRange(min=1), default=None, help="Hops to follow (default: all)."
)
@click.option("--json", "output", flag_value="json", help="Nodes and edges as JSON.")
@click.option("--dot", "output", flag_value="dot", help="Graphviz DOT.")
@click.option("--mermaid", "output", flag_value="mermaid", help="A Mermaid flowchart.")
@click.option(
    "--contributions", "contributions", is_flag=True, help="List the contributions feeding NODE."
)
@click.option("--models", is_flag=True, help="List the models built on NODE (downstream).")
@workspace_options
def lineage_command(
    workspace_dir: Path,
    database_url: str | None,
    node: str,
    direction: str,
    depth: int | None,
    output: str | None,
    contributions: bool,
    models: bool,
) -> None:
    """Show the lineage of NODE: an asset digest, a run id, or an asset's exact name."""
    with load_workspace(workspace_dir, database_url) as ws:
        if contributions:
            _print_contributions(ws, node, as_json=output == "json")
            return
        if models:
            rows = [{"asset": m.id, "name": m.name} for m in ws.models_using(node)]
            emit_rows(rows, lambda row: f"{row['asset']}  {row['name']}", as_json=output == "json")
            return
        graph = ws.lineage(
            node, "downstream" if direction == "downstream" else "upstream", max_depth=depth
        )
    if output == "json":
        emit_json(graph.to_json())
    elif output == "dot":
        click.echo(graph.to_dot(), nl=False)
    elif output == "mermaid":
        click.echo(graph.to_mermaid(), nl=False)
    else:
        echo_text(f"{graph.direction} of {graph.root.name} ({graph.root.id})")
        for edge in graph.edges:
            child, parent = graph.node(edge.child), graph.node(edge.parent)
            echo_text(
                f"  {child.name} ({child.kind})  <-{edge.relation}-  {parent.name} ({parent.kind})"
            )
        if not graph.edges:
            click.echo("  (nothing recorded)")


def _print_contributions(ws: Workspace, node: str, *, as_json: bool) -> None:
    emit_rows(
        [vars_of(c) for c in ws.contributions_feeding(node)],
        lambda c: (
            f"{c['party_name']} ({c['party']})  {c['role']:<14} {c['share']:>7} "
            f"of {c['asset_name']} ({c['asset_kind']})"
        ),
        as_json=as_json,
    )


def vars_of(contribution: Any) -> dict[str, Any]:
    return {name: getattr(contribution, name) for name in contribution.__slots__}
