"""The signed, append-only Merkle log: canonical entries, keys, RFC 9162 proofs, C2SP checkpoints."""

from quotepart.log.canonical import canonicalize, parse_canonical
from quotepart.log.checkpoint import Checkpoint, NoteVerifier, open_note, sign_note, verifier_key
from quotepart.log.entry import SignedEntry, VerifiedEntry, parse_entry, sign_entry
from quotepart.log.keys import SigningKey, VerifyKey
from quotepart.log.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from quotepart.log.verify import AuditReport, LogSource, audit

__all__ = [
    "EMPTY_ROOT",
    "AuditReport",
    "Checkpoint",
    "CompactRange",
    "LogSource",
    "NodeId",
    "NoteVerifier",
    "SignedEntry",
    "SigningKey",
    "VerifiedEntry",
    "VerifyKey",
    "audit",
    "canonicalize",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_canonical",
    "parse_entry",
    "sign_entry",
    "sign_note",
    "verifier_key",
    "verify_consistency",
    "verify_inclusion",
]
