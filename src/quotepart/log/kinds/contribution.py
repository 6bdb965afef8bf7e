"""`contribution.recorded`: party P contributed asset A in a role, with a declared share."""

from __future__ import annotations

from fractions import Fraction
from typing import Self

from quotepart.ids import Digest, PartyId
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind, format_fraction

CONTRIBUTION_ROLES = frozenset({"annotation", "code", "compute", "data", "upstream_model"})


@entry_kind("contribution.recorded")
class ContributionRecorded(KindBody):
    party: PartyId
    asset: Digest
    role: str
    share: Fraction  # of the asset, in (0, 1]

    def to_body(self) -> RawBody:
        return {
            "party": str(self.party),
            "asset": str(self.asset),
            "role": self.role,
            "share": format_fraction(self.share),
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("party", "asset", "role", "share")
        return cls(
            party=PartyId.parse(read.text("party")),
            asset=Digest.parse(read.text("asset")),
            role=read.choice("role", CONTRIBUTION_ROLES),
            share=read.fraction("share"),
        )
