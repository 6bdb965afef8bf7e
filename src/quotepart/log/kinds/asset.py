"""`asset.registered`: content-addressed things that contribute to or make up a model.

An asset's digest says how it was computed (`scheme`), so anyone holding the content can
recompute it: `sha256` of one blob, an RFC 9162 root over records (`merkle-records`) or
over a folder's files (`merkle-files`), or `sha256` of a canonical JSON description for
things that are not bytes (a service, a compute grant).

`metadata` carries the standards' fields, checked per kind: Croissant's (licence,
creators, record fields) for datasets and model-card fields for models. Numbers that
are not counts are decimal strings, since entries hold no floats.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import field
from typing import Any, Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

ASSET_KINDS = frozenset(
    {"cohort", "compute_grant", "dataset", "labelling_batch", "model", "service"}
)
DIGEST_SCHEMES = frozenset({"canonical-json", "merkle-files", "merkle-records", "sha256"})
FIELD_TYPES = frozenset(
    {"sc:Boolean", "sc:Date", "sc:DateTime", "sc:Float", "sc:Integer", "sc:Text", "sc:URL"}
)
"""Croissant's record-field data types (schema.org), which the Croissant export writes."""

_SPDX_RE = re.compile(r"^(LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.+-]{0,63})$")
_DECIMAL_RE = re.compile(r"^-?(0|[1-9][0-9]{0,39})(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,3})?$")
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_PARTY_RE = re.compile(r"^party:[0-9A-HJKMNP-TV-Z]{26}$")

Checker = Callable[[Any], bool]


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 10_000


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(_text(item) for item in value)


def _url(value: Any) -> bool:
    return isinstance(value, str) and bool(_URL_RE.match(value))


def _spdx(value: Any) -> bool:
    return isinstance(value, str) and bool(_SPDX_RE.match(value))


def _decimal_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        _text(key) and isinstance(v, str) and bool(_DECIMAL_RE.match(v)) for key, v in value.items()
    )


def _text_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        _text(key) and isinstance(v, str) and len(v) <= 10_000 for key, v in value.items()
    )


def _party_counts(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str)
        and _PARTY_RE.match(key)
        and isinstance(count, int)
        and not isinstance(count, bool)
        and count > 0
        for key, count in value.items()
    )


def _digests(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, str) and _DIGEST_RE.match(item) for item in value
    )


def _fields(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict)
        and set(item) == {"name", "type"}
        and _text(item["name"])
        and item["type"] in FIELD_TYPES
        for item in value
    )


def _party(value: Any) -> bool:
    return isinstance(value, str) and bool(_PARTY_RE.match(value))


_DESCRIBED: dict[str, Checker] = {"license": _spdx, "creators": _texts, "url": _url}
_RECORDS: dict[str, Checker] = {**_DESCRIBED, "fields": _fields, "media_type": _text}

METADATA_FIELDS: dict[str, dict[str, Checker]] = {
    "dataset": {**_RECORDS, "keywords": _texts},
    "cohort": {**_RECORDS, "selection": _text},
    "labelling_batch": {**_RECORDS, "annotators": _party_counts, "label_set": _texts},
    "model": {
        **_DESCRIBED,
        "framework": _text,
        "estimator": _text,
        "parameters": _text_map,
        "intended_use": _text,
        "limitations": _text,
        "metrics": _decimal_map,
        "training_data": _digests,
    },
    "service": {"endpoint": _url, "unit": _text, "url": _url},
    "compute_grant": {"grantor": _party, "provider": _text, "resources": _decimal_map},
}
"""Which metadata keys each asset kind may carry, and what each must hold."""


def upcast_asset_v1(body: RawBody) -> RawBody:
    """v1 assets were single blobs with no metadata."""
    return {**body, "scheme": "sha256", "derived_from": [], "metadata": {}}


@entry_kind("asset.registered", version=2, upcasters={1: upcast_asset_v1})
class AssetRegistered(KindBody):
    asset: Digest
    asset_kind: str
    name: str
    scheme: str = "sha256"
    size: int | None = None  # bytes, records or files, by scheme
    derived_from: tuple[Digest, ...] = ()  # a cohort's dataset, a service's model, …
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_body(self) -> RawBody:
        body: RawBody = {
            "asset": str(self.asset),
            "asset_kind": self.asset_kind,
            "name": self.name,
            "scheme": self.scheme,
            "derived_from": sorted({str(d) for d in self.derived_from}),
            "metadata": self.metadata,
        }
        if self.size is not None:
            body["size"] = self.size
        if self.description is not None:
            body["description"] = self.description
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only(
            "asset",
            "asset_kind",
            "name",
            "scheme",
            "size",
            "derived_from",
            "description",
            "metadata",
        )
        asset = Digest.parse(read.text("asset"))
        asset_kind = read.choice("asset_kind", ASSET_KINDS)
        derived_from = tuple(
            Digest.parse(d) for d in read.text_list("derived_from", pattern=_DIGEST_RE)
        )
        if asset in derived_from:
            raise MalformedEntryError(
                f"asset {asset} names itself in derived_from", hint="an asset derives from others"
            )
        metadata = read.mapping("metadata")
        checkers = METADATA_FIELDS[asset_kind]
        for key, value in metadata.items():
            checker = checkers.get(key)
            if checker is None:
                raise MalformedEntryError(
                    f"{cls.KIND}: a {asset_kind} has no metadata field {key!r}",
                    hint=f"{asset_kind} metadata fields: {', '.join(sorted(checkers))}",
                )
            if not checker(value):
                raise MalformedEntryError(
                    f"{cls.KIND}: metadata field {key!r} of a {asset_kind} is malformed: {value!r}",
                    hint=_HINTS.get(key, "see quotepart.log.kinds.asset.METADATA_FIELDS"),
                )
        return cls(
            asset=asset,
            asset_kind=asset_kind,
            name=read.name("name"),
            scheme=read.choice("scheme", DIGEST_SCHEMES),
            size=read.integer("size", optional=True),
            derived_from=derived_from,
            description=read.text("description", optional=True, max_length=10_000),
            metadata=metadata,
        )


_HINTS = {
    "license": "use an SPDX licence id such as CC-BY-4.0, or LicenseRef-<name>",
    "fields": "a list of {name, type} with type one of " + ", ".join(sorted(FIELD_TYPES)),
    "metrics": "metric values are decimal strings such as '0.93' (entries hold no floats)",
    "resources": "resource amounts are decimal strings such as '120' or '0.5'",
    "annotators": "a map of party id to a positive count of annotations",
    "training_data": "a list of sha256:<hex> digests",
    "endpoint": "an absolute URL such as https://api.example.org/v1/predict",
    "grantor": "a party id, party:<ULID>",
}


__all__ = [
    "ASSET_KINDS",
    "DIGEST_SCHEMES",
    "FIELD_TYPES",
    "METADATA_FIELDS",
    "AssetRegistered",
    "upcast_asset_v1",
]
