"""RFC 8785 canonical JSON: one byte string per document, so a hash or signature is stable."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from quotepart.errors import MalformedEntryError


def canonicalize(document: Any) -> bytes:
    """The RFC 8785 bytes of `document`; floats are refused, as amounts must be integers."""
    _reject_floats(document)
    try:
        return bytes(rfc8785.dumps(document))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedEntryError(
            f"cannot canonicalise: {exc}",
            hint="use only strings, integers, booleans, null, lists and objects",
        ) from exc


def parse_canonical(data: bytes) -> dict[str, Any]:
    """Parse a JSON object and insist that `data` is already in canonical form.

    Accepting non-canonical bytes would let two byte strings stand for one entry, and
    so two leaf hashes for one fact.
    """
    try:
        document = json.loads(data, parse_float=_refuse_float, parse_constant=_refuse_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEntryError(
            f"not JSON: {exc}", hint="an entry is one RFC 8785 canonical JSON object"
        ) from exc
    if not isinstance(document, dict):
        raise MalformedEntryError(
            f"an entry must be a JSON object, got {type(document).__name__}",
            hint="an entry is one RFC 8785 canonical JSON object",
        )
    if canonicalize(document) != data:
        raise MalformedEntryError(
            "entry is not in RFC 8785 canonical form",
            hint="re-serialise it with an RFC 8785 library (e.g. the rfc8785 package) before signing",
        )
    return document


def _refuse_float(text: str) -> Any:
    raise MalformedEntryError(
        f"floating-point number {text} in an entry",
        hint="write amounts as integers of minor units and ratios as strings like '1/3'",
    )


def _reject_floats(document: Any) -> None:
    if isinstance(document, float):
        _refuse_float(repr(document))
    elif isinstance(document, dict):
        for value in document.values():
            _reject_floats(value)
    elif isinstance(document, list | tuple):
        for value in document:
            _reject_floats(value)
