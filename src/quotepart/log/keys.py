"""Ed25519 keys: the only module that imports `cryptography`.

Private keys are stored as PKCS#8 PEM files readable by their owner only (0600).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from quotepart.errors import InputError, SignatureError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An Ed25519 public key."""

    raw: bytes

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        if len(raw) != PUBLIC_KEY_SIZE:
            raise InputError(
                f"an Ed25519 public key has {PUBLIC_KEY_SIZE} bytes, got {len(raw)}",
                hint="pass the raw 32-byte public key (base64 in entries)",
            )
        return cls(raw)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Return None when `signature` is valid for `message`, else raise SignatureError."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError(
                f"signature does not verify under key {self.raw.hex()[:16]}…"
            ) from exc


class SigningKey:
    """An Ed25519 private key; `repr` never shows the secret."""

    __slots__ = ("_private", "public")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = VerifyKey(
            private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A key from its 32-byte seed (RFC 8032 private key); used for test vectors."""
        if len(seed) != 32:
            raise InputError(f"an Ed25519 seed has 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "key") -> SigningKey:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"{source} is not a PEM-encoded private key",
                hint="point to a key written by quotepart",
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise InputError(
                f"{source} is not an Ed25519 key", hint="quotepart signs with Ed25519 only"
            )
        return cls(private)

    def save(self, path: Path) -> None:
        """Write the key with mode 0600, created exclusively: an existing key is never overwritten."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise InputError(
                f"key file {path} already exists; refusing to overwrite a key",
                hint="move it away first if it really is no longer needed",
            ) from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.to_pem())
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read key {path}: {exc.strerror}") from exc
        return cls.from_pem(data, source=str(path))

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.raw.hex()[:16]}…)"


def verify_batch(items: list[tuple[bytes, bytes, bytes]]) -> list[int]:
    """Check many (public key, signature, message) triples; return the positions that fail.

    Module-level and picklable so an auditor can fan it out over processes.
    """
    failed = []
    for position, (public_raw, signature, message) in enumerate(items):
        try:
            Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            failed.append(position)
    return failed
