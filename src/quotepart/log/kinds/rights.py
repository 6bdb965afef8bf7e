"""`right.granted` and `right.revoked`: delegation of a right over one asset.

The registrant of a model or service holds every right over it (see
`quotepart.store.rights`). It, or anyone holding a right, can delegate that right to
another party for a time: a valuer that records valuations, a metering party that
records usage, a billing party that records revenue. A revocation ends every grant of
that right to that party on that asset from its position in the log on; entries made
under the grant before it stay valid, because every rule is judged as of an entry's
own position.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest, PartyId, format_timestamp, parse_timestamp
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

RIGHTS = frozenset({"policy", "valuation", "metering", "billing", "sharing", "run"})
"""The rights over an asset that can be delegated:

* `policy`: set its sharing policy (`policy.set`);
* `valuation`: record valuations of its inputs (`valuation.recorded`);
* `metering`: record its usage (`usage.recorded`);
* `billing`: record its revenue (`revenue.recorded`);
* `sharing`: record the allocations of its revenue (`allocation.recorded`);
* `run`: name it as the output of a run (`run.recorded`).

Recording and accepting contributions stays with the registrant: who shares in an asset
is the registrant's word, and is not delegated.
"""


@entry_kind("right.granted")
class RightGranted(KindBody):
    grantee: PartyId
    right: str
    asset: Digest
    since: datetime  # the grant covers entries timestamped from here on
    until: datetime | None = None  # ... and before this, when given

    def to_body(self) -> RawBody:
        body: RawBody = {
            "grantee": str(self.grantee),
            "right": self.right,
            "asset": str(self.asset),
            "since": format_timestamp(self.since),
        }
        if self.until is not None:
            body["until"] = format_timestamp(self.until)
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("grantee", "right", "asset", "since", "until")
        since = parse_timestamp(read.text("since"))
        until_text = read.text("until", optional=True)
        until = None if until_text is None else parse_timestamp(until_text)
        if until is not None and until <= since:
            raise MalformedEntryError(
                f"{cls.KIND}: the grant ends ({until_text}) before it starts",
                hint="give `until` after `since`, or leave it out for a grant without end",
            )
        return cls(
            grantee=PartyId.parse(read.text("grantee")),
            right=read.choice("right", RIGHTS),
            asset=Digest.parse(read.text("asset")),
            since=since,
            until=until,
        )


@entry_kind("right.revoked")
class RightRevoked(KindBody):
    grantee: PartyId
    right: str
    asset: Digest

    def to_body(self) -> RawBody:
        return {"grantee": str(self.grantee), "right": self.right, "asset": str(self.asset)}

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("grantee", "right", "asset")
        return cls(
            grantee=PartyId.parse(read.text("grantee")),
            right=read.choice("right", RIGHTS),
            asset=Digest.parse(read.text("asset")),
        )
