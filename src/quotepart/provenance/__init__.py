"""Provenance: what an asset is (content digests), who contributed it, and its lineage."""

from quotepart.provenance.digest import (
    MemberProof,
    PackedRecords,
    digest_file,
    digest_folder,
    digest_records,
    folder_members,
    merkle_root_and_leaves,
    merkle_root_packed,
    prove_member,
    prove_record_packed,
)
from quotepart.provenance.overlap import (
    DEFAULT_TOLERANCE,
    NEAR_SHARE_THRESHOLD,
    OverlapWarning,
    set_root,
)
from quotepart.provenance.proofs import (
    RECORD_PROOF_FORMAT,
    VerifiedRecord,
    record_proof,
    verify_record_proof,
)
from quotepart.provenance.tables import encode_table, read_table

__all__ = [
    "DEFAULT_TOLERANCE",
    "NEAR_SHARE_THRESHOLD",
    "RECORD_PROOF_FORMAT",
    "MemberProof",
    "OverlapWarning",
    "PackedRecords",
    "VerifiedRecord",
    "digest_file",
    "digest_folder",
    "digest_records",
    "encode_table",
    "folder_members",
    "merkle_root_and_leaves",
    "merkle_root_packed",
    "prove_member",
    "prove_record_packed",
    "read_table",
    "record_proof",
    "set_root",
    "verify_record_proof",
]
