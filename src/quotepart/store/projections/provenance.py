"""Projections of the provenance entries: parties, assets, contributions and runs.

They enforce what a fact must mean before it is accepted: a party or an asset is
registered once, a contribution names a known party and asset and never declares more
than the whole, and a run names known assets and closes no lineage cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from sqlalchemy import Table, select, update

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    AssetRegistered,
    ClaimFiled,
    ContributionAccepted,
    ContributionRecorded,
    OverlapDetected,
    PartyPayoutChanged,
    PartyRegistered,
    RunRecorded,
    format_fraction,
)
from quotepart.store.lineage import reaches
from quotepart.store.projections._writer import (
    ProjectionWriter,
    digest_prefix,
    projects,
)
from quotepart.store.rights import registered, registrant
from quotepart.store.schema import (
    assets,
    claims,
    contribution_proposals,
    contributions,
    lineage_edges,
    overlaps,
    parties,
    payout_changes,
    runs,
)


def _run_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    body = entry.raw_body
    keys: list[tuple[Table, str]] = [
        (runs, str(body.get("run"))),
        (parties, str(body.get("operator"))),
    ]
    for field in ("inputs", "outputs"):
        values = body.get(field)
        if isinstance(values, list):
            keys.extend((assets, str(value)) for value in values)
    uses = body.get("uses")
    if isinstance(uses, dict):
        keys.extend((assets, str(value)) for value in uses)
    return keys


def _party_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    return [(parties, str(entry.raw_body.get("party")))]


def _asset_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    derived = entry.raw_body.get("derived_from")
    parents = [str(d) for d in derived] if isinstance(derived, list) else []
    return [(assets, str(entry.raw_body.get("asset"))), *((assets, d) for d in parents)]


def _contribution_keys(entry: SignedEntry) -> list[tuple[Table, str]]:
    return [*_party_keys(entry), *_asset_keys(entry)]


def _prefetch_shares(writer: ProjectionWriter, entries: Sequence[SignedEntry]) -> None:
    writer.prefetch_shares(str(entry.raw_body.get("asset")) for entry in entries)


@projects(PartyRegistered, keys=_party_keys)
def project_party(
    writer: ProjectionWriter, body: PartyRegistered, entry: SignedEntry, leaf_index: int
) -> None:
    if writer.exists(parties, str(body.party)):
        raise InputError(f"{body.party} is already registered", hint="a party is registered once")
    writer.add(
        parties,
        {
            "party_id": str(body.party),
            "name": body.name,
            "roles": ",".join(body.roles),
            "public_key": body.public_key.raw,
            "leaf_index": leaf_index,
        },
        key=str(body.party),
    )


@projects(PartyPayoutChanged, keys=_party_keys)
def project_payout_change(
    writer: ProjectionWriter, body: PartyPayoutChanged, entry: SignedEntry, leaf_index: int
) -> None:
    if not writer.exists(parties, str(body.party)):
        raise NotFoundError(
            f"a payout change names unknown party {body.party}", hint="register the party first"
        )
    writer.add(
        payout_changes,
        {
            "leaf_index": leaf_index,
            "party_id": str(body.party),
            "commitment": str(body.payout_commitment),
        },
    )


@projects(AssetRegistered, keys=_asset_keys)
def project_asset(
    writer: ProjectionWriter, body: AssetRegistered, entry: SignedEntry, leaf_index: int
) -> None:
    digest = str(body.asset)  # registered once: the rule (`registration`) refused a repeat
    for parent in body.derived_from:
        parent_leaf = writer.leaf_of(assets, str(parent))
        if parent_leaf is None:
            raise NotFoundError(
                f"asset {digest} derives from unknown asset {parent}",
                hint="register the asset it derives from first",
            )
        writer.add(
            lineage_edges, {"child": leaf_index, "parent": parent_leaf, "relation": "derived"}
        )
    writer.add(
        assets,
        {
            "digest": digest,
            "digest_prefix": digest_prefix(digest),
            "asset_kind": body.asset_kind,
            "name": body.name,
            "registered_by": str(entry.author),
            "leaf_index": leaf_index,
        },
        key=digest,
    )
    registered(writer, digest, entry.author)


@projects(ContributionRecorded, keys=_contribution_keys, prepare=_prefetch_shares)
def project_contribution(
    writer: ProjectionWriter, body: ContributionRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    if not writer.exists(parties, str(body.party)):
        raise NotFoundError(
            f"contribution names unknown {body.party}", hint="register the party first"
        )
    if not writer.exists(assets, str(body.asset)):
        raise NotFoundError(
            f"contribution names unknown asset {body.asset}", hint="register the asset first"
        )
    if entry.author != registrant(writer, body.asset):  # proposed by its contributor
        writer.add(
            contribution_proposals,
            {
                "leaf_index": leaf_index,
                "leaf_hash": entry.leaf_hash.hex(),
                "party_id": str(body.party),
                "asset": str(body.asset),
                "role": body.role,
                "share": format_fraction(body.share),
                "accepted_by": None,
            },
        )
        return
    _count_share(writer, body.asset, body.share)
    writer.add(
        contributions,
        {
            "leaf_index": leaf_index,
            "party_id": str(body.party),
            "asset": str(body.asset),
            "role": body.role,
            "share": format_fraction(body.share),
            "accepted_by": None,
        },
    )


def _count_share(writer: ProjectionWriter, asset: Digest, share: Fraction) -> None:
    total = writer.share_total(str(asset)) + share
    if total > 1:
        raise InputError(
            f"the declared shares of asset {asset} would add up to {format_fraction(total)}, "
            "more than the whole",
            hint="shares of one asset sum to at most 1; record them together with "
            "Workspace.contribute(..., normalise=True) to scale them",
        )
    writer.add_share(str(asset), share)


@projects(ContributionAccepted)
def project_acceptance(
    writer: ProjectionWriter, body: ContributionAccepted, entry: SignedEntry, leaf_index: int
) -> None:
    writer.flush()  # the rule found the proposal, unaccepted
    proposal = writer.conn.execute(
        select(contribution_proposals).where(
            contribution_proposals.c.leaf_hash == body.contribution
        )
    ).one()
    _count_share(writer, body.asset, Fraction(proposal.share))
    writer.conn.execute(
        update(contribution_proposals)
        .where(contribution_proposals.c.leaf_index == proposal.leaf_index)
        .values(accepted_by=leaf_index)
    )
    writer.add(
        contributions,
        {
            "leaf_index": int(proposal.leaf_index),
            "party_id": proposal.party_id,
            "asset": proposal.asset,
            "role": proposal.role,
            "share": proposal.share,
            "accepted_by": leaf_index,
        },
    )


@projects(ClaimFiled)
def project_claim(
    writer: ProjectionWriter, body: ClaimFiled, entry: SignedEntry, leaf_index: int
) -> None:
    writer.add(
        claims,
        {
            "leaf_index": leaf_index,
            "asset": str(body.asset),
            "claimant": str(entry.author),
            "reason": body.reason,
        },
    )


@projects(OverlapDetected)
def project_overlap(
    writer: ProjectionWriter, body: OverlapDetected, entry: SignedEntry, leaf_index: int
) -> None:
    writer.add(
        overlaps,
        {
            "leaf_index": leaf_index,
            "asset": str(body.asset),
            "earlier": str(body.earlier),
            "records": body.records,
            "of_records": body.of,
            "match": body.match,
            "tolerance": body.tolerance,
        },
    )


@projects(RunRecorded, keys=_run_keys)
def project_run(
    writer: ProjectionWriter, body: RunRecorded, entry: SignedEntry, leaf_index: int
) -> None:
    run = str(body.run)
    if writer.exists(runs, run):
        raise InputError(f"{run} is already recorded", hint="a run is recorded once, when it ends")
    if not writer.exists(parties, str(body.operator)):
        raise NotFoundError(
            f"{run} names unknown operator {body.operator}", hint="register the party first"
        )
    leaves: dict[Digest, int] = {}
    for digest in (*body.inputs, *body.outputs, *body.uses):
        found = writer.leaf_of(assets, str(digest))
        if found is None:
            raise NotFoundError(
                f"{run} names unknown asset {digest}",
                hint="register every asset a run uses or produces before recording the run",
            )
        leaves[digest] = found
    inputs = sorted({leaves[d] for d in body.inputs})
    outputs = sorted({leaves[d] for d in body.outputs})
    used = sorted({leaves[d]: role for d, role in body.uses.items()}.items())
    if (inputs or used) and outputs:
        writer.flush()  # the walk below reads this batch's edges too
        looped = reaches(writer.conn, outputs, [*inputs, *(leaf for leaf, _ in used)])
        if looped is not None:
            name = next(str(d) for d, leaf in leaves.items() if leaf == looped)
            raise InputError(
                f"{run} would close a lineage cycle: it uses {name}, which already comes "
                "from one of its outputs",
                hint="an asset cannot be its own ancestor; register the changed content as a new asset",
            )
    writer.add(
        runs,
        {
            "run_id": run,
            "name": body.name,
            "operator": str(body.operator),
            "status": body.status,
            "started": entry.raw_body["started"],
            "ended": entry.raw_body["ended"],
            "leaf_index": leaf_index,
        },
        key=run,
    )
    for parent in inputs:
        writer.add(lineage_edges, {"child": leaf_index, "parent": parent, "relation": "used"})
    for parent, role in used:  # used, not learned from: the role says how (used:evaluation)
        writer.add(
            lineage_edges, {"child": leaf_index, "parent": parent, "relation": f"used:{role}"}
        )
    for child in outputs:
        writer.add(lineage_edges, {"child": child, "parent": leaf_index, "relation": "generated"})
