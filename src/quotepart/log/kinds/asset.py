"""`asset.registered`: content-addressed things that contribute to or make up a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from quotepart.ids import Digest
from quotepart.log.kinds._base import BodyReader, RawBody

ASSET_KINDS = frozenset(
    {"cohort", "compute_grant", "dataset", "labelling_batch", "model", "service"}
)


@dataclass(frozen=True, slots=True)
class AssetRegisteredV1:
    KIND: ClassVar[str] = "asset.registered"
    VERSION: ClassVar[int] = 1

    asset: Digest
    asset_kind: str
    name: str

    def to_body(self) -> RawBody:
        return {"asset": str(self.asset), "asset_kind": self.asset_kind, "name": self.name}

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("asset", "asset_kind", "name")
        return cls(
            asset=Digest.parse(read.text("asset")),
            asset_kind=read.choice("asset_kind", ASSET_KINDS),
            name=read.text("name", max_length=200),
        )
