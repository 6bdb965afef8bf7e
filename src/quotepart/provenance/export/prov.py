"""W3C PROV export: the log (or one asset's upstream lineage) as PROV-JSON or PROV-JSONLD.

An asset is a `prov:Entity`, a run a `prov:Activity`, a party a `prov:Agent`; runs
`used` (what they learned from without a role; what they only used, such as
evaluation data, with its `prov:role`) and `wasGeneratedBy`, assets `wasDerivedFrom` their parents and are
`wasAttributedTo` their contributors (with role and share), runs are
`wasAssociatedWith` their operator. Identifiers read exactly as quotepart writes them
(`sha256:<hex>`, `run:<ULID>`, `party:<ULID>`), each prefix bound to a URN namespace,
so a PROV tool and a quotepart user name the same node the same way.

`ProvenanceGraph` is the one read of the log that every export renders (PROV here,
OpenLineage and Croissant beside it), so the three always describe the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

from quotepart.errors import InputError
from quotepart.ids import Digest, PartyId, RunId
from quotepart.log import canonicalize
from quotepart.log.kinds import (
    AssetRegistered,
    PartyRegistered,
    RunRecorded,
    format_fraction,
)
from quotepart.provenance.service import Provenance
from quotepart.store.queries import entries as entry_queries
from quotepart.store.queries import provenance as queries

QUOTEPART_NAMESPACE = "https://quotepart.dev/ns/prov#"
"""Where quotepart's own PROV attributes (`quotepart:role`, `quotepart:share`, …) live."""

ID_NAMESPACES = {
    "sha256": "urn:hash::sha256:",
    "run": "urn:quotepart:run:",
    "party": "urn:quotepart:party:",
}
"""Prefixes that make quotepart identifiers valid PROV qualified names, unchanged."""

AGENT_PROV_TYPES = {
    "person": "Person",
    "organisation": "Organization",
    "community": "Organization",  # a group that shares as one; marked by quotepart:agentType
    "software": "SoftwareAgent",
}

ProvFormat = Literal["json", "jsonld"]
PROV_FORMATS: tuple[ProvFormat, ...] = ("json", "jsonld")


@dataclass(frozen=True, slots=True)
class RecordedRun:
    body: RunRecorded
    leaf_index: int


@dataclass(frozen=True, slots=True)
class RecordedAsset:
    body: AssetRegistered
    leaf_index: int
    registered_by: PartyId
    registered_at: datetime  # the time its entry was signed


@dataclass(frozen=True, slots=True)
class RecordedParty:
    body: PartyRegistered
    leaf_index: int


@dataclass(frozen=True, slots=True)
class RecordedContribution:
    party: PartyId
    asset: Digest
    role: str
    share: Fraction
    leaf_index: int


@dataclass(frozen=True, slots=True)
class ProvenanceGraph:
    """Parties, assets, runs and contributions read from one log, keyed by id.

    Read once, rendered many ways; scoped reads keep only what a view needs, so a
    lineage export does not decode the whole log.
    """

    origin: str
    parties: dict[PartyId, RecordedParty]
    assets: dict[Digest, RecordedAsset]
    runs: dict[RunId, RecordedRun]
    contributions: tuple[RecordedContribution, ...]

    @classmethod
    def read(
        cls,
        ws: Provenance,
        *,
        asset_ids: Iterable[Digest] | None = None,
        run_ids: Iterable[RunId] | None = None,
        party_ids: Iterable[PartyId] = (),
    ) -> ProvenanceGraph:
        """The whole log when no ids are given; otherwise those assets and runs, the
        assets the runs used or made, and every party they name (operators, contributors)."""
        whole = asset_ids is None and run_ids is None
        found_runs = _read_runs(ws, None if whole else {str(r) for r in run_ids or ()})
        wanted_assets = {str(d) for d in asset_ids or ()}
        for run in found_runs.values():
            wanted_assets.update(
                str(d) for d in (*run.body.inputs, *run.body.outputs, *run.body.uses)
            )
        found_assets, found_contributions = _read_assets(ws, None if whole else wanted_assets)
        wanted_parties = {str(p) for p in party_ids}
        wanted_parties.update(str(r.body.operator) for r in found_runs.values())
        wanted_parties.update(str(c.party) for c in found_contributions)
        found_parties = _read_parties(ws, None if whole else wanted_parties)
        return cls(
            ws.ledger.store.origin, found_parties, found_assets, found_runs, found_contributions
        )

    def contributions_to(self, asset: Digest) -> list[RecordedContribution]:
        return [c for c in self.contributions if c.asset == asset]

    def party_name(self, party: PartyId) -> str:
        found = self.parties.get(party)
        return found.body.name if found is not None else str(party)


def _read_runs(ws: Provenance, wanted: set[str] | None) -> dict[RunId, RecordedRun]:
    """The runs with these ids (every run for None), decoded from their entries."""
    with ws.ledger.read() as conn:
        leaves = queries.run_leaves(conn, wanted)
        bodies = entry_queries.read_bodies(conn, leaves, RunRecorded)
    return {body.run: RecordedRun(body, leaf) for leaf, body in zip(leaves, bodies, strict=True)}


def _read_assets(
    ws: Provenance, wanted: set[str] | None
) -> tuple[dict[Digest, RecordedAsset], tuple[RecordedContribution, ...]]:
    """The assets with these digests (every asset for None) and their contributions."""
    with ws.ledger.read() as conn:
        registrations = sorted(queries.asset_registrations(conn, wanted), key=lambda r: r[1])
        entries = dict(entry_queries.read_entries(conn, [leaf for _, leaf, _ in registrations]))
        contributions = queries.contribution_records(conn, wanted)
    found = {}
    for digest, leaf, registered_by in registrations:
        entry = entries[leaf]
        found[Digest.parse(digest)] = RecordedAsset(
            entry.body_as(AssetRegistered), leaf, PartyId.parse(registered_by), entry.time
        )
    return found, tuple(
        RecordedContribution(c.party, c.asset, c.role, c.share, c.leaf_index) for c in contributions
    )


def _read_parties(ws: Provenance, wanted: set[str] | None) -> dict[PartyId, RecordedParty]:
    """The parties with these ids (every party for None), decoded from their entries."""
    with ws.ledger.read() as conn:
        leaves = queries.party_leaves(conn, wanted)
        bodies = entry_queries.read_bodies(conn, leaves, PartyRegistered)
    return {
        body.party: RecordedParty(body, leaf) for leaf, body in zip(leaves, bodies, strict=True)
    }


def lineage_graph(ws: Provenance, node: Digest | str) -> ProvenanceGraph:
    """The upstream lineage of an asset (or run): it, everything it came from, and the
    parties who ran or contributed any of it.

    Raises:
        NotFoundError: no asset or run by that digest, id or name.
    """
    lineage = ws.lineage(node if isinstance(node, str) else str(node), "upstream")
    asset_ids = [Digest.parse(n.id) for n in lineage.nodes if n.type == "asset"]
    run_ids = [RunId.parse(n.id) for n in lineage.nodes if n.type == "run"]
    graph = ProvenanceGraph.read(ws, asset_ids=asset_ids, run_ids=run_ids)
    # A run in the lineage may also have made assets that are not upstream of the node:
    # keep the view to the lineage itself.
    in_scope = set(asset_ids)
    kept = tuple(c for c in graph.contributions if c.asset in in_scope)
    agents = {r.body.operator for r in graph.runs.values()} | {c.party for c in kept}
    return ProvenanceGraph(
        graph.origin,
        {p: party for p, party in graph.parties.items() if p in agents},
        {d: a for d, a in graph.assets.items() if d in in_scope},
        graph.runs,
        kept,
    )


def _text(value: Any) -> str:
    """A metadata value as a PROV literal: strings as they are, anything else as canonical JSON."""
    return value if isinstance(value, str) else canonicalize(value).decode()


def prov_document(ws: Provenance, node: Digest | str | None = None) -> Any:
    """A `prov.model.ProvDocument` of the whole log, or of the upstream lineage of `node`
    (an asset digest, a run id, or an asset's unique name).

    Raises:
        NotFoundError: `node` names nothing in the log.
    """
    graph = ProvenanceGraph.read(ws) if node is None else lineage_graph(ws, node)
    return graph_document(graph)


def graph_document(graph: ProvenanceGraph) -> Any:
    """Render a `ProvenanceGraph` as a PROV document; records are added in a fixed order,
    so the same log always serialises to the same bytes."""
    from prov.model import PROV_ROLE, ProvDocument

    doc = ProvDocument()
    qp = doc.add_namespace("quotepart", QUOTEPART_NAMESPACE)
    for prefix, uri in ID_NAMESPACES.items():
        doc.add_namespace(prefix, uri)
    for party in sorted(graph.parties.values(), key=lambda p: p.leaf_index):
        doc.agent(str(party.body.party), _agent_attributes(qp, party))
    for asset in sorted(graph.assets.values(), key=lambda a: a.leaf_index):
        doc.entity(str(asset.body.asset), _entity_attributes(qp, asset))
    ordered_runs = sorted(graph.runs.values(), key=lambda r: r.leaf_index)
    for run in ordered_runs:
        doc.activity(
            str(run.body.run), run.body.started, run.body.ended, _activity_attributes(qp, run)
        )
    for run in ordered_runs:
        activity = str(run.body.run)
        for used in sorted(set(run.body.inputs)):
            if used in graph.assets:
                doc.used(activity, str(used))
        for used, role in sorted(run.body.uses.items()):
            if used in graph.assets:  # used, not learned from: the role says how
                doc.used(activity, str(used), other_attributes=[(PROV_ROLE, role)])
        for made in sorted(set(run.body.outputs)):
            if made in graph.assets:
                doc.wasGeneratedBy(str(made), activity)
        if run.body.operator in graph.parties:
            doc.wasAssociatedWith(activity, str(run.body.operator))
    for asset in sorted(graph.assets.values(), key=lambda a: a.leaf_index):
        for parent in sorted(set(asset.body.derived_from)):
            if parent in graph.assets:
                doc.wasDerivedFrom(str(asset.body.asset), str(parent))
    for contribution in graph.contributions:
        if contribution.party in graph.parties and contribution.asset in graph.assets:
            doc.wasAttributedTo(
                str(contribution.asset),
                str(contribution.party),
                other_attributes=[
                    (qp["role"], contribution.role),
                    (qp["share"], format_fraction(contribution.share)),
                    (qp["leafIndex"], contribution.leaf_index),
                ],
            )
    return doc


def _agent_attributes(qp: Any, party: RecordedParty) -> list[tuple[Any, Any]]:
    from prov.model import PROV, PROV_LABEL, PROV_TYPE

    body = party.body
    attributes: list[tuple[Any, Any]] = [
        (PROV_TYPE, PROV[AGENT_PROV_TYPES[body.agent_type]]),
        (PROV_LABEL, body.name),
        (qp["agentType"], body.agent_type),
        (qp["leafIndex"], party.leaf_index),
    ]
    return attributes + [(qp["role"], role) for role in sorted(body.roles)]


def _entity_attributes(qp: Any, asset: RecordedAsset) -> list[tuple[Any, Any]]:
    from prov.model import PROV_LABEL

    body = asset.body
    attributes: list[tuple[Any, Any]] = [
        (PROV_LABEL, body.name),
        (qp["assetKind"], body.asset_kind),
        (qp["scheme"], body.scheme),
        (qp["leafIndex"], asset.leaf_index),
        (qp["registeredBy"], str(asset.registered_by)),
        (qp["registeredAt"], asset.registered_at),
    ]
    if body.size is not None:
        attributes.append((qp["size"], body.size))
    if body.description is not None:
        attributes.append((qp["description"], body.description))
    return attributes + [(qp[key], _text(value)) for key, value in sorted(body.metadata.items())]


def _activity_attributes(qp: Any, run: RecordedRun) -> list[tuple[Any, Any]]:
    from prov.model import PROV_LABEL

    body = run.body
    attributes: list[tuple[Any, Any]] = [
        (PROV_LABEL, body.name),
        (qp["status"], body.status),
        (qp["leafIndex"], run.leaf_index),
    ]
    for key, mapping in (
        ("parameters", body.parameters),
        ("code", body.code),
        ("environment", body.environment),
        ("source", body.source),
    ):
        if mapping:
            attributes.append((qp[key], _text(mapping)))
    if body.error is not None:
        attributes.append((qp["error"], body.error))
    return attributes


def export_prov(ws: Provenance, node: Digest | str | None = None, *, format: str = "json") -> str:
    """PROV-JSON (`json`) or PROV-JSONLD (`jsonld`) text of the log or of `node`'s lineage.

    ```python
    text = export_prov(ws, model_digest, format="jsonld")
    ```

    Raises:
        InputError: an unknown format.
        NotFoundError: `node` names nothing in the log.
    """
    if format not in PROV_FORMATS:
        raise InputError(
            f"unknown PROV format {format!r}", hint=f"choose one of {', '.join(PROV_FORMATS)}"
        )
    text: str = prov_document(ws, node).serialize(format=format, indent=2)
    return text


__all__ = [
    "ID_NAMESPACES",
    "PROV_FORMATS",
    "QUOTEPART_NAMESPACE",
    "ProvenanceGraph",
    "RecordedAsset",
    "RecordedContribution",
    "RecordedParty",
    "RecordedRun",
    "export_prov",
    "graph_document",
    "lineage_graph",
    "prov_document",
]
