"""Croissant export: a dataset, cohort or labelling batch as Croissant 1.0 JSON-LD.

Croissant (MLCommons) is how ML tooling (Hugging Face, Kaggle, OpenML, TFDS) reads a
dataset's metadata, so a registered asset can be published with its licence, creators
and record fields as recorded, and its quotepart digest as the identifier that ties
the published description back to the log.

The distribution says what the digest covers: a single file (`sha256` scheme) is a
`cr:FileObject` carrying that SHA-256; a folder or a record set, whose digest is an RFC
9162 Merkle root rather than a file hash, is a `cr:FileSet`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import AssetRegistered
from quotepart.provenance import lineage as lineage_queries
from quotepart.provenance.export.prov import ProvenanceGraph, RecordedAsset
from quotepart.provenance.service import Provenance

CROISSANT_KINDS = frozenset({"cohort", "dataset", "labelling_batch"})
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"

CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The standard Croissant 1.0 `@context` (as `mlcroissant` checks it)."""

_DISTRIBUTION_ID = "content"
_RECORD_SET_ID = "records"
_KIND_WORDS = {"cohort": "cohort", "dataset": "dataset", "labelling_batch": "labelling batch"}


def license_url(spdx: str) -> str:
    """The SPDX licence page for an SPDX id; `LicenseRef-…` ids have none, so stay as text."""
    return spdx if spdx.startswith("LicenseRef-") else f"https://spdx.org/licenses/{spdx}.html"


def asset_uri(origin: str, digest: Digest) -> str:
    """Where an asset is named when it has no URL of its own (as in the OpenLineage export)."""
    return f"quotepart://{origin}/{digest}"


def _party(text: str) -> PartyId | None:
    try:
        return PartyId.parse(text)
    except InputError:
        return None


def _agent(graph: ProvenanceGraph, name_or_party: str) -> dict[str, Any]:
    """A schema.org Person or Organization; free-text creators are taken to be people."""
    party = _party(name_or_party)
    if party is None:
        return {"@type": "sc:Person", "name": name_or_party}
    found = graph.parties.get(party)
    if found is None:
        return {"@type": "sc:Person", "name": str(party), "identifier": str(party)}
    kind = "sc:Person" if found.body.agent_type == "person" else "sc:Organization"
    return {"@type": kind, "name": found.body.name, "identifier": str(party)}


def _licence(ws: Provenance, entry: AssetRegistered) -> str | None:
    """The asset's licence; a cohort without one is a subset of its dataset, under its licence."""
    licence = entry.metadata.get("license")
    if licence is None and entry.asset_kind == "cohort" and len(entry.derived_from) == 1:
        parent = ws.asset_entry(entry.derived_from[0])
        licence = None if parent is None else parent.metadata.get("license")
    return None if licence is None else str(licence)


def _distribution(graph: ProvenanceGraph, asset: RecordedAsset) -> dict[str, Any]:
    body = asset.body
    encoding = body.metadata.get("media_type", "application/octet-stream")
    if body.scheme == "sha256":
        distribution: dict[str, Any] = {
            "@type": "cr:FileObject",
            "@id": _DISTRIBUTION_ID,
            "name": _DISTRIBUTION_ID,
            "contentUrl": body.metadata.get("url", asset_uri(graph.origin, body.asset)),
            "encodingFormat": encoding,
            "sha256": body.asset.hex,
        }
        if body.size is not None:
            distribution["contentSize"] = f"{body.size} B"
        return distribution
    what = {
        "merkle-files": f"{body.size} files" if body.size is not None else "files",
        "merkle-records": f"{body.size} records" if body.size is not None else "records",
    }.get(body.scheme, "content that quotepart identifies by a canonical JSON description")
    return {
        "@type": "cr:FileSet",
        "@id": _DISTRIBUTION_ID,
        "name": _DISTRIBUTION_ID,
        "description": f"{what}; quotepart digest {body.asset} ({body.scheme})",
        "encodingFormat": encoding,
        "includes": "**",
    }


def croissant_metadata(ws: Provenance, asset: Digest | str) -> dict[str, Any]:
    """The Croissant 1.0 JSON-LD of a dataset, cohort or labelling batch.

    `asset` is a digest or an asset's unique name. Contributors recorded in the log
    are listed as `contributor`s next to the creators the registration named.

    Raises:
        NotFoundError: no such asset.
        InputError: the asset is not a dataset, cohort or labelling batch.
    """
    reference = asset if isinstance(asset, str) else str(asset)
    with ws.ledger.read() as conn:
        node = lineage_queries.resolve_node(conn, reference)
    if node.type != "asset":
        raise InputError(
            f"{node.id} is a run, not a dataset",
            hint="Croissant describes datasets; export a run with `quotepart export openlineage`",
        )
    digest = Digest.parse(node.id)
    entry = ws.asset_entry(digest)
    if entry is None:
        raise NotFoundError(f"unknown asset {digest}", hint="register the asset first")
    if entry.asset_kind not in CROISSANT_KINDS:
        raise InputError(
            f"asset {digest} is a {entry.asset_kind.replace('_', ' ')}, not a dataset, cohort "
            "or labelling batch",
            hint="Croissant describes data; export a model's or service's provenance with "
            "`quotepart export prov`",
        )
    creators = [str(c) for c in entry.metadata.get("creators", [])]
    party_creators = [p for p in map(_party, creators) if p is not None]
    graph = ProvenanceGraph.read(ws, asset_ids=[digest], party_ids=party_creators)
    recorded = graph.assets[digest]
    body = recorded.body

    kind = _KIND_WORDS[body.asset_kind]
    document: dict[str, Any] = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": body.name,
        "description": body.description
        or f"A {kind} registered in the quotepart log {graph.origin}.",
        "identifier": str(digest),
        "url": body.metadata.get("url", asset_uri(graph.origin, digest)),
        # the day the asset entered the log, which is when quotepart published it
        "datePublished": recorded.registered_at.date().isoformat(),
        "citeAs": f"{body.name}. quotepart {kind} {digest}, log {graph.origin}.",
    }
    licence = _licence(ws, entry)
    if licence is not None:
        document["license"] = license_url(licence)
    if creators:
        document["creator"] = [_agent(graph, c) for c in creators]
    contributors = list(dict.fromkeys(str(c.party) for c in graph.contributions_to(digest)))
    if contributors:
        document["contributor"] = [_agent(graph, p) for p in contributors]
    keywords = [*body.metadata.get("keywords", []), *body.metadata.get("label_set", [])]
    if keywords:
        document["keywords"] = keywords
    if body.derived_from:
        document["isBasedOn"] = [asset_uri(graph.origin, d) for d in sorted(body.derived_from)]
    distribution = _distribution(graph, recorded)
    document["distribution"] = [distribution]
    fields = body.metadata.get("fields", [])
    if fields:
        source_key = "fileObject" if distribution["@type"] == "cr:FileObject" else "fileSet"
        document["recordSet"] = [
            {
                "@type": "cr:RecordSet",
                "@id": _RECORD_SET_ID,
                "name": _RECORD_SET_ID,
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"{_RECORD_SET_ID}/{quote(field['name'], safe='')}",
                        "name": field["name"],
                        "dataType": field["type"],
                        "source": {
                            source_key: {"@id": _DISTRIBUTION_ID},
                            "extract": {"column": field["name"]},
                        },
                    }
                    for field in fields
                ],
            }
        ]
    return document


def export_croissant(ws: Provenance, asset: Digest | str) -> str:
    """`croissant_metadata` as indented JSON text (the usual `croissant.json` file).

    Raises:
        NotFoundError: no such asset.
        InputError: the asset is not a dataset, cohort or labelling batch.
    """
    return json.dumps(croissant_metadata(ws, asset), indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "CONFORMS_TO",
    "CROISSANT_CONTEXT",
    "CROISSANT_KINDS",
    "asset_uri",
    "croissant_metadata",
    "export_croissant",
    "license_url",
]
