"""`party.registered`: a party, what kind of agent it is, and the public key that signs its entries."""

from __future__ import annotations

import base64
from typing import Self

from quotepart.ids import Digest, PartyId
from quotepart.log.keys import PUBLIC_KEY_SIZE, VerifyKey
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

PARTY_ROLES = frozenset({"auditor", "consumer", "contributor", "coop", "operator"})
AGENT_TYPES = frozenset({"community", "organisation", "person", "software"})
"""PROV agent types (`prov:Person`, `prov:Organization`, `prov:SoftwareAgent`) plus
communities, which share as a group without being a legal organisation."""


def upcast_party_v1(body: RawBody) -> RawBody:
    """v1 had no agent type; the parties it registered were organisations or unknown."""
    return {**body, "agent_type": "organisation"}


@entry_kind("party.registered", version=2, upcasters={1: upcast_party_v1})
class PartyRegistered(KindBody):
    """Signed by the party's own key, which proves the registrant holds it.

    A payout reference (an IBAN, a mobile-money number) never enters the log: only a
    salted SHA-256 commitment to it does, so a statement can later prove which account
    was paid without publishing it (`quotepart.provenance.parties.commit_payout`).
    """

    party: PartyId
    name: str
    roles: tuple[str, ...]
    public_key: VerifyKey
    agent_type: str = "organisation"
    payout_commitment: Digest | None = None

    def to_body(self) -> RawBody:
        body: RawBody = {
            "party": str(self.party),
            "name": self.name,
            "roles": sorted(self.roles),
            "public_key": base64.b64encode(self.public_key.raw).decode(),
            "agent_type": self.agent_type,
        }
        if self.payout_commitment is not None:
            body["payout_commitment"] = str(self.payout_commitment)
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("party", "name", "roles", "public_key", "agent_type", "payout_commitment")
        commitment = read.text("payout_commitment", optional=True)
        return cls(
            party=PartyId.parse(read.text("party")),
            name=read.name("name"),
            roles=read.choices("roles", PARTY_ROLES),
            public_key=VerifyKey(read.b64("public_key", length=PUBLIC_KEY_SIZE)),
            agent_type=read.choice("agent_type", AGENT_TYPES),
            payout_commitment=None if commitment is None else Digest.parse(commitment),
        )
