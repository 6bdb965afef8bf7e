"""CloudEvents 1.0 in: structured JSON events, one per line or as a batch array.

Validation follows the CloudEvents 1.0 specification (required attributes `id`,
`source`, `specversion` "1.0" and `type`; `time` an RFC 3339 timestamp; attribute names
of lower-case letters and digits) and adds what metering needs: at most 64 KiB per
event. OpenMeter's events are CloudEvents, so they are accepted unchanged.

Each fault is reported per event with its position (the line number of a JSON-lines
file, the 1-based index in a batch array) and never names the consumer identifier: an
error message can end up in logs a consumer never agreed to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson

from quotepart.errors import InputError

MAX_EVENT_BYTES = 64 * 1024
SPEC_VERSION = "1.0"
REQUIRED = ("id", "source", "specversion", "type")
_KNOWN = frozenset(
    {"id", "source", "specversion", "type", "time", "subject", "datacontenttype",
     "dataschema", "data", "data_base64"}
)  # fmt: skip
_ATTRIBUTE_RE = re.compile(r"^[a-z0-9]{1,20}$")
RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that was not recorded: where it was, why, and its raw bytes (for a
    reject file the user fixes and sends again; never shown in messages)."""

    position: int
    reason: str
    raw: bytes = b""

    def __str__(self) -> str:
        return f"event {self.position}: {self.reason}"


class EventError(ValueError):
    """One event's fault (caught per event; the good events around it go on)."""


def parse_time(text: Any) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime."""
    match = RFC3339_RE.match(text) if isinstance(text, str) else None
    if match is None:
        shown = repr(text)[:40]
        raise EventError(f"time {shown} is not an RFC 3339 timestamp like 2026-12-01T10:00:00Z")
    fraction, zone = match.group(1), match.group(2)
    if (fraction is None or len(fraction) <= 7) and text[10] == "T" and zone != "z":
        candidate = text  # the common spelling: Python reads it as it is
    else:  # lower-case t/z, or more than 6 fractional digits (Python reads at most 6)
        head = text[:10] + "T" + text[11:19]
        candidate = head + (fraction[:7] if fraction else "") + ("Z" if zone in "Zz" else zone)
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise EventError(f"time {text[:40]!r} is not a valid date and time") from exc
    return moment if zone in "Zz" else moment.astimezone(UTC)


def check_event(event: Any, size: int) -> dict[str, Any]:
    """The event, if it is a valid CloudEvents 1.0 structured event of at most 64 KiB.

    Raises:
        EventError: what is wrong, naming the attribute (never a consumer's identifier).
    """
    if size > MAX_EVENT_BYTES:
        raise EventError(f"{size:,} bytes, more than the limit of {MAX_EVENT_BYTES:,} (64 KiB)")
    if not isinstance(event, dict):
        raise EventError("not a JSON object (a CloudEvent is an object with id, source, ...)")
    get = event.get
    if not (get("id") and get("source") and get("specversion") and get("type")) or not (
        type(event["id"]) is str
        and type(event["source"]) is str
        and type(event["specversion"]) is str
        and type(event["type"]) is str
    ):
        for name in REQUIRED:
            value = event.get(name)
            if not isinstance(value, str) or not value:
                raise EventError(
                    f"missing required attribute {name!r}"
                    if value is None
                    else f"attribute {name!r} must be a non-empty string"
                )
    if event["specversion"] != SPEC_VERSION:
        raise EventError(f'specversion {event["specversion"][:20]!r} is not supported (only "1.0")')
    if not _KNOWN.issuperset(event):
        for name in event:
            if name not in _KNOWN and not _ATTRIBUTE_RE.match(name):
                raise EventError(
                    f"attribute name {name[:40]!r} is not valid: CloudEvents attribute names "
                    "are 1-20 lower-case letters or digits"
                )
    return event


def read_events(source: BinaryIO | bytes) -> Iterator[tuple[int, bytes]]:
    """(position, raw event bytes) from a JSON-lines stream or a batch array.

    A batch (`application/cloudevents-batch+json`) is one JSON array; anything else is
    read as one event per line (blank lines skipped, positions are line numbers).

    Raises:
        InputError: the input starts like a batch array but is not valid JSON.
    """
    if isinstance(source, bytes):
        data: bytes | None = source
        stream = None
    else:
        stream = source
        head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
        data = None if head.lstrip()[:1] != b"[" else stream.read()
    if data is not None and data.lstrip()[:1] == b"[":
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"the batch is not valid JSON ({exc})",
                hint=f"send a JSON array of events ({BATCH_CONTENT_TYPE}) or one event per line",
            ) from exc
        for position, item in enumerate(items, start=1):
            yield position, orjson.dumps(item)
        return
    lines: Iterable[bytes] = data.splitlines() if data is not None else stream  # type: ignore[assignment]
    for position, line in enumerate(lines, start=1):
        if line.strip():
            yield position, line


def to_events(items: Iterable[Any]) -> Iterator[tuple[int, bytes]]:
    """(position, raw bytes) of SDK input: dicts, JSON bytes or str, or cloudevents SDK
    objects (anything with `get_attributes()` and `get_data()`)."""
    for position, item in enumerate(items, start=1):
        if isinstance(item, bytes | bytearray | memoryview):
            yield position, bytes(item)
        elif isinstance(item, str):
            yield position, item.encode()
        elif isinstance(item, dict):
            try:
                yield position, orjson.dumps(item)
            except TypeError:  # a value orjson cannot write: reported as this event's fault
                yield position, b"\x00unserialisable"
        elif hasattr(item, "get_attributes") and hasattr(item, "get_data"):
            attributes = dict(item.get_attributes())
            data = item.get_data()
            if data is not None:
                attributes["data"] = data
            yield position, orjson.dumps(attributes, default=str)
        else:
            yield position, b"\x00unsupported"


__all__ = [
    "BATCH_CONTENT_TYPE",
    "MAX_EVENT_BYTES",
    "EventError",
    "Rejected",
    "check_event",
    "parse_time",
    "read_events",
    "to_events",
]
