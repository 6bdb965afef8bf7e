"""`overlap.detected`: a record set holds records an earlier registered one already holds.

Signed by the registrant of the later asset (the SDK signs it at registration, when the
record index finds the overlap). `records` of the later asset's `of` records are found
in `earlier` — exactly (the same record bytes, in any order) or, with `match: near`,
as near-duplicates within `tolerance` (see `quotepart.provenance.overlap`). Duplicated
records are credited to the earliest registrant: an allocation treats the later asset
as worth nothing for the shared fraction, and hands that fraction's weight to the
earlier asset (unless the valuation it uses already removed the copies).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

OVERLAP_MATCHES = frozenset({"exact", "near"})


@entry_kind("overlap.detected")
class OverlapDetected(KindBody):
    asset: Digest  # the later record set, whose registrant signs
    earlier: Digest  # the record set registered first
    records: int  # records of `asset` also found in `earlier`
    of: int  # records in `asset`
    match: str  # exact | near
    tolerance: str = "0"  # decimal string; "0" for exact matches

    @property
    def shared(self) -> Fraction:
        """The fraction of the later asset's records that the earlier one holds."""
        return Fraction(self.records, self.of)

    def to_body(self) -> RawBody:
        return {
            "asset": str(self.asset),
            "earlier": str(self.earlier),
            "records": self.records,
            "of": self.of,
            "match": self.match,
            "tolerance": self.tolerance,
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("asset", "earlier", "records", "of", "match", "tolerance")
        asset = Digest.parse(read.text("asset"))
        earlier = Digest.parse(read.text("earlier"))
        records = read.integer("records", minimum=1)
        of = read.integer("of", minimum=1)
        match = read.text("match", max_length=16)
        tolerance = read.text("tolerance", max_length=40)
        read.decimal_value("tolerance", tolerance)
        if asset == earlier:
            raise MalformedEntryError(
                f"{cls.KIND}: an asset overlaps itself", hint="name two different assets"
            )
        if records > of:
            raise MalformedEntryError(
                f"{cls.KIND}: {records} shared records of an asset that holds {of}",
                hint="records counts the later asset's records found in the earlier one",
            )
        if match not in OVERLAP_MATCHES:
            raise MalformedEntryError(
                f"{cls.KIND}: match must be exact or near, got {match!r}",
                hint="exact: same record bytes; near: within the tolerance",
            )
        return cls(asset, earlier, records, of, match, tolerance)
