"""`contribution.recorded`: party P contributed asset A in a role, with a declared share."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest, PartyId
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind, format_fraction

_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
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


@entry_kind("contribution.accepted")
class ContributionAccepted(KindBody):
    """The asset's registrant accepts a contribution the contributor signed itself.

    A contributor may propose its own share of an asset (`contribution.recorded` signed
    by the party it names); the proposal counts only once the registrant accepts it by
    naming the proposal's entry (its leaf hash), so nobody can claim part of another
    party's asset alone.
    """

    contribution: str  # leaf hash (hex) of the contribution.recorded entry accepted
    party: PartyId
    asset: Digest

    def to_body(self) -> RawBody:
        return {
            "contribution": self.contribution,
            "party": str(self.party),
            "asset": str(self.asset),
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("contribution", "party", "asset")
        contribution = read.text("contribution")
        if not _HASH_RE.match(contribution):
            raise MalformedEntryError(
                f"{cls.KIND}: contribution must name the accepted entry by its leaf hash "
                f"(64 hex digits), got {contribution!r}",
                hint="accept a proposal by the leaf hash `contribute` returned to its contributor",
            )
        return cls(
            contribution=contribution,
            party=PartyId.parse(read.text("party")),
            asset=Digest.parse(read.text("asset")),
        )
