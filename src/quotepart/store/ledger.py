"""The ledger: what every domain service needs of a workspace's log, and nothing more.

A service (`Provenance`, `Sharing`, `Metering`, `Reports`) is built on a `Ledger`: it
appends facts signed by their authors, reads the projections through a connection, and
asks the clock and the log's verifier key. It never holds a reference to the workspace
that composes it, so a lower layer never depends on the class that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from quotepart.errors import SignatureError, UnknownAuthorError
from quotepart.ids import Clock, PartyId
from quotepart.log import NoteVerifier, SignedEntry, SigningKey, parse_entry, sign_entry
from quotepart.log.kinds import EntryBody
from quotepart.store.keyfolder import KeyFolder
from quotepart.store.log_store import LogStore
from quotepart.store.queries.names import PartyRef, resolve_party

B = TypeVar("B", bound=EntryBody)


class Ledger(Protocol):
    """Append signed facts, read projections, tell the time, name the log's key."""

    @property
    def store(self) -> LogStore: ...

    @property
    def keys(self) -> KeyFolder: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def verifier(self) -> NoteVerifier: ...

    def append(self, body: EntryBody, *, author: PartyRef) -> int: ...

    def append_many(
        self,
        items: Sequence[tuple[EntryBody, PartyRef]],
        *,
        alongside: Callable[[Connection, Sequence[int]], None] | None = None,
    ) -> list[int]: ...

    def append_signed(self, entries: Sequence[SignedEntry]) -> list[int]: ...

    def read(self) -> AbstractContextManager[Connection]: ...

    def entry_at(self, leaf_index: int) -> SignedEntry: ...

    def body_at(self, leaf_index: int, kind: type[B]) -> B: ...


@dataclass(frozen=True, slots=True)
class KeyedLedger:
    """A `Ledger` over one `LogStore`, signing with the party keys of one `KeyFolder`."""

    store: LogStore
    keys: KeyFolder
    clock: Clock
    verifier: NoteVerifier

    def append(self, body: EntryBody, *, author: PartyRef) -> int:
        """Sign `body` with the author's key held here and append it; return its leaf index.

        `author` is a PartyId, or its id, unique id prefix or unique name.
        """
        return self.append_many([(body, author)])[0]

    def append_many(
        self,
        items: Sequence[tuple[EntryBody, PartyRef]],
        *,
        alongside: Callable[[Connection, Sequence[int]], None] | None = None,
    ) -> list[int]:
        """Sign and append many entries in one transaction with one checkpoint (and
        `alongside(conn, indexes)`'s side-table rows in it too: see `LogStore.append`)."""
        keys: dict[PartyId, SigningKey] = {}
        entries: list[SignedEntry] = []
        named = {a for _, a in items if not isinstance(a, PartyId)}
        if named:
            with self.read() as conn:
                resolved = {a: resolve_party(conn, a) for a in named}
        for body, ref in items:
            author = ref if isinstance(ref, PartyId) else resolved[ref]
            if author not in keys:
                keys[author] = self._registered_signing_key(author)
            entries.append(
                sign_entry(
                    body,
                    author=author,
                    key=keys[author],
                    origin=self.store.origin,
                    clock=self.clock,
                )
            )
        return self.store.append(entries, alongside=alongside)

    def append_signed(self, entries: Sequence[SignedEntry]) -> list[int]:
        """Append entries signed elsewhere; the store checks every signature."""
        return self.store.append(entries)

    def _registered_signing_key(self, party: PartyId) -> SigningKey:
        """The key held here for `party`, checked against the key the log registered for it."""
        key = self.keys.party_key(party)
        registered = self.store.party_key(party)
        if registered is None:
            raise UnknownAuthorError(
                f"{party} is not registered in this log", hint="register the party first"
            )
        if registered != key.public:
            raise SignatureError(
                f"the key file for {party} does not hold the key the log registered for it",
                hint=f"restore {self.keys.party_key_path(party)} from a backup",
            )
        return key

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for the read side (`quotepart.store.queries`)."""
        with self.store.engine.connect() as conn:
            yield conn

    def entry_at(self, leaf_index: int) -> SignedEntry:
        return parse_entry(self.store.entry(leaf_index)[1])

    def body_at(self, leaf_index: int, kind: type[B]) -> B:
        """The typed body at `leaf_index`, which must be of `kind` (KindMismatchError)."""
        return self.entry_at(leaf_index).body_as(kind)


__all__ = ["KeyedLedger", "Ledger"]
