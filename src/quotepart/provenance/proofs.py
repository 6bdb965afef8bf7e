"""Record proofs: the file that proves one record is in a registered asset, and its check.

A record-set asset (a table, a folder) is registered under the RFC 9162 Merkle root of
its records, so one record can be shown to be in it without revealing the others.
`record_proof` packs everything needed to check that on another machine: the record,
its Merkle path to the asset's digest, the `asset.registered` entry, that entry's
inclusion proof in the log, a signed checkpoint and the log's verifier key.
`verify_record_proof` repeats the check with nothing but that file:

    record ──path──► asset digest ◄── asset.registered entry ──inclusion──► signed checkpoint

What the file proves: the record is at `record_index` of the `record_count` records of
the asset, and the log that the checkpoint signs registered that asset. What it cannot
prove alone: that the verifier key is the log's own; pass a key from a source you trust.

The format (`quotepart/record-proof/v1`) is a flat JSON object; its field names and
spellings are the wire format and never change within a version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quotepart.errors import InputError, MalformedEntryError, NotFoundError, VerificationError
from quotepart.ids import Digest
from quotepart.log import Checkpoint, NoteVerifier, leaf_hash, parse_entry, verify_inclusion
from quotepart.log.kinds import AssetRegistered
from quotepart.provenance.digest import MemberProof
from quotepart.store import LogStore
from quotepart.store.queries.provenance import asset_leaf

RECORD_PROOF_FORMAT = "quotepart/record-proof/v1"


@dataclass(frozen=True, slots=True)
class VerifiedRecord:
    """What a record proof showed: where the record sits, and in which log."""

    asset: Digest
    record_index: int
    record_count: int
    leaf_index: int  # of the asset.registered entry
    tree_size: int  # of the signed checkpoint
    origin: str
    verifier_key: str  # the key the checkpoint was checked with


def record_proof(
    store: LogStore, member: MemberProof, asset: Digest, verifier: NoteVerifier
) -> dict[str, Any]:
    """A self-contained file proving that `member` is in `asset`, and `asset` is in the log.

    `member` comes from `Workspace.prove_record`. The file is checked before it is
    returned, so a proof handed out always verifies.

        document = record_proof(ws.store, ws.prove_record(asset, table, 17), asset, ws.verifier)

    Raises:
        NotFoundError: the asset is not registered in this log.
        VerificationError: `member` is not in `asset`, or the log has no signed
            checkpoint of its current size.
    """
    with store.engine.connect() as conn:
        leaf_index = asset_leaf(conn, asset)
    if leaf_index is None:
        raise NotFoundError(f"unknown asset {asset}", hint="register the asset first")
    _check_member(member, asset)
    inclusion = store.inclusion_proof(leaf_index)
    note = store.checkpoint_at(inclusion.tree_size)
    if note is None:
        raise VerificationError(
            f"the log has no signed checkpoint of its size {inclusion.tree_size}",
            hint="run `quotepart verify` to check the log, then try again",
        )
    entry = store.entry(leaf_index)[1]
    document = {
        "format": RECORD_PROOF_FORMAT,
        "asset": str(asset),
        "record": member.member.hex(),
        "record_index": member.index,
        "record_count": member.count,
        "record_path": [node.hex() for node in member.proof],
        "entry": entry.decode(),
        "leaf_index": inclusion.leaf_index,
        "tree_size": inclusion.tree_size,
        "inclusion_path": [node.hex() for node in inclusion.proof],
        "checkpoint": note,
        "verifier_key": str(verifier),
    }
    verify_record_proof(document)
    return document


def verify_record_proof(
    document: Mapping[str, Any], *, trusted_key: str | None = None
) -> VerifiedRecord:
    """Check a record proof with nothing else: record → asset digest → log entry → checkpoint.

    `trusted_key` is the log's verifier key from a source you trust; without it the key
    in the file is used, which shows the file is consistent but not that the log is the
    real one.

        verified = verify_record_proof(json.loads(text), trusted_key=key)

    Raises:
        InputError: the file is not a record proof, or a part has the wrong shape.
        VerificationError: a path, the entry or the checkpoint's signature does not
            check out; the message says what was expected and what was computed.
    """
    try:
        if document.get("format") != RECORD_PROOF_FORMAT:
            raise ValueError(f"format is {document.get('format')!r}")
        asset = Digest.parse(document["asset"])
        member = MemberProof(
            bytes.fromhex(document["record"]),
            int(document["record_index"]),
            int(document["record_count"]),
            tuple(bytes.fromhex(h) for h in document["record_path"]),
        )
        entry_bytes = document["entry"].encode()
        leaf_index = int(document["leaf_index"])
        tree_size = int(document["tree_size"])
        inclusion_path = tuple(bytes.fromhex(h) for h in document["inclusion_path"])
        note = document["checkpoint"]
        key_text = trusted_key or document["verifier_key"]
        if not isinstance(note, str) or not isinstance(key_text, str):
            raise TypeError("the checkpoint and the verifier key must be strings")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"the proof file is malformed: {exc}",
            hint="produce it with `quotepart asset prove-record`",
        ) from exc
    _check_member(member, asset)
    try:
        entry = parse_entry(entry_bytes)
        body = entry.body()
    except MalformedEntryError as exc:
        raise VerificationError(
            f"the log entry in the proof does not parse: {exc.message}",
            hint="the file was altered",
        ) from exc
    if not isinstance(body, AssetRegistered) or body.asset != asset:
        found = body.asset if isinstance(body, AssetRegistered) else f"a {body.KIND} entry"
        raise VerificationError(
            f"the log entry in the proof should register {asset}; it is {found}",
            hint="the file was altered",
        )
    checkpoint = Checkpoint.open(note, NoteVerifier.parse(key_text))
    if entry.origin not in (None, checkpoint.origin):
        raise VerificationError(
            f"the log entry in the proof is meant for log {entry.origin!r}, "
            f"not {checkpoint.origin!r}",
            hint="the file was altered, or it is for another log",
        )
    if checkpoint.tree_size != tree_size:
        raise VerificationError(
            f"the proof is for a tree of size {tree_size}, "
            f"the checkpoint signs size {checkpoint.tree_size}",
            hint="the file was altered",
        )
    try:
        verify_inclusion(
            leaf_hash(entry_bytes), leaf_index, tree_size, inclusion_path, checkpoint.root_hash
        )
    except VerificationError as exc:
        raise VerificationError(
            f"the entry registering {asset} is not at {leaf_index} in the signed log: "
            f"{exc.message}",
            hint="the file was altered, or it is for another log",
        ) from exc
    return VerifiedRecord(
        asset, member.index, member.count, leaf_index, tree_size, checkpoint.origin, key_text
    )


def _check_member(member: MemberProof, asset: Digest) -> None:
    try:
        member.verify(asset)
    except VerificationError as exc:
        raise VerificationError(
            f"record {member.index} of {member.count} is not in {asset}: {exc.message}",
            hint="the record or its path was altered, or it is from another asset",
        ) from exc
