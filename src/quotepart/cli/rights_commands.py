"""`quotepart right|contribution`: delegate rights over an asset; accept proposed contributions.

The registrant of an asset holds every right over it (docs/rights.md); these commands
delegate one (`right grant`), end a delegation (`right revoke`), list them (`right list`),
and let a registrant accept the contributions their contributors proposed. An entry the
rules refuse prints the rule and what to do, exits 2 and writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from quotepart.cli._base import emit_rows, json_option, load_workspace, workspace_options
from quotepart.errors import InputError
from quotepart.log.kinds import RIGHTS, format_fraction
from quotepart.workspace import Workspace


def parse_moment(text: str, *, option: str) -> datetime:
    """An ISO 8601 date or time; a time without an offset is read as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(
            f"{option} {text!r} is not an ISO 8601 date or time",
            hint="e.g. 2026-12-31 or 2026-12-31T18:00:00Z",
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def names_of(ws: Workspace) -> tuple[dict[str, str], dict[str, str]]:
    """Party id -> name and asset digest -> name, for listings."""
    parties = {str(p.party): p.name for p in ws.parties()}
    assets = {str(a.asset): a.name for a in ws.assets()}
    return parties, assets


# ------------------------------------------------------------------ rights


@click.group("right")
def right_group() -> None:
    """Delegate a right over an asset to another party, revoke it, list the delegations."""


@right_group.command("grant")
@click.argument("grantee")
@click.argument("right", type=click.Choice(sorted(RIGHTS)))
@click.argument("asset")
@click.option("--by", required=True, help="The party granting it: it must hold the right.")
@click.option("--until", default=None, help="End of the grant (ISO 8601; default: no end).")
@workspace_options
def right_grant(
    workspace_dir: Path,
    database_url: str | None,
    grantee: str,
    right: str,
    asset: str,
    by: str,
    until: str | None,
) -> None:
    """Let GRANTEE sign RIGHT's entries over ASSET (policy, valuation, metering, ...)."""
    end = None if until is None else parse_moment(until, option="--until")
    with load_workspace(workspace_dir, database_url) as ws:
        leaf = ws.grant_right(
            ws.resolve_party(grantee), right, ws.resolve_asset(asset),
            by=ws.resolve_party(by), until=end,
        )  # fmt: skip
    click.echo(str(leaf))


@right_group.command("revoke")
@click.argument("grantee")
@click.argument("right", type=click.Choice(sorted(RIGHTS)))
@click.argument("asset")
@click.option("--by", required=True, help="The party revoking it: it must hold the right.")
@workspace_options
def right_revoke(
    workspace_dir: Path, database_url: str | None, grantee: str, right: str, asset: str, by: str
) -> None:
    """End GRANTEE's RIGHT over ASSET; what it signed before stays valid."""
    with load_workspace(workspace_dir, database_url) as ws:
        leaf = ws.revoke_right(
            ws.resolve_party(grantee), right, ws.resolve_asset(asset), by=ws.resolve_party(by)
        )
    click.echo(str(leaf))


@right_group.command("list")
@click.argument("asset", required=False)
@click.option("--all", "show_all", is_flag=True, help="Include revoked delegations.")
@workspace_options
@json_option
def right_list(
    workspace_dir: Path, database_url: str | None, as_json: bool, asset: str | None, show_all: bool
) -> None:
    """List the delegations (of ASSET, when given), oldest first."""
    with load_workspace(workspace_dir, database_url) as ws:
        digest = None if asset is None else ws.resolve_asset(asset)
        found = ws.delegations(digest, active=not show_all)
        parties, assets = names_of(ws)
    rows = [delegation_row(d, parties, assets) for d in found]
    emit_rows(rows, delegation_line, as_json=as_json)


def delegation_row(d: Any, parties: dict[str, str], assets: dict[str, str]) -> dict[str, Any]:
    return {
        "grantor": str(d.grantor),
        "grantor_name": parties.get(str(d.grantor)),
        "grantee": str(d.grantee),
        "grantee_name": parties.get(str(d.grantee)),
        "right": d.right,
        "asset": str(d.asset),
        "asset_name": assets.get(str(d.asset)),
        "since": d.since.isoformat(),
        "until": None if d.until is None else d.until.isoformat(),
        "leaf_index": d.leaf_index,
        "revoked_by": d.revoked_by,
    }


def delegation_line(row: Any) -> str:
    until = f" until {row['until']}" if row["until"] else ""
    revoked = f", revoked at entry {row['revoked_by']}" if row["revoked_by"] is not None else ""
    return (
        f"{row['grantee_name'] or row['grantee']} may sign {row['right']} of "
        f"{row['asset_name'] or row['asset']}, delegated by {row['grantor_name'] or row['grantor']}"
        f" since {row['since']}{until} (entry {row['leaf_index']}{revoked})"
    )


# ----------------------------------------------------------- contributions


@click.group("contribution")
def contribution_group() -> None:
    """List the contributions their contributors proposed, and accept them as registrant."""


@contribution_group.command("proposals")
@click.argument("asset", required=False)
@click.option("--all", "show_all", is_flag=True, help="Include those already accepted.")
@workspace_options
@json_option
def contribution_proposals(
    workspace_dir: Path, database_url: str | None, as_json: bool, asset: str | None, show_all: bool
) -> None:
    """List the contributions waiting for the registrant's acceptance (of ASSET, when given)."""
    with load_workspace(workspace_dir, database_url) as ws:
        digest = None if asset is None else ws.resolve_asset(asset)
        found = ws.proposed_contributions(digest, waiting=not show_all)
        parties, assets = names_of(ws)
    rows = [
        {
            "leaf_index": p.leaf_index,
            "entry": p.leaf_hash,
            "party": str(p.party),
            "party_name": parties.get(str(p.party)),
            "asset": str(p.asset),
            "asset_name": assets.get(str(p.asset)),
            "role": p.role,
            "share": format_fraction(p.share),
            "accepted_by": p.accepted_by,
        }
        for p in found
    ]
    emit_rows(
        rows,
        lambda row: (
            f"{row['leaf_index']}  {row['entry'][:16]}  {row['party_name'] or row['party']} "
            f"proposes {row['share']} of {row['asset_name'] or row['asset']} as {row['role']}"
            + ("" if row["accepted_by"] is None else f" (accepted at entry {row['accepted_by']})")
        ),
        as_json=as_json,
    )


@contribution_group.command("accept")
@click.argument("proposal", metavar="LEAF_OR_HASH")
@click.option("--by", required=True, help="The asset's registrant (or a holder of `contribution`).")
@workspace_options
def contribution_accept(
    workspace_dir: Path, database_url: str | None, proposal: str, by: str
) -> None:
    """Accept the proposed contribution at leaf LEAF_OR_HASH (its index or leaf hash)."""
    wanted: int | str = int(proposal) if proposal.isdigit() else proposal.lower()
    with load_workspace(workspace_dir, database_url) as ws:
        leaf = ws.accept_contribution(wanted, by=ws.resolve_party(by))
    click.echo(str(leaf))
