"""Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint commits the log to a tree size and root hash:

    <origin>\\n<tree size>\\n<base64 root hash>\\n
    \\n
    — <key name> <base64(key hash (4 bytes) ‖ Ed25519 signature (64 bytes))>\\n

The key name is the origin, and the key hash is the first 4 bytes of
SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), as in Go's `golang.org/x/mod/sumdb/note`,
so the notes verify with the ecosystem's tools (witnesses, `note.Open`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from quotepart.errors import InputError, VerificationError
from quotepart.log.keys import SIGNATURE_SIZE, SigningKey, VerifyKey
from quotepart.log.merkle import HASH_SIZE

ALGORITHM_ED25519 = 0x01
SIGNATURE_PREFIX = "— "
_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,18})$")  # a tree size fits 63 bits


def key_hash(name: str, public: VerifyKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALGORITHM_ED25519]) + public.raw).digest()[
        :4
    ]


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise InputError(
            f"not a valid note key name: {name!r}",
            hint="use a non-empty name without spaces or '+', such as example.org/log",
        )


def verifier_key(name: str, public: VerifyKey) -> str:
    """`<name>+<8 hex key hash>+<base64(0x01 ‖ public key)>`."""
    _check_key_name(name)
    encoded = base64.b64encode(bytes([ALGORITHM_ED25519]) + public.raw).decode()
    return f"{name}+{key_hash(name, public).hex()}+{encoded}"


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A parsed verifier key string."""

    name: str
    key_hash: bytes
    public: VerifyKey

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        parts = text.strip().split("+", 2)  # base64 may itself contain "+"
        bad = InputError(
            f"not a note verifier key: {text!r}", hint="expected <name>+<8 hex>+<base64 key>"
        )
        if len(parts) != 3 or len(parts[1]) != 8:
            raise bad
        name, hash_hex, encoded = parts
        try:
            hash_bytes = bytes.fromhex(hash_hex)
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise bad from exc
        if len(raw) != 33 or raw[0] != ALGORITHM_ED25519:
            raise bad
        public = VerifyKey.from_raw(raw[1:])
        if key_hash(name, public) != hash_bytes:
            raise InputError(
                f"verifier key {text!r}: key hash does not match name and key",
                hint="copy the key exactly as `quotepart log key` prints it",
            )
        return cls(name, hash_bytes, public)

    def __str__(self) -> str:
        return verifier_key(self.name, self.public)


def sign_note(text: str, name: str, key: SigningKey) -> str:
    """Sign `text` (which must end in a newline) as a note with one signature line."""
    _check_key_name(name)
    if not text.endswith("\n") or "\n\n" in text:
        raise InputError("note text must end with a newline and contain no blank line")
    signature = key.sign(text.encode())
    blob = base64.b64encode(key_hash(name, key.public) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


MAX_SIGNATURES = 100  # as Go's note.Open; C2SP asks verifiers to accept at least 16


def open_note(note: str | bytes, verifier: NoteVerifier) -> str:
    """Return the note's text when it carries a valid signature by `verifier`, else raise.

    Signature lines by other keys are ignored, as C2SP allows cosignatures.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError("malformed note: not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise VerificationError("malformed note: contains a control character")
    text, separator, signatures = note.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise VerificationError("malformed note: no blank line before the signatures")
    text += "\n"
    lines = signatures[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    found = None
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise VerificationError(f"malformed signature line {line!r}")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise VerificationError(f"malformed signature line {line!r}") from exc
        if len(raw) < 5:
            raise VerificationError(f"malformed signature line {line!r}")
        if name == verifier.name and raw[:4] == verifier.key_hash:
            found = raw
    if found is None:
        raise VerificationError(
            f"note carries no signature by {verifier.name}+{verifier.key_hash.hex()}"
        )
    if len(found) != 4 + SIGNATURE_SIZE:
        raise VerificationError(f"signature by {verifier.name} has the wrong length")
    verifier.public.verify(found[4:], text.encode())
    return text


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The (origin, tree size, root hash) triple a checkpoint note signs."""

    origin: str
    tree_size: int
    root_hash: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n"

    def sign(self, key: SigningKey) -> str:
        return sign_note(self.text(), self.origin, key)

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise VerificationError("checkpoint needs origin, size and root lines")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not _DECIMAL_RE.match(size_text):
            raise VerificationError(f"checkpoint tree size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise VerificationError(f"checkpoint root {root_text!r} is not base64") from exc
        if len(root) != HASH_SIZE:
            raise VerificationError(f"checkpoint root has {len(root)} bytes, expected {HASH_SIZE}")
        return cls(origin, int(size_text), root)

    @classmethod
    def open(cls, note: str, verifier: NoteVerifier) -> Checkpoint:
        """Verify the note's signature and parse the checkpoint it signs."""
        checkpoint = cls.parse_text(open_note(note, verifier))
        if checkpoint.origin != verifier.name:
            raise VerificationError(
                f"checkpoint origin {checkpoint.origin!r} differs from key name {verifier.name!r}"
            )
        return checkpoint
