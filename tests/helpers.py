"""Small builders shared by the tests."""

from __future__ import annotations

from fractions import Fraction

from quotepart.ids import Digest, PartyId
from quotepart.log.kinds import AssetRegistered, ContributionRecorded
from quotepart.workspace import Workspace


def asset_body(number: int, kind: str = "dataset") -> AssetRegistered:
    return AssetRegistered(Digest.of_bytes(f"asset {number}".encode()), kind, f"asset {number}")


def populate(ws: Workspace, assets: int = 6) -> tuple[list[PartyId], list[Digest]]:
    """Two parties, `assets` datasets (one append call each) and a contribution to each."""
    alice = ws.register_party("Alice")
    bob = ws.register_party("Bob", roles=("contributor", "operator"))
    digests = []
    for number in range(assets):
        owner = alice if number % 2 else bob
        digest = ws.register_asset(
            f"asset {number}".encode(), asset_kind="dataset", name=f"d{number}", by=owner
        )
        ws.append(ContributionRecorded(owner, digest, "data", Fraction(1)), author=owner)
        digests.append(digest)
    return [alice, bob], digests
