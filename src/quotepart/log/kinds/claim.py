"""`claim.filed`: a party disputes who registered an asset.

Registration is first come: whoever registers content first is its registrant and
holds its rights. A party that registers the same content later gets nothing in its
name, and may sign a claim instead. A claim decides no money and blocks nothing; it is
shown wherever the asset's registrant is (its statements, the report, `asset show`), so
a dispute is public and settled by people, not by whoever appends fastest.
"""

from __future__ import annotations

from typing import Self

from quotepart.ids import Digest
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind


@entry_kind("claim.filed")
class ClaimFiled(KindBody):
    asset: Digest
    reason: str

    def to_body(self) -> RawBody:
        return {"asset": str(self.asset), "reason": self.reason}

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("asset", "reason")
        reason = read.text("reason", max_length=2000)  # a claim says why
        return cls(asset=Digest.parse(read.text("asset")), reason=reason)
