"""The signed entry envelope: kind, version, timestamp, author, origin, body and signature.

Wire form (RFC 8785 canonical JSON; the leaf of the Merkle log is exactly these bytes):

    {"author":"party:…","body":{…},"kind":"party.registered","origin":"example.org/log",
     "sig":"<base64>","ts":"…Z","v":1}

("v" is the version of the body's kind; the envelope's own version is told by its fields.)
The signature covers `SIGNING_CONTEXT ‖ canonical(envelope without "sig")`; the context
string keeps a quotepart signature from being replayed as a signature on anything else.
The entry id is the RFC 9162 leaf hash of the wire bytes.

Envelope 2 (every entry signed now) names inside what is signed the origin of the log the
entry is meant for, so an entry of one log cannot be appended to another: a party whose
key works in several logs signs once per log. Envelope 1 had no "origin" and was signed
under `LEGACY_SIGNING_CONTEXT`; such entries lie in existing logs, so they still parse
(upcast with `origin=None`) and verify, but `LogStore.append` takes no new ones.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

from quotepart.errors import (
    KindMismatchError,
    MalformedEntryError,
    UnknownKindError,
    WrongLogError,
)
from quotepart.ids import Clock, PartyId, format_timestamp, parse_timestamp, utc_now
from quotepart.log.canonical import canonicalize, parse_canonical
from quotepart.log.keys import SIGNATURE_SIZE, SigningKey, VerifyKey
from quotepart.log.kinds import CURRENT, EntryBody, decode_body
from quotepart.log.merkle import leaf_hash

ENVELOPE_VERSION = 2
SIGNING_CONTEXT = b"quotepart/entry/v2\n"
LEGACY_SIGNING_CONTEXT = b"quotepart/entry/v1\n"
"""The context of envelope 1 (no origin); a v2 signature never verifies as a v1 one."""
B = TypeVar("B", bound=EntryBody)
_FIELDS = {"author", "body", "kind", "origin", "sig", "ts", "v"}
_LEGACY_FIELDS = _FIELDS - {"origin"}


@dataclass(frozen=True, eq=False)
class SignedEntry:
    """An entry as it lies in the log; build with `sign_entry` or `parse_entry`.

    Two entries are equal when their wire bytes are: whether this process has checked
    the signature (see `VerifiedEntry`) does not change which entry it is.
    """

    kind: str
    version: int
    timestamp: str
    author: PartyId
    origin: str | None  # None: envelope 1, signed before entries named their log
    raw_body: dict[str, Any]
    signature: bytes
    canonical: bytes

    @property
    def envelope(self) -> int:
        """1 for a legacy entry bound to no log, `ENVELOPE_VERSION` otherwise."""
        return 1 if self.origin is None else ENVELOPE_VERSION

    def check_origin(self, origin: str, *, where: str = "") -> None:
        """Raise `WrongLogError` unless this entry names `origin` as its log.

        An envelope 1 entry names no log and passes: it can only be checked by the log
        that already holds it (`LogStore.append` refuses new ones).
        """
        if self.origin is not None and self.origin != origin:
            raise WrongLogError(
                f"{where or 'entry ' + self.leaf_hash.hex()[:16] + '…'}: "
                f"meant for log {self.origin!r}, not {origin!r}",
                hint=f"have {self.author} sign the entry again for the log {origin!r}",
            )

    @cached_property
    def leaf_hash(self) -> bytes:
        """The entry id: RFC 9162 leaf hash of the canonical bytes."""
        return leaf_hash(self.canonical)

    @property
    def signed_message(self) -> bytes:
        """What the author signed, cut out of the canonical bytes (no second canonicalisation).

        RFC 8785 sorts the envelope's keys (author, body, kind, origin, sig, ts, v), so the
        canonical form without "sig" is the canonical form with its `,"sig":"…"` member
        removed; it is the last such member, since only "ts" and "v" follow it.
        """
        start = self.canonical.rindex(b',"sig":"')
        end = self.canonical.index(b'"', start + 8) + 1
        context = LEGACY_SIGNING_CONTEXT if self.origin is None else SIGNING_CONTEXT
        return context + self.canonical[:start] + self.canonical[end:]

    @property
    def time(self) -> datetime:
        return parse_timestamp(self.timestamp)

    @cached_property
    def _decoded_body(self) -> EntryBody:
        return decode_body(self.kind, self.version, self.raw_body)

    def body(self) -> EntryBody:
        """The typed body, upcast to the current version (decoded once per entry)."""
        return self._decoded_body

    def body_as(self, kind: type[B]) -> B:
        """The typed body, which must be of `kind` (a `KindMismatchError` names both otherwise).

        This replaces `body = entry.body(); assert isinstance(body, Kind)`: the check stays
        on under `python -O`, and a leaf index pointing at the wrong kind says so.
        """
        body = self._decoded_body
        if not isinstance(body, kind):
            raise KindMismatchError(
                f"entry {self.leaf_hash.hex()[:16]}… is a {self.kind}, not a {kind.KIND}",
                hint=f"pass the leaf index or hash of a {kind.KIND} entry",
            )
        return body

    def verify(self, key: VerifyKey) -> None:
        """Raise SignatureError unless `key` signed this entry."""
        key.verify(self.signature, self.signed_message)

    def verified(self, key: VerifyKey) -> VerifiedEntry:
        """This entry, carrying the fact that `key` signed it (checked here, once).

        Raises:
            SignatureError: `key` did not sign it.
        """
        if isinstance(self, VerifiedEntry) and self.signer == key:
            return self
        self.verify(key)
        return VerifiedEntry(**self._fields(), signer=key)

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ENVELOPE}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignedEntry) and other.canonical == self.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)


_ENVELOPE = (
    "kind", "version", "timestamp", "author", "origin", "raw_body", "signature", "canonical",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class VerifiedEntry(SignedEntry):
    """A signed entry whose signature this process knows to be by `signer`.

    Made only by `sign_entry` (which signs it) and `SignedEntry.verified` (which checks
    it), so the store may skip a second Ed25519 verification when `signer` is the key the
    log registered for the author: the fact travels with the entry as a type, not as a
    flag a caller could set on any batch.
    """

    signer: VerifyKey


def signed_message(
    kind: str,
    version: int,
    timestamp: str,
    author: PartyId,
    body: dict[str, Any],
    *,
    origin: str | None,
) -> bytes:
    """What the author signs; `origin=None` gives the legacy envelope 1 message."""
    unsigned: dict[str, Any] = {
        "author": str(author), "body": body, "kind": kind, "ts": timestamp, "v": version,
    }  # fmt: skip
    if origin is None:
        return LEGACY_SIGNING_CONTEXT + canonicalize(unsigned)
    unsigned["origin"] = origin
    return SIGNING_CONTEXT + canonicalize(unsigned)


def check_origin_name(origin: object) -> str:
    """`origin` if it can name a log (a note key name), else MalformedEntryError."""
    if (
        not isinstance(origin, str)
        or not origin
        or "+" in origin
        or any(c.isspace() for c in origin)
        or not origin.isprintable()
    ):
        raise MalformedEntryError(
            f"entry origin must name a log, got {origin!r}",
            hint="the origin is the log's name, such as example.org/log (`quotepart log key`)",
        )
    return origin


def refuse_nul(kind: str, value: Any, path: str = "body") -> None:
    """Raise MalformedEntryError if any string (key or value) in `value` holds U+0000.

    JSON and SQLite carry NUL, PostgreSQL's text columns cannot: a log must read the same
    on every backend, so no entry may hold one.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise MalformedEntryError(
                f"{kind}: {path} holds a NUL character (U+0000)",
                hint="remove it; names and texts in entries cannot contain NUL",
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(kind, key, f"a key of {path}")
            refuse_nul(kind, item, f"{path}.{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            refuse_nul(kind, item, f"{path}[{number}]")


def sign_entry(
    body: EntryBody, *, author: PartyId, key: SigningKey, origin: str, clock: Clock = utc_now
) -> VerifiedEntry:
    """Sign `body` as `author` for the log named `origin` (only that log accepts it).

    The body is validated by a round trip through its kind.
    """
    check_origin_name(origin)
    raw_body = body.to_body()
    type(body).from_body(raw_body)
    refuse_nul(body.KIND, raw_body)
    timestamp = format_timestamp(clock())
    message = signed_message(body.KIND, body.VERSION, timestamp, author, raw_body, origin=origin)
    signature = key.sign(message)
    unsigned = message[len(SIGNING_CONTEXT) :]
    position = unsigned.rindex(b',"ts":"')  # "sig" sorts just before "ts", the last-but-one key
    wire = (
        unsigned[:position] + b',"sig":"' + base64.b64encode(signature) + b'"' + unsigned[position:]
    )
    entry = VerifiedEntry(
        body.KIND,
        body.VERSION,
        timestamp,
        author,
        origin,
        raw_body,
        signature,
        wire,
        signer=key.public,
    )
    entry.__dict__["_decoded_body"] = body  # fills the cache: it was validated above
    return entry


def parse_entry(data: bytes) -> SignedEntry:
    """Parse and check the envelope and body of wire bytes (not yet the signature).

    Raises:
        MalformedEntryError: not canonical JSON, or a field missing or of the wrong type.
        UnknownKindError: a kind or version this build does not know.
    """
    raw = parse_canonical(data)
    legacy = isinstance(raw, dict) and set(raw) == _LEGACY_FIELDS
    document = upcast_envelope_v1(raw)
    missing, extra = _FIELDS - set(document), set(document) - _FIELDS
    if missing or extra:
        raise MalformedEntryError(
            f"entry envelope has missing fields {sorted(missing)} / unexpected fields {sorted(extra)}",
            hint=f"an entry has exactly the fields {sorted(_FIELDS)}",
        )
    origin = None if legacy else check_origin_name(document["origin"])
    kind, version, body = document["kind"], document["v"], document["body"]
    if not isinstance(kind, str) or kind not in CURRENT:
        raise UnknownKindError(
            f"unknown entry kind {kind!r}", hint=f"known kinds: {', '.join(sorted(CURRENT))}"
        )
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedEntryError(f"entry version must be an integer, got {version!r}")
    if not isinstance(body, dict):
        raise MalformedEntryError(f"entry body must be a JSON object, got {type(body).__name__}")
    refuse_nul(kind, body)
    decoded = decode_body(kind, version, body)
    author = PartyId.parse(document["author"])
    timestamp = document["ts"]
    parse_timestamp(timestamp)
    try:
        signature = base64.b64decode(document["sig"], validate=True)
    except (TypeError, ValueError, binascii.Error) as exc:
        raise MalformedEntryError("entry signature is not base64") from exc
    if len(signature) != SIGNATURE_SIZE:
        raise MalformedEntryError(
            f"entry signature has {len(signature)} bytes, expected {SIGNATURE_SIZE}"
        )
    entry = SignedEntry(kind, version, timestamp, author, origin, body, signature, data)
    entry.__dict__["_decoded_body"] = decoded  # fills the cache: decoded just above
    return entry


def upcast_envelope_v1(document: Any) -> Any:
    """An envelope 1 document (exactly the legacy fields) with `origin: None` added.

    Only the parsed view changes: the wire bytes, the leaf hash and the signed message
    (under `LEGACY_SIGNING_CONTEXT`) stay those of envelope 1. A JSON `null` origin on
    the wire is not envelope 1 and is refused by the origin check.
    """
    if isinstance(document, dict) and set(document) == _LEGACY_FIELDS:
        return {**document, "origin": None}
    return document
