"""A small-scale simulator of the whole domain (STYLE rule 16), through the public Workspace SDK.

Random workflows register parties, data and contributions, train models in recorded
runs, put services on them, record valuations, policies, usage, revenue and billing,
share revenue, grant and withdraw consent and export payouts, while crashes are injected
mid-append through the store's fault hook (`LogStore.faults`). After every step:

* `verify()` passes and a rebuild of the projections equals the live tables;
* every allocation sums exactly to its revenue and equals its recomputation from the
  entries it names (`share` of a shared revenue recomputes it and raises on a mismatch);
* nobody is paid more than they were allocated, and a payout is never exported twice;
* every party's statement verifies offline and agrees with the log;
* a crashed append leaves the log, the projections and the workspace's files as they were.

The dev profile runs a few short workflows on each backend; the ci profile runs more and
longer ones (see tests/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from quotepart.errors import (
    InputError,
    MalformedEntryError,
    MoneyError,
    NotFoundError,
    PolicyError,
    SignatureError,
)
from quotepart.ids import Digest, PartyId, Period, RevenueId
from quotepart.log import SigningKey, parse_entry, sign_entry
from quotepart.log.kinds import AssetRegistered, PartyRegistered, RevenueRecorded
from quotepart.sharing import verify_statement
from quotepart.store.log_store import FAULT_POINTS
from quotepart.store.queries.sharing import owed_balances
from quotepart.store.schema import PROJECTION_TABLES, metadata
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import POSTGRES_URL, PROFILE, FakeClock

MONTHS = [f"2026-{month:02d}" for month in range(1, 7)]
PAYOUT_PERIODS = [*MONTHS, "2026-Q1", "2026-Q2"]
YEAR = "2026"

crashes = st.sampled_from([None] * 6 + [p for p in FAULT_POINTS if p != "entry"])
"""Mostly no crash; else a crash at one of the named points inside the append transaction."""


class SimulatedCrashError(Exception):
    """Stands for the process dying inside the append transaction."""


@dataclass
class Fault:
    """Raises SimulatedCrashError the `nth` time (0-based) the store reaches `point`."""

    point: str
    nth: int = 0
    fired: bool = False

    def __call__(self, point: str) -> None:
        if point != self.point or self.fired:
            return
        if self.nth == 0:
            self.fired = True
            raise SimulatedCrashError(point)
        self.nth -= 1


def iban(number: int) -> str:
    """A valid German IBAN (ISO 13616 check digits) for account `number`."""
    bban = f"{37040044:08d}{number:010d}"
    check = 98 - int(bban + "131400") % 97
    return f"DE{check:02d}{bban}"


@dataclass
class Policy:
    weighting: str
    missing_valuation: str


class DomainSimulation(RuleBasedStateMachine):
    """One workspace per run; the attributes below model what the log should hold."""

    database_url: str | None = None  # set per backend by the test below

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="quotepart-sim-"))
        self.schema: str | None = None
        url = self.database_url
        if url is not None:  # a fresh PostgreSQL schema for every run
            self.schema = f"qp_sim_{uuid.uuid4().hex[:12]}"
            with self._admin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            separator = "&" if "?" in url else "?"
            url = f"{url}{separator}options=-csearch_path%3D{self.schema}"
        self.ws: Workspace = init_workspace(self.folder / "ws", database_url=url, clock=FakeClock())
        self.expected_size = 0
        self.accounts = 0
        self.checkpoints_seen: list[str] = []
        self.declared: dict[Digest, Fraction] = {}
        self.contributors: dict[Digest, set[PartyId]] = {}
        self.inputs: dict[Digest, list[Digest]] = {}  # model -> its run's inputs
        self.policies: dict[Digest, Policy] = {}
        self.valued: set[Digest] = set()
        self.service_model: dict[Digest, Digest] = {}
        self.booked: set[tuple[Digest, str]] = set()  # (asset, period) with revenue
        self.usage: dict[tuple[Digest, str], int] = {}
        self.shared: set[RevenueId] = set()
        self.exported: dict[str, bytes] = {}  # payout period -> file content
        self.allocations_checked = 0
        self.checked: dict[str, Any] | None = None  # the last state that passed every check
        self.parties: list[PartyId] = []
        self.datasets: list[Digest] = []
        self.models: list[Digest] = []
        self.services: list[Digest] = []
        self.revenues: list[RevenueId] = []

    def _admin(self) -> Any:
        engine = sqlalchemy.create_engine(
            POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        )
        return _disposing(engine)

    def teardown(self) -> None:
        self.ws.close()
        if self.schema is not None:
            with self._admin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------ crashes

    def snapshot(self) -> dict[str, Any]:
        """Every row of every table, and the files a workspace keeps beside its database."""
        with self.ws.store.engine.connect() as conn:
            tables = {
                t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                for t in metadata.sorted_tables
                if t.name != "alembic_version"
            }
        files = sorted(
            str(p.relative_to(self.ws.path))
            for folder in ("keys", "payouts")
            for p in (self.ws.path / folder).glob("*")
            if not p.name.startswith("usage")  # the pseudonym key is made on first use
        )
        return {"tables": tables, "files": files}

    @contextmanager
    def appending(self, crash: str | None, entries: int) -> Iterator[None]:
        """Run one single-append operation; with `crash`, it must crash and change nothing.

        Without a crash, the log must have grown by exactly `entries`.
        """
        if crash is None:
            yield
            self.expected_size += entries
            assert self.ws.store.tree_size() == self.expected_size
            return
        event(f"crash at {crash}")
        before = self.snapshot()
        self.ws.store.faults = Fault(crash)
        try:
            with pytest.raises(SimulatedCrashError):
                yield
        finally:
            self.ws.store.faults = None
        assert self.snapshot() == before, "a crashed append changed the database or files"

    # -------------------------------------------------------------- rules

    @initialize()
    def starter_scene(self) -> None:
        """An operator, two contributors with a dataset each, a model trained on both and a
        service on it: workflows start where sharing is possible, so short runs reach it."""
        self.lab = self.ws.register_party(
            "Lab", roles=("operator",), payout_reference=iban(self.next_account())
        )
        self.lab_iban = iban(self.accounts)
        self.expected_size += 1
        for number in (1, 2):
            party = self.ws.register_party(
                f"Hospital {number}", payout_reference=iban(self.next_account())
            )
            data = self.ws.register_asset(
                f"records {number}".encode(), asset_kind="dataset", name=f"d{number}", by=party
            )
            self.ws.contribute(data, {party: 1}, role="data", by=party)
            self.expected_size += 3
            self.parties.append(party)
            self.datasets.append(data)
            self.declared[data] = Fraction(1)
        self.train_model(self.datasets, [], None)
        self.add_service(self.models[0], None)
        self.ws.set_policy(
            self.models[0], pool="1/2", roles={"data": 1}, weighting="equal", by=self.lab
        )
        self.policies[self.models[0]] = Policy("equal", "refuse")
        self.expected_size += 1

    def next_account(self) -> int:
        self.accounts += 1
        return self.accounts

    @rule(name=st.text(min_size=1, max_size=12).filter(str.strip), crash=crashes)
    def register_party(self, name: str, crash: str | None) -> None:
        if "\x00" in name:  # PostgreSQL cannot store it, so no log accepts it
            with pytest.raises(MalformedEntryError, match="NUL"):
                self.ws.register_party(name)
            return
        with self.appending(crash, 1):
            party = self.ws.register_party(name, payout_reference=iban(self.next_account()))
            self.parties.append(party)

    @rule(data=st.data(), content=st.binary(max_size=12), crash=crashes)
    def register_dataset(self, data: st.DataObject, content: bytes, crash: str | None) -> None:
        owner = data.draw(st.sampled_from(self.parties), label="owner")
        digest = Digest.of_bytes(content)
        if self.ws.asset(digest) is not None:  # known content: nothing appended
            assert (
                self.ws.register_asset(content, asset_kind="dataset", name="d", by=owner) == digest
            )
            return
        with self.appending(crash, 1):
            self.ws.register_asset(content, asset_kind="dataset", name="d", by=owner)
            self.datasets.append(digest)

    @rule(data=st.data(), share=st.fractions(Fraction(1, 100), Fraction(1)), crash=crashes)
    def contribute(self, data: st.DataObject, share: Fraction, crash: str | None) -> None:
        party = data.draw(st.sampled_from(self.parties), label="party")
        asset = data.draw(st.sampled_from(self.datasets), label="dataset")
        declared = self.declared.get(asset, Fraction(0))
        if declared + share > 1:  # the shares of one asset never exceed the whole
            with pytest.raises(InputError, match="more than the whole"):
                self.ws.contribute(asset, {party: share}, role="data", by=party, partial=True)
            return
        with self.appending(crash, 1):
            self.ws.contribute(asset, {party: share}, role="data", by=party, partial=True)
            self.declared[asset] = declared + share

    @rule(data=st.data(), crash=crashes)
    def train(self, data: st.DataObject, crash: str | None) -> None:
        inputs = data.draw(
            st.lists(st.sampled_from(self.datasets), min_size=1, max_size=3, unique=True),
            label="datasets",
        )
        upstream = data.draw(
            st.lists(st.sampled_from(self.models), max_size=1), label="upstream model"
        )
        self.train_model(inputs, upstream, crash)

    def train_model(self, data: list[Digest], upstream: list[Digest], crash: str | None) -> None:
        model = self.ws.register_asset(
            f"model weights {self.expected_size}".encode(),
            asset_kind="model",
            name="m",
            by=self.lab,
        )
        self.expected_size += 1
        with self.appending(crash, 1):
            with self.ws.run("train", operator=self.lab) as run:
                run.use(*data, *upstream)
                run.produce(model)
            # a model whose run crashed has no lineage: it is of no use to the rules below
            self.inputs[model] = [*data, *upstream]
            self.models.append(model)

    @rule(data=st.data(), crash=crashes)
    def register_service(self, data: st.DataObject, crash: str | None) -> None:
        self.add_service(data.draw(st.sampled_from(self.models), label="model"), crash)

    def add_service(self, model: Digest, crash: str | None) -> None:
        with self.appending(crash, 1):
            service = self.ws.register_service(
                name=f"api {self.expected_size}",
                endpoint=f"https://api.example.org/{self.expected_size}",
                model=model,
                by=self.lab,
            )
            self.service_model[service] = model
            self.services.append(service)

    @rule(
        data=st.data(),
        values=st.lists(st.integers(-10, 100), min_size=4, max_size=4),
        crash=crashes,
    )
    def record_valuation(self, data: st.DataObject, values: list[int], crash: str | None) -> None:
        model = data.draw(st.sampled_from(self.models), label="model")
        inputs = self.inputs[model]
        with self.appending(crash, 1):
            self.ws.record_valuation(
                model,
                {asset: str(value) for asset, value in zip(inputs, values, strict=False)},
                method="exact",
                evaluations=2 ** len(inputs),
                by=self.lab,
            )
            self.valued.add(model)

    @rule(
        data=st.data(),
        pool=st.fractions(0, 1, max_denominator=20),
        data_share=st.fractions(Fraction(1, 10), 1, max_denominator=10),
        weighting=st.sampled_from(["valuation", "equal", "volume", "declared"]),
        missing=st.sampled_from(["refuse", "declared"]),
        negative=st.sampled_from(["clip", "shift"]),
        declared=st.lists(st.integers(1, 9), min_size=4, max_size=4),
        minimum=st.integers(0, 5_000),
        crash=crashes,
    )
    def set_policy(
        self,
        data: st.DataObject,
        pool: Fraction,
        data_share: Fraction,
        weighting: str,
        missing: str,
        negative: str,
        declared: list[int],
        minimum: int,
        crash: str | None,
    ) -> None:
        model = data.draw(st.sampled_from(self.models), label="model")
        roles = {"data": data_share, "upstream_model": 1 - data_share}
        roles = {role: ratio for role, ratio in roles.items() if ratio}
        weights = {"data": weighting, "upstream_model": "equal"}
        with self.appending(crash, 1):
            self.ws.set_policy(
                model,
                pool=pool,
                roles=roles,
                weighting={role: weights[role] for role in roles},
                negative_values=negative,
                missing_valuation=missing,
                declared=dict(zip(self.inputs[model], declared, strict=False)),
                minimum_payout=minimum,
                by=self.lab,
            )
            self.policies[model] = Policy(weighting, missing)

    @rule(data=st.data(), withdraw=st.booleans(), crash=crashes)
    def consent(self, data: st.DataObject, withdraw: bool, crash: str | None) -> None:
        party = data.draw(st.sampled_from(self.parties), label="party")
        asset = data.draw(st.sampled_from(self.datasets), label="dataset")
        with self.appending(crash, 1):
            if withdraw:
                self.ws.withdraw_consent(party, asset)
            else:
                self.ws.grant_consent(party, asset)

    @rule(
        data=st.data(),
        amount=st.integers(1, 10**9),
        period=st.sampled_from(MONTHS),
        crash=crashes,
    )
    def record_revenue(
        self, data: st.DataObject, amount: int, period: str, crash: str | None
    ) -> None:
        asset = data.draw(st.sampled_from(self.models + self.services), label="earner")
        with self.appending(crash, 1):
            revenue = self.ws.record_revenue(
                asset, amount, "EUR", period=period, source="invoice", by=self.lab
            )
            self.booked.add((asset, period))
            self.revenues.append(revenue)

    @rule(
        data=st.data(),
        units=st.integers(1, 1_000),
        month=st.integers(1, 6),
        consumer=st.sampled_from(["a@example.org", "b@example.org"]),
        crash=crashes,
    )
    def record_usage(
        self, data: st.DataObject, units: int, month: int, consumer: str, crash: str | None
    ) -> None:
        service = data.draw(st.sampled_from(self.services), label="service")
        at = datetime(2026, month, 15, tzinfo=UTC)
        with self.appending(crash, 1):
            self.ws.record_usage(service, consumer, units, at, by=self.lab)
            key = (service, f"2026-{month:02d}")
            self.usage[key] = self.usage.get(key, 0) + units

    @rule(data=st.data(), crash=crashes)
    def bill_usage(self, data: st.DataObject, crash: str | None) -> None:
        service = data.draw(st.sampled_from(self.services), label="service")
        used = sorted(month for (used_by, month) in self.usage if used_by == service)
        period = data.draw(
            st.sampled_from(used) if used else st.sampled_from(MONTHS), label="period"
        )

        def bill() -> RevenueId:
            return self.ws.bill_usage(
                service, period, unit_price="0.05", currency="EUR", by=self.lab
            )

        if (service, period) in self.booked:
            with pytest.raises(InputError, match="already has revenue"):
                bill()
            return
        if not self.usage.get((service, period)):
            with pytest.raises(MoneyError, match="no usage"):
                bill()
            return
        with self.appending(crash, 1):
            revenue = bill()
            self.booked.add((service, period))
            self.revenues.append(revenue)
            event("usage billed")

    def blocked(self, asset: Digest) -> bool:
        """Whether sharing revenue of `asset` must be refused: a model on its way without a
        policy, or one weighted by a valuation it lacks and may not replace."""
        model = self.service_model.get(asset, asset)
        policy = self.policies.get(model)
        if policy is None:
            return True
        data = [a for a in self.inputs[model] if a not in self.inputs]
        if (
            data
            and policy.weighting == "valuation"
            and policy.missing_valuation == "refuse"
            and model not in self.valued
        ):
            return True
        return any(self.blocked(a) for a in self.inputs[model] if a in self.inputs)

    @precondition(lambda self: self.revenues)
    @rule(data=st.data(), crash=crashes)
    def share(self, data: st.DataObject, crash: str | None) -> None:
        self.share_revenue(data.draw(st.sampled_from(self.revenues), label="revenue"), crash)

    @rule(
        data=st.data(),
        amount=st.integers(1, 10**9),
        period=st.sampled_from(MONTHS),
        crash=crashes,
    )
    def earn_and_share(
        self, data: st.DataObject, amount: int, period: str, crash: str | None
    ) -> None:
        """Revenue shared at once: the common case, so that short workflows reach payouts."""
        self.record_revenue(data, amount, period, None)
        self.share_revenue(self.revenues[-1], crash)

    def share_revenue(self, revenue: RevenueId, crash: str | None) -> None:
        body = self.revenue_body(revenue)
        if revenue in self.shared:
            size = self.ws.store.tree_size()
            again = self.ws.share(revenue)  # recomputed from the entries it names
            assert not again.new
            assert self.ws.store.tree_size() == size
            return
        if self.blocked(body.asset):
            with pytest.raises(PolicyError):
                self.ws.share(revenue)
            event("share refused by policy")
            return
        with self.appending(crash, 1):
            shared = self.ws.share(revenue)
            assert shared.new
            assert sum(shared.allocation.amounts.values()) == body.amount_minor
            self.shared.add(revenue)
            event(f"shared among {len(shared.allocation.amounts)} parties")

    @rule(period=st.sampled_from(PAYOUT_PERIODS), minimum=st.integers(0, 10_000), crash=crashes)
    def export_payout(self, period: str, minimum: int, crash: str | None) -> None:
        def export() -> Any:
            return self.ws.export_payout(
                period,
                "EUR",
                "sepa",
                by=self.lab,
                debtor_name="Lab",
                debtor_iban=self.lab_iban,
                minimum_minor=minimum,
            )

        the_period = Period.parse(period)
        size = self.ws.store.tree_size()
        pending = [
            body.revenue
            for _, entry in self.ws.revenue_entries()
            if (body := entry.body_as(RevenueRecorded)).revenue not in self.shared
            and body.currency == "EUR"
            and body.period.last_month <= the_period.last_month
        ]
        if pending:  # money not yet shared is never paid around: the export refuses
            with pytest.raises(InputError, match="not shared"):
                export()
            assert self.ws.store.tree_size() == size
            event("payout refused: revenue not shared")
            return
        with self.ws.ledger.read() as conn:
            owed = owed_balances(conn, "EUR", the_period.last_month)
        if not any(amount >= max(minimum, 1) for amount in owed.values()):
            made = export()  # nothing to pay: nothing recorded, nothing blocked
            assert not made.new
            assert self.ws.store.tree_size() == size
            event("payout with nothing owed")
            return
        with self.appending(crash, 1):
            made = export()
            assert made.new
            assert all(amount >= max(minimum, 1) for amount in made.paid.values())
            assert all(0 < amount < minimum for amount in made.carried.values())
            assert {str(p): a for p, a in made.paid.items()} == {
                p: a for p, a in owed.items() if a >= max(minimum, 1)
            }
            self.exported[period] = made.content
            event(f"payout paid {len(made.paid)}, carried {len(made.carried)}")

    @rule(count=st.integers(2, 6), data=st.data())
    def crash_in_a_batch(self, count: int, data: st.DataObject) -> None:
        party = data.draw(st.sampled_from(self.parties), label="author")
        """A batch of appends crashes after some of its entries were projected."""
        nth = data.draw(st.integers(0, count - 1), label="crash after entries")
        bodies = [
            (
                AssetRegistered(
                    Digest.of_bytes(f"batch {self.expected_size}/{n}".encode()), "dataset", "b"
                ),
                party,
            )
            for n in range(count)
        ]
        before = self.snapshot()
        self.ws.store.faults = Fault("entry", nth)
        try:
            with pytest.raises(SimulatedCrashError):
                self.ws.append_many(bodies)
        finally:
            self.ws.store.faults = None
        assert self.snapshot() == before

    @rule(data=st.data())
    def forged_entry_is_refused(self, data: st.DataObject) -> None:
        party = data.draw(st.sampled_from(self.parties), label="party")
        body = AssetRegistered(Digest.of_bytes(b"forged"), "model", "forged")
        entry = sign_entry(body, author=party, key=SigningKey.generate(), clock=self.ws.clock)
        with pytest.raises(SignatureError):
            self.ws.append_signed([entry.canonical])

    @rule(data=st.data())
    def contribution_to_an_unknown_asset_is_refused(self, data: st.DataObject) -> None:
        party = data.draw(st.sampled_from(self.parties), label="party")
        with pytest.raises(NotFoundError):
            self.ws.contribute(
                Digest.of_bytes(b"nowhere"), {party: 1}, role="data", by=party, partial=True
            )

    @rule(data=st.data())
    def duplicate_party_registration_is_refused(self, data: st.DataObject) -> None:
        party = data.draw(st.sampled_from(self.parties), label="party")
        key = self.ws.signing_key(party)
        entry = sign_entry(
            PartyRegistered(party, "again", ("contributor",), key.public), author=party, key=key
        )
        with pytest.raises(InputError, match="already registered"):
            self.ws.append_signed([entry.canonical])

    # -------------------------------------------------------- invariants

    def revenue_body(self, revenue: RevenueId) -> Any:
        [body] = [
            e.body() for _, e in self.ws.revenue_entries() if e.raw_body["revenue"] == str(revenue)
        ]
        return body

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
    def the_log_and_its_money_are_consistent(self) -> None:
        """The costly checks, skipped when no row and no file changed since they last passed."""
        state = self.snapshot()
        if state == self.checked:
            return
        self.verify_passes_and_rebuild_equals_live()
        self.money_is_conserved_paid_once_and_stated_verifiably()
        self.checked = state

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

    def money_is_conserved_paid_once_and_stated_verifiably(self) -> None:
        """Each allocation is checked when it first appears (its entries never change after,
        as `verify` shows); statements whenever an allocation was added."""
        entries = [parse_entry(data) for _, _, data in self.ws.store.leaves(0, self.expected_size)]
        revenue = {
            e.raw_body["revenue"]: e.raw_body["amount_minor"]
            for e in entries
            if e.kind == "revenue.recorded"
        }
        allocations = [e.raw_body for e in entries if e.kind == "allocation.recorded"]
        allocated: dict[str, int] = {}
        for number, body in enumerate(allocations):
            amounts = {p: int(a) for p, a in body["amounts"].items()}
            if number >= self.allocations_checked:
                assert sum(amounts.values()) == revenue[body["revenue"]] == body["total_minor"]
                again = self.ws.share(body["revenue"])  # recomputed from the entries it names
                assert not again.new
                assert {str(p): a for p, a in again.allocation.amounts.items()} == amounts
            for party, amount in amounts.items():
                allocated[party] = allocated.get(party, 0) + amount
        paid: dict[str, int] = {}
        for entry in (e for e in entries if e.kind == "payout.recorded"):
            for party, amount in entry.raw_body["paid"].items():
                paid[party] = paid.get(party, 0) + int(amount)
        for party, amount in paid.items():
            assert amount <= allocated.get(party, 0), f"{party} paid {amount}, allocated less"
        if len(allocations) == self.allocations_checked:
            return
        trusted = str(self.ws.verifier)
        for party in sorted(allocated):
            statement = self.ws.statement(PartyId.parse(party), YEAR)
            assert statement.totals == {"EUR": allocated[party]}
            proof = json.loads(json.dumps(self.ws.statement_proof(PartyId.parse(party), YEAR)))
            assert verify_statement(proof, trusted_key=trusted).totals == statement.totals
        self.allocations_checked = len(allocations)


@contextmanager
def _disposing(engine: sqlalchemy.Engine) -> Iterator[sqlalchemy.Connection]:
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


SIZES = {"dev": (6, 30), "ci": (30, 50)}  # (workflows, steps in each) per hypothesis profile


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_domain_simulation(backend: str, request: pytest.FixtureRequest) -> None:
    url: str | None = None
    if backend == "postgres":
        request.getfixturevalue("postgres_available")
        url = POSTGRES_URL
    workflows, steps = SIZES.get(PROFILE, SIZES["dev"])

    class Simulation(DomainSimulation):
        database_url = url

    run_state_machine_as_test(
        Simulation,
        settings=settings(
            max_examples=workflows,
            stateful_step_count=steps,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
