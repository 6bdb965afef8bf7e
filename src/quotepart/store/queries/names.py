"""Parties and assets named the way people name them: an id, a unique prefix or a name.

Here, beside the queries they use, so that every layer that takes a party can take a
name: the ledger signs for a party named by a string, the services resolve their
arguments, the CLI its options.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Connection

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import PartyId
from quotepart.store.queries import provenance as queries

PartyRef = PartyId | str
"""A party as callers may name it: its id, or a string (its id, an id prefix, its name)."""

_PARTY_HINT = "list parties with `quotepart party list`"
T = TypeVar("T")
SHOWN = 10  # candidates listed when a name or prefix is ambiguous


def resolve_party(conn: Connection, party: PartyRef) -> PartyId:
    """The registered party `party` names.

    Raises:
        TypeError: `party` is neither a PartyId nor a string.
        NotFoundError: no registered party has that id, id prefix or name.
        InputError: more than one party has that name or id prefix (the candidates listed).
    """
    if isinstance(party, str) and len(party) == len(PartyId.PREFIX) + 26:
        party = PartyId.parse(party) if party.startswith(PartyId.PREFIX) else party
    if isinstance(party, PartyId):
        if queries.party_leaf(conn, party) is None:
            raise NotFoundError(f"unknown party {party}", hint=_PARTY_HINT)
        return party
    if not isinstance(party, str):
        raise TypeError(
            f"a party is a PartyId or a name string, not {type(party).__name__}: {party!r}"
        )
    matches = queries.parties_matching(conn, party, limit=SHOWN + 1)
    named = [m for m in matches if m.name == party.strip()]
    chosen = one_match(named or matches, party, "party", [f"{m.party}  {m.name}" for m in matches])
    if chosen is None:
        raise NotFoundError(f"no party {party!r} in this log", hint=_PARTY_HINT)
    return chosen.party


def one_match(matches: Sequence[T], text: str, what: str, listed: Sequence[str]) -> T | None:
    """The single match, None for none; InputError listing the candidates for several."""
    if len(matches) <= 1:
        return matches[0] if matches else None
    more = " and more" if len(listed) > SHOWN else ""
    raise InputError(
        f"{text!r} names more than one {what}: " + "; ".join(listed[:SHOWN]) + more,
        hint=f"give the full id, or a longer prefix, of the {what} you mean",
    )


__all__ = ["SHOWN", "PartyRef", "one_match", "resolve_party"]
