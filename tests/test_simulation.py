"""A small-scale simulator: random workflows, crashes mid-append, and the invariants after each step."""

from __future__ import annotations

import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

import quotepart.store.log_store as log_store_module
from quotepart.errors import InputError, NotFoundError, SignatureError
from quotepart.ids import Digest, PartyId
from quotepart.log import SigningKey, sign_entry
from quotepart.log.kinds import AssetRegistered, PartyRegistered
from quotepart.store.schema import PROJECTION_TABLES
from quotepart.workspace import init_workspace
from tests.conftest import FakeClock


class SimulatedCrashError(Exception):
    """Stands for the process dying inside the append transaction."""


class LogSimulation(RuleBasedStateMachine):
    parties = Bundle("parties")
    assets = Bundle("assets")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="quotepart-sim-"))
        self.ws = init_workspace(self.folder / "ws", clock=FakeClock())
        self.expected_size = 0
        self.declared: dict[Digest, Fraction] = {}
        self.checkpoints_seen: list[str] = []

    def teardown(self) -> None:
        self.ws.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(target=parties, name=st.text(min_size=1, max_size=20).filter(str.strip))
    def register_party(self, name: str) -> PartyId:
        party = self.ws.register_party(name)
        self.expected_size += 1
        return party

    @rule(target=assets, owner=parties, content=st.binary(max_size=16))
    def register_asset(self, owner: PartyId, content: bytes) -> Digest:
        known = self.ws.asset(Digest.of_bytes(content)) is not None
        digest = self.ws.register_asset(content, asset_kind="dataset", name="d", by=owner)
        self.expected_size += 0 if known else 1
        return digest

    @rule(party=parties, asset=assets, share=st.fractions(Fraction(1, 100), Fraction(1)))
    def contribute(self, party: PartyId, asset: Digest, share: Fraction) -> None:
        declared = self.declared.get(asset, Fraction(0))
        if declared + share > 1:  # the shares of one asset never exceed the whole
            with pytest.raises(InputError, match="more than the whole"):
                self.ws.contribute(asset, {party: share}, role="data", by=party, partial=True)
            return
        self.ws.contribute(asset, {party: share}, role="data", by=party, partial=True)
        self.declared[asset] = declared + share
        self.expected_size += 1

    @rule(party=parties)
    def forged_entry_is_refused(self, party: PartyId) -> None:
        body = AssetRegistered(Digest.of_bytes(b"forged"), "model", "forged")
        entry = sign_entry(body, author=party, key=SigningKey.generate(), clock=self.ws.clock)
        with pytest.raises(SignatureError):
            self.ws.append_signed([entry.canonical])

    @rule(party=parties)
    def contribution_to_an_unknown_asset_is_refused(self, party: PartyId) -> None:
        with pytest.raises(NotFoundError):
            self.ws.contribute(
                Digest.of_bytes(b"nowhere"), {party: 1}, role="data", by=party, partial=True
            )

    @rule(party=parties, count=st.integers(2, 6), crash_after=st.integers(0, 5))
    def crash_mid_append(self, party: PartyId, count: int, crash_after: int) -> None:
        real = log_store_module.apply_projections
        calls = 0

        def crashing(*args: Any) -> None:
            nonlocal calls
            if calls == min(crash_after, count - 1):
                raise SimulatedCrashError
            calls += 1
            real(*args)

        bodies = [
            (
                AssetRegistered(
                    Digest.of_bytes(f"crash {self.expected_size}/{n}".encode()), "dataset", "c"
                ),
                party,
            )
            for n in range(count)
        ]
        log_store_module.apply_projections = crashing  # type: ignore[assignment]
        try:
            with pytest.raises(SimulatedCrashError):
                self.ws.append_many(bodies)
        finally:
            log_store_module.apply_projections = real

    @rule(party=parties)
    def duplicate_party_registration_is_refused(self, party: PartyId) -> None:
        key = self.ws.signing_key(party)
        entry = sign_entry(
            PartyRegistered(party, "again", ("contributor",), key.public), author=party, key=key
        )
        with pytest.raises(InputError, match="already registered"):
            self.ws.append_signed([entry.canonical])

    @invariant()
    def log_has_exactly_the_acknowledged_entries(self) -> None:
        assert self.ws.store.tree_size() == self.expected_size

    @invariant()
    def checkpoints_only_grow_and_stay_consistent(self) -> None:
        note = self.ws.store.latest_checkpoint()
        if note is not None and (not self.checkpoints_seen or self.checkpoints_seen[-1] != note):
            self.checkpoints_seen.append(note)
        sizes = [int(n.split("\n")[1]) for n in self.checkpoints_seen]
        assert sizes == sorted(sizes)
        if len(sizes) >= 2:
            proof = self.ws.store.consistency_proof(sizes[0], sizes[-1])
            assert proof.old_root == self.ws.store.root_hash(sizes[0])

    @invariant()
    def verify_passes_and_rebuild_equals_live(self) -> None:
        self.ws.verify(workers=1)
        with self.ws.store.engine.connect() as conn:
            live = {
                t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                for t in PROJECTION_TABLES
            }
        self.ws.rebuild()
        with self.ws.store.engine.connect() as conn:
            rebuilt = {
                t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                for t in PROJECTION_TABLES
            }
        assert rebuilt == live


LogSimulation.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
test_log_simulation = LogSimulation.TestCase
