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


MAX_ENTRY_BYTES = 1 << 20
"""The largest entry a workspace appends by default (1 MiB): an entry states a fact, not
its data; content is registered by its digest. A workspace may set its own limit, up to
`ENTRY_BYTES_CEILING` (`max_entry_bytes` in workspace.json)."""
ENTRY_BYTES_CEILING = 8 << 20
"""The largest entry anything parses (8 MiB), whatever a workspace allows: checked before
any parsing, so no entry can make a reader build a huge document."""
MAX_DEPTH = 16
"""The deepest nesting of objects and lists in an entry."""
MAX_STRING = 65_536
"""The longest string in an entry, in characters (each kind bounds its fields further)."""
MAX_LIST = 100_000
"""The most items in one list or object of an entry."""


def parse_canonical(data: bytes, *, max_bytes: int = ENTRY_BYTES_CEILING) -> dict[str, Any]:
    """Parse a JSON object and insist that `data` is already in canonical form.

    Accepting non-canonical bytes would let two byte strings stand for one entry, and
    so two leaf hashes for one fact. The limits above are checked first: the size before
    any parsing, integers while parsing (never more than 16 digits), nesting, strings and
    lists right after.
    """
    if len(data) > max_bytes:
        raise MalformedEntryError(
            f"the entry is {len(data):,} bytes, more than the limit of {max_bytes:,}",
            hint="an entry states a fact, not data: register content by its digest "
            "(register_asset), and keep names and notes short",
        )
    try:
        document = json.loads(
            data, parse_float=_refuse_float, parse_constant=_refuse_float, parse_int=_safe_integer
        )
    except RecursionError as exc:
        raise MalformedEntryError(
            f"the entry nests deeper than {MAX_DEPTH} levels",
            hint="entries are flat records of facts",
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEntryError(
            f"not JSON: {exc}", hint="an entry is one RFC 8785 canonical JSON object"
        ) from exc
    if not isinstance(document, dict):
        raise MalformedEntryError(
            f"an entry must be a JSON object, got {type(document).__name__}",
            hint="an entry is one RFC 8785 canonical JSON object",
        )
    # Only a document with more brackets than the depth limit can nest too deep, and only
    # a long one can hold a long string or list: most entries skip the walk.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH or len(data) > MAX_STRING:
        _check_shape(document, 1)
    if not _is_canonical_parsed(document, data):
        raise MalformedEntryError(
            "entry is not in RFC 8785 canonical form",
            hint="re-serialise it with an RFC 8785 library (e.g. the rfc8785 package) before signing",
        )
    return document


_SAFE_INTEGER = 2**53 - 1  # RFC 8785 numbers are IEEE doubles (§3.2.2.3)
_BELOW_U_D000 = bytes(range(0xED))  # deleting these leaves the UTF-8 bytes of U+D000 and above


def _check_shape(value: Any, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            raise MalformedEntryError(
                f"the entry nests deeper than {MAX_DEPTH} levels",
                hint="entries are flat records of facts",
            )
        if len(value) > MAX_LIST:
            raise MalformedEntryError(
                f"a list or object of the entry has {len(value):,} items, more than {MAX_LIST:,}",
                hint="record such facts in several entries",
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and len(key) > MAX_STRING:
                raise MalformedEntryError(f"a key of the entry is longer than {MAX_STRING:,}")
            _check_shape(item, depth + 1)
    elif isinstance(value, str) and len(value) > MAX_STRING:
        raise MalformedEntryError(
            f"a string of the entry has {len(value):,} characters, more than {MAX_STRING:,}",
            hint="names and notes are short; content is registered by its digest",
        )


def _safe_integer(text: str) -> int:
    if len(text) > 17:  # beyond ±2^53 whatever the digits, and never a huge int() to build
        raise MalformedEntryError(
            f"integer of {len(text)} digits is beyond ±2^53, which RFC 8785 JSON cannot "
            "carry exactly",
            hint="write such numbers as strings",
        )
    value = int(text)
    if not -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
        raise MalformedEntryError(
            f"integer {text} is beyond ±2^53, which RFC 8785 JSON cannot carry exactly",
            hint="write such numbers as strings",
        )
    return value


def _is_canonical_parsed(document: dict[str, Any], data: bytes) -> bool:
    """Whether `data` (which `document` was parsed from, with safe integers) is RFC 8785.

    Bytes are produced only by the rfc8785 package (`canonicalize`). Checking them is
    an auditor's hot loop, where that pure-Python serialiser costs as much as the
    signature check, so this first compares with the C JSON encoder. It gives the very
    same bytes when every integer is a safe integer (ensured while parsing) and no
    character is at or above U+D000 (no UTF-8 byte >= 0xED): below that, sorting keys by
    code point equals RFC 8785's UTF-16 order (§3.2.3), and both escape strings alike.
    Any other document, or any mismatch, is decided by rfc8785 itself.
    """
    if data.isascii() or not data.translate(None, _BELOW_U_D000):
        fast = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if fast.encode() == data:
            return True
    return canonicalize(document) == data


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
