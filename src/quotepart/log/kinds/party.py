"""`party.registered`: a party and the public key that signs its entries."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import ClassVar, Self

from quotepart.ids import PartyId
from quotepart.log.keys import PUBLIC_KEY_SIZE, VerifyKey
from quotepart.log.kinds._base import BodyReader, RawBody

PARTY_ROLES = frozenset({"auditor", "consumer", "contributor", "coop", "operator"})


@dataclass(frozen=True, slots=True)
class PartyRegisteredV1:
    """Signed by the party's own key, which proves the registrant holds it."""

    KIND: ClassVar[str] = "party.registered"
    VERSION: ClassVar[int] = 1

    party: PartyId
    name: str
    roles: tuple[str, ...]
    public_key: VerifyKey

    def to_body(self) -> RawBody:
        return {
            "party": str(self.party),
            "name": self.name,
            "roles": sorted(self.roles),
            "public_key": base64.b64encode(self.public_key.raw).decode(),
        }

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("party", "name", "roles", "public_key")
        return cls(
            party=PartyId.parse(read.text("party")),
            name=read.text("name", max_length=200),
            roles=read.choices("roles", PARTY_ROLES),
            public_key=VerifyKey(read.b64("public_key", length=PUBLIC_KEY_SIZE)),
        )
