"""`party.payout_changed`: a party gives a new payout reference, as a new salted commitment.

Signed by the party itself (the projection's admission rule refuses anyone else), so an
operator cannot redirect a contributor's money. Payouts recorded after it pay the new
reference; earlier payouts keep the one they paid, whose commitment stays in the log.
"""

from __future__ import annotations

from typing import Self

from quotepart.ids import Digest, PartyId
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind


@entry_kind("party.payout_changed")
class PartyPayoutChanged(KindBody):
    party: PartyId
    payout_commitment: Digest  # sha256 of domain ‖ salt ‖ reference, as at registration

    def to_body(self) -> RawBody:
        return {"party": str(self.party), "payout_commitment": str(self.payout_commitment)}

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("party", "payout_commitment")
        return cls(
            party=PartyId.parse(read.text("party")),
            payout_commitment=Digest.parse(read.text("payout_commitment")),
        )
