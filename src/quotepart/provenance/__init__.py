"""Provenance: what an asset is (content digests), who contributed it, and its lineage."""

from quotepart.provenance.digest import (
    MemberProof,
    digest_file,
    digest_folder,
    digest_records,
    folder_members,
    prove_member,
)

__all__ = [
    "MemberProof",
    "digest_file",
    "digest_folder",
    "digest_records",
    "folder_members",
    "prove_member",
]
