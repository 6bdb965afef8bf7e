"""`consent.recorded`: a contributor grants or withdraws consent to use an asset.

Signed by the contributor. A withdrawal dated before a run means that run may not
count the contribution: the contributor's part of that run's revenue is zero (and
goes to the asset's other contributors). The coop issue builds purposes and expiry on
these entries.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Self

from quotepart.ids import Digest, PartyId, format_timestamp, parse_timestamp
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

CONSENT_ACTIONS = frozenset({"grant", "withdraw"})
_PURPOSE_RE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


@entry_kind("consent.recorded")
class ConsentRecorded(KindBody):
    party: PartyId
    asset: Digest
    action: str
    effective: datetime  # from when the grant or withdrawal holds
    purposes: tuple[str, ...] = ()  # empty: every purpose
    until: datetime | None = None  # a grant's expiry

    def to_body(self) -> RawBody:
        body: RawBody = {
            "party": str(self.party),
            "asset": str(self.asset),
            "action": self.action,
            "effective": format_timestamp(self.effective),
            "purposes": sorted(set(self.purposes)),
        }
        if self.until is not None:
            body["until"] = format_timestamp(self.until)
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("party", "asset", "action", "effective", "purposes", "until")
        until = read.text("until", optional=True)
        return cls(
            party=PartyId.parse(read.text("party")),
            asset=Digest.parse(read.text("asset")),
            action=read.choice("action", CONSENT_ACTIONS),
            effective=parse_timestamp(read.text("effective")),
            purposes=read.text_list("purposes", pattern=_PURPOSE_RE),
            until=None if until is None else parse_timestamp(until),
        )
