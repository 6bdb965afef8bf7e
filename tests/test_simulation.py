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

Rights (quotepart.store.rights): registrants delegate and revoke rights (some windows
open, some not yet begun, some expired), and random parties, delegates among them, sign
entries of every kind a party may sign by hand on existing assets (valuations, policies,
contributions and their acceptance, revenue, usage, runs, delegations, claims, consents,
allocations with forged amounts, payouts). The model predicts each verdict from who
registered what, the delegations in force, closed periods and the allocation recomputed
here; the store must agree. A refused entry leaves the tree size and root as they were
and its leaf hash out of the log; an accepted entry under a right is signed by the
asset's registrant or a party once delegated that right.

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
from datetime import UTC, datetime, timedelta
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

from quotepart.allocation import allocate
from quotepart.errors import (
    AlreadyRegisteredError,
    InputError,
    MalformedEntryError,
    MoneyError,
    NotFoundError,
    PolicyError,
    RightsError,
    SignatureError,
)
from quotepart.ids import Digest, PartyId, PayoutId, Period, RevenueId, RunId
from quotepart.log import SigningKey, parse_entry, sign_entry
from quotepart.log.kinds import (
    AllocationRecorded,
    AssetRegistered,
    ClaimFiled,
    ConsentRecorded,
    ContributionAccepted,
    ContributionRecorded,
    PartyRegistered,
    PayoutRecorded,
    PolicySet,
    RevenueRecorded,
    RightGranted,
    RightRevoked,
    RunRecorded,
    UsageRecorded,
    ValuationRecorded,
)
from quotepart.log.kinds.rights import RIGHTS
from quotepart.sharing import verify_statement
from quotepart.sharing.ledger import facts_of
from quotepart.store.log_store import FAULT_POINTS
from quotepart.store.queries.sharing import owed_balances
from quotepart.store.schema import PROJECTION_TABLES, metadata
from quotepart.text import unsafe_character
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


@dataclass
class Grant:
    """A delegation as the model sees it (`right.granted`, until a `right.revoked`)."""

    grantor: PartyId
    grantee: PartyId
    right: str
    asset: Digest
    since: datetime
    until: datetime | None
    revoked: bool = False


@dataclass
class Proposal:
    """A contribution its contributor signed, counting once the registrant accepts it."""

    party: PartyId
    asset: Digest
    share: Fraction
    accepted: bool = False


HOUR = timedelta(hours=1)
WINDOWS = {  # a delegation's window, around the clock's now (a workflow lasts milliseconds)
    "open": (-HOUR, None),
    "bounded": (-HOUR, HOUR),
    "not yet": (HOUR, None),
    "expired": (-2 * HOUR, -HOUR),
}
DELEGATED = ["valuation", "policy", "billing", "metering", "sharing", "run"]
MONEY_KINDS = [
    "valuation.recorded", "policy.set", "revenue.recorded", "usage.recorded",
    "allocation.recorded", "payout.recorded",
]  # fmt: skip
PROVENANCE_KINDS = [
    "contribution.recorded", "contribution.accepted", "run.recorded", "claim.filed",
    "consent.recorded",
]  # fmt: skip
DELEGATION_KINDS = ["right.granted", "right.revoked"]
SIGNS_UNDER = {
    "valuation": "valuation.recorded", "policy": "policy.set", "billing": "revenue.recorded",
    "metering": "usage.recorded", "sharing": "allocation.recorded", "run": "run.recorded",
    "contribution": "contribution.recorded",
}  # fmt: skip
"""The kinds a random party signs in `anyone_signs`, in three rules so each is drawn often."""


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
        self.clock = FakeClock()
        self.ws: Workspace = init_workspace(self.folder / "ws", database_url=url, clock=self.clock)
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
        # the rights layer: who registered what, who delegated what, and what is closed
        self.registrant: dict[Digest, PartyId] = {}
        self.iban_of: dict[PartyId, str] = {}
        self.grants: list[Grant] = []
        self.proposals: dict[str, Proposal] = {}  # leaf hash (hex) -> proposal
        self.consents: dict[tuple[PartyId, Digest], str] = {}  # latest action
        self.outputs: list[Digest] = []  # registered, produced by no run yet
        self.revenue_of: dict[RevenueId, tuple[Digest, str]] = {}  # asset, month
        self.billed: dict[Digest, set[int]] = {}  # months a revenue of the asset covers
        self.closed: set[tuple[Digest, str]] = set()  # (asset, month) with shared revenue
        self.forced: Digest | None = None  # the asset `delegate_signs` signs on

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

    @initialize(right=st.sampled_from(DELEGATED), window=st.sampled_from(sorted(WINDOWS)))
    def starter_scene(self, right: str, window: str) -> None:
        """An operator, two contributors with a dataset each, a model trained on both and a
        service on it: workflows start where sharing is possible, so short runs reach it."""
        self.lab = self.ws.register_party(
            "Lab", roles=("operator",), payout_reference=iban(self.next_account())
        )
        self.lab_iban = iban(self.accounts)
        self.iban_of[self.lab] = self.lab_iban
        self.expected_size += 1
        for number in (1, 2):
            party = self.ws.register_party(
                f"Hospital {number}", payout_reference=iban(self.next_account())
            )
            self.iban_of[party] = iban(self.accounts)
            data = self.ws.register_asset(
                f"records {number}".encode(), asset_kind="dataset", name=f"d{number}", by=party
            )
            self.registrant[data] = party
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
        # the lab delegates one right over its service or model to Hospital 1, so that
        # every workflow has a delegate to sign (or fail to sign) under it
        asset = self.services[0] if right in ("metering", "billing") else self.models[0]
        start, end = WINDOWS[window]
        since = self.clock.now + start
        until = None if end is None else self.clock.now + end
        grantee = self.parties[0]
        self.ws.grant_right(grantee, right, asset, by=self.lab, since=since, until=until)
        self.grants.append(Grant(self.lab, grantee, right, asset, since, until))
        self.expected_size += 1

    def next_account(self) -> int:
        self.accounts += 1
        return self.accounts

    @rule(name=st.text(min_size=1, max_size=12).filter(str.strip), crash=crashes)
    def register_party(self, name: str, crash: str | None) -> None:
        if unsafe_character(name) is not None:  # NUL (PostgreSQL cannot store it), or a
            # control or bidirectional character (names are shown in terminals): refused
            with pytest.raises(MalformedEntryError, match=r"NUL|control or bidirectional"):
                self.ws.register_party(name)
            return
        with self.appending(crash, 1):
            party = self.ws.register_party(name, payout_reference=iban(self.next_account()))
            self.parties.append(party)
            self.iban_of[party] = iban(self.accounts)

    @rule(data=st.data(), content=st.binary(max_size=12), crash=crashes)
    def register_dataset(self, data: st.DataObject, content: bytes, crash: str | None) -> None:
        owner = data.draw(st.sampled_from(self.parties), label="owner")
        digest = Digest.of_bytes(content)
        if self.ws.asset(digest) is not None:  # known content: nothing appended
            if self.registrant.get(digest) not in (None, owner):  # first come: not owner's
                with pytest.raises(AlreadyRegisteredError):
                    self.ws.register_asset(content, asset_kind="dataset", name="d", by=owner)
                event("registration refused: registered first by another")
                return
            assert (
                self.ws.register_asset(content, asset_kind="dataset", name="d", by=owner) == digest
            )
            return
        with self.appending(crash, 1):
            self.ws.register_asset(content, asset_kind="dataset", name="d", by=owner)
            self.datasets.append(digest)
            self.registrant[digest] = owner

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
            [index] = self.ws.contribute(asset, {party: share}, role="data", by=party, partial=True)
            if self.registrant[asset] == party:
                self.declared[asset] = declared + share
            else:  # not its registrant: a proposal, counting once accepted
                leaf = self.ws.entry_at(index).leaf_hash.hex()
                self.proposals[leaf] = Proposal(party, asset, share)
                event("contribution proposed")

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
        self.registrant[model] = self.lab
        self.expected_size += 1

        def record_run() -> None:
            with self.ws.run("train", operator=self.lab) as run:
                run.use(*data, *upstream)
                run.produce(model)

        if any(self.withdrawn(asset) for asset in (*data, *upstream)):
            with pytest.raises(RightsError) as refused:  # its registrant withdrew it from use
                record_run()
            assert refused.value.rule == "consent"
            assert self.ws.store.tree_size() == self.expected_size
            event("run refused: an input withdrawn by its registrant")
            return
        with self.appending(crash, 1):
            record_run()
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
            self.registrant[service] = self.lab

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
        if negative == "shift":  # refused for new policies: a harmful sybil games it
            size = self.ws.store.tree_size()
            with pytest.raises(PolicyError, match="shift"):
                self.ws.set_policy(
                    model, pool=pool, roles=roles, negative_values=negative, by=self.lab
                )
            assert self.ws.store.tree_size() == size  # nothing written
            return
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
            self.consents[(party, asset)] = "withdraw" if withdraw else "grant"

    def withdrawn(self, asset: Digest) -> bool:
        """Whether the registrant of `asset` withdrew it from use (runs may not use it)."""
        owner = self.registrant.get(asset)
        return self.consents.get((owner, asset)) == "withdraw" if owner else False

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
        if (asset, period) in self.closed:  # a shared period is closed
            with pytest.raises(RightsError) as refused:
                self.ws.record_revenue(
                    asset, amount, "EUR", period=period, source="invoice", by=self.lab
                )
            assert refused.value.rule == "closed-period"
            event("revenue refused: period closed")
            return
        with self.appending(crash, 1):
            revenue = self.ws.record_revenue(
                asset, amount, "EUR", period=period, source="invoice", by=self.lab
            )
            self.booked_revenue(revenue, asset, period)

    def booked_revenue(self, revenue: RevenueId, asset: Digest, period: str) -> None:
        self.booked.add((asset, period))
        self.revenues.append(revenue)
        self.revenue_of[revenue] = (asset, period)
        self.billed.setdefault(asset, set()).add(Period.parse(period).first_month)

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
            self.count_usage(service, 2026 * 12 + month - 1, units)

    def count_usage(self, service: Digest, month: int, units: int) -> None:
        """Usage counts in its month, or (late into a billed month) the next open one."""
        billed = self.billed.get(service, set())
        if month in billed:
            event("late usage moved to the next open month")
        while month in billed:
            month += 1
        key = (service, f"{month // 12:04d}-{month % 12 + 1:02d}")
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
            self.booked_revenue(revenue, service, period)
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
        before = len(self.revenues)
        self.record_revenue(data, amount, period, None)
        if len(self.revenues) > before:
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
            size = self.ws.store.tree_size()
            try:
                shared = self.ws.share(revenue, by=self.registrant[body.asset])
            except PolicyError:
                assert self.ws.store.tree_size() == size
                event("share refused by policy")
                return
            # a role whose part of the money rounds to nothing needs no valuation (a pool of
            # 0, or a revenue of a few minor units): the model cannot tell, the engine can
            assert shared.new
            assert sum(shared.allocation.amounts.values()) == body.amount_minor
            self.expected_size += 1
            self.shared.add(revenue)
            self.closed.add(self.revenue_of[revenue])
            event("share of a model without its valuation: nothing to value")
            return
        with self.appending(crash, 1):
            shared = self.ws.share(revenue, by=self.registrant[body.asset])
            assert shared.new
            assert sum(shared.allocation.amounts.values()) == body.amount_minor
            self.shared.add(revenue)
            self.closed.add(self.revenue_of[revenue])
            event(f"shared among {len(shared.allocation.amounts)} parties")

    @rule(
        data=st.data(),
        period=st.sampled_from(PAYOUT_PERIODS),
        minimum=st.integers(0, 10_000),
        crash=crashes,
    )
    def export_payout(
        self, data: st.DataObject, period: str, minimum: int, crash: str | None
    ) -> None:
        """The payer pays what the allocations it signed give: mostly the lab, sometimes
        another party (a delegate that shared revenue, or one that owes nothing)."""
        payer = data.draw(st.sampled_from([self.lab, self.lab, *self.parties]), label="payer")

        def export() -> Any:
            return self.ws.export_payout(
                period,
                "EUR",
                "sepa",
                by=payer,
                debtor_name="Payer",
                debtor_iban=self.iban_of[payer],
                minimum_minor=minimum,
            )

        the_period = Period.parse(period)
        size = self.ws.store.tree_size()
        pending = [
            body.revenue
            for _, entry in self.ws.revenue_entries()
            if (body := entry.body_as(RevenueRecorded)).revenue not in self.shared
            and body.currency == "EUR"
            and self.registrant[body.asset] == payer  # the revenue the payer shares
            and body.period.last_month <= the_period.last_month
        ]
        if pending:  # money not yet shared is never paid around: the export refuses
            with pytest.raises(InputError, match="not shared"):
                export()
            assert self.ws.store.tree_size() == size
            event("payout refused: revenue not shared")
            return
        with self.ws.ledger.read() as conn:
            owed = owed_balances(conn, "EUR", the_period.last_month, payer=payer)
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

    # ------------------------------------------------------------- rights

    def holds(self, party: PartyId, right: str, asset: Digest) -> bool:
        """The model of `quotepart.store.rights.holds`, for an entry signed now."""
        owner = self.registrant.get(asset)
        if owner is None:
            return False
        now = self.clock.now
        return owner == party or any(
            g.grantee == party
            and g.right == right
            and g.asset == asset
            and not g.revoked
            and g.since <= now
            and (g.until is None or now < g.until)
            for g in self.grants
        )

    def delegated(self, party: PartyId, right: str, asset: Digest) -> bool:
        """Whether `party` was ever delegated `right` over `asset`, revoked or not (a
        weaker claim than `holds`, asserted of every entry the store accepts)."""
        return any((g.grantee, g.right, g.asset) == (party, right, asset) for g in self.grants)

    def all_assets(self) -> list[Digest]:
        return [*self.datasets, *self.models, *self.services, *self.outputs]

    def pick(
        self, data: st.DataObject, assets: list[Digest], signer: PartyId, right: str, label: str
    ) -> Digest:
        """One of `assets`, twice as likely one `signer` registered or was delegated
        `right` over, so that allowed entries are as common as refused ones."""
        if self.forced in assets:  # a delegate signs on the asset of its delegation
            return self.forced
        mine = [
            a for a in assets if self.registrant[a] == signer or self.delegated(signer, right, a)
        ]
        return data.draw(st.sampled_from([*mine, *mine, *assets]), label=label)

    def grantees(self) -> list[PartyId]:
        return sorted({g.grantee for g in self.grants if not g.revoked})

    def signed(
        self,
        body: Any,
        signer: PartyId,
        allowed: bool,
        *,
        rule: str | None = None,
        presigned: bool = True,
    ) -> bool:
        """Append `body` signed by `signer` (signed here, or by `Workspace.append`)."""
        if presigned:
            key = self.ws.signing_key(signer)
            entry = sign_entry(
                body, origin=self.ws.origin, author=signer, key=key, clock=self.ws.clock
            )
            return self.signed_entry(entry, allowed, rule)
        return self.judged(
            lambda: self.ws.append(body, author=signer), body.KIND, allowed, rule, None
        )

    def signed_entry(self, entry: Any, allowed: bool, rule: str | None) -> bool:
        """Append an entry signed here (whose leaf hash the caller may keep)."""
        return self.judged(
            lambda: self.ws.append_signed([entry.canonical]), entry.kind, allowed, rule, entry
        )

    def judged(self, append: Any, kind: str, allowed: bool, rule: str | None, entry: Any) -> bool:
        """The store must accept the entry exactly when the model says `allowed`; a refusal
        (a RightsError of `rule`, when given) writes nothing."""
        size = self.ws.store.tree_size()
        root = self.ws.store.root_hash(size)
        refusal: InputError | NotFoundError | None = None
        try:
            append()
        except (InputError, NotFoundError) as exc:
            refusal = exc
        if refusal is not None:
            assert self.ws.store.tree_size() == size, "a refused entry changed the log"
            assert self.ws.store.root_hash(size) == root
            if entry is not None:
                hashes = {h for _, h, _ in self.ws.store.leaves(0, size)}
                assert entry.leaf_hash not in hashes, "the refused entry is in the log"
            assert not allowed, f"{kind} refused where the model allows it: {refusal!r}"
            if rule is not None:
                assert isinstance(refusal, RightsError), refusal
                assert refusal.rule == rule, (refusal.rule, rule, str(refusal))
            event(f"{kind}: refused ({type(refusal).__name__})")
            return False
        assert allowed, f"{kind} accepted where the rules refuse it"
        self.expected_size += 1
        assert self.ws.store.tree_size() == self.expected_size
        event(f"{kind}: accepted")
        return True

    @rule(data=st.data(), content=st.integers(0, 10**6))
    def register_output(self, data: st.DataObject, content: int) -> None:
        """A model registered by anyone, for a run to produce: only its registrant (or a
        party it delegated the run right to) may name it as a run's output."""
        owner = data.draw(st.sampled_from([self.lab, *self.parties]), label="registrant")
        digest = Digest.of_bytes(f"output {content} {self.expected_size}".encode())
        self.ws.register_asset(digest, asset_kind="model", name="o", by=owner)
        self.expected_size += 1
        self.outputs.append(digest)
        self.registrant[digest] = owner

    @rule(
        data=st.data(),
        right=st.sampled_from(DELEGATED),
        window=st.sampled_from(sorted(WINDOWS)),
        then_sign=st.booleans(),
        number=st.integers(1, 10**6),
    )
    def grant_right(
        self, data: st.DataObject, right: str, window: str, then_sign: bool, number: int
    ) -> None:
        """The registrant (mostly) delegates a right over one of its assets, through the SDK;
        then (sometimes) the grantee signs under it at once."""
        fitting = {  # the assets a right is of use on here (policies are set on models)
            "valuation": self.models,
            "policy": self.models,
            "metering": self.services,
            "run": self.outputs or self.models,
        }.get(right, [*self.models, *self.services])
        asset = data.draw(st.sampled_from([*fitting * 3, *self.all_assets()]), label="asset")
        owner = self.registrant[asset]
        others = [p for p in [self.lab, *self.parties] if p != owner]
        grantee = data.draw(st.sampled_from(others * 4 + [owner]), label="grantee")
        signer = data.draw(st.sampled_from([owner, owner, grantee, *self.parties]), label="by")
        start, end = WINDOWS[window]
        since = self.clock.now + start
        until = None if end is None else self.clock.now + end
        allowed = grantee != owner and self.holds(signer, right, asset)
        if self.judged(
            lambda: self.ws.grant_right(grantee, right, asset, by=signer, since=since, until=until),
            f"grant_right ({window})",
            allowed,
            None if grantee == owner or allowed else "delegation",
            None,
        ):
            self.licensed(signer, right, asset)
            self.grants.append(Grant(signer, grantee, right, asset, since, until))
            if then_sign:
                self.sign_under(self.grants[-1], data, number % 2 == 0, number)

    @precondition(lambda self: self.grants)
    @rule(data=st.data())
    def revoke_right(self, data: st.DataObject) -> None:
        """The grantor, the registrant or a stranger revokes a delegation, through the SDK."""
        grant = data.draw(st.sampled_from(self.grants), label="grant")
        owner = self.registrant[grant.asset]
        signer = data.draw(
            st.sampled_from([owner, grant.grantor, *self.parties]), label="revoked by"
        )
        self.revoke(grant.grantee, grant.right, grant.asset, signer, None)

    def revoke(
        self, grantee: PartyId, right: str, asset: Digest, signer: PartyId, presigned: bool | None
    ) -> None:
        """`presigned` None: through the SDK; else an entry signed here."""
        active = [
            g
            for g in self.grants
            if (g.grantee, g.right, g.asset) == (grantee, right, asset) and not g.revoked
        ]
        owner = self.registrant[asset]
        allowed = bool(active) and (signer == owner or signer in {g.grantor for g in active})
        rule_broken = "delegation" if active else None
        if presigned is None:
            accepted = self.judged(
                lambda: self.ws.revoke_right(grantee, right, asset, by=signer),
                "revoke_right",
                allowed,
                rule_broken,
                None,
            )
        else:
            body = RightRevoked(grantee, right, asset)
            accepted = self.signed(body, signer, allowed, rule=rule_broken, presigned=presigned)
        if accepted:
            for grant in active:
                grant.revoked = True

    def anyone_signs(self, data: st.DataObject, kind: str, presigned: bool, number: int) -> None:
        """A random registered party (often a delegate) signs an entry of `kind` on existing
        assets: the store accepts it exactly when the rules say its signer may sign it."""
        signer = data.draw(
            st.sampled_from([self.lab, *self.parties, *self.grantees() * 3]), label="signer"
        )
        getattr(self, "sign_" + kind.replace(".", "_"))(data, signer, presigned, number)

    @precondition(lambda self: self.grants)
    @rule(data=st.data(), presigned=st.booleans(), number=st.integers(1, 10**6))
    def delegate_signs(self, data: st.DataObject, presigned: bool, number: int) -> None:
        """The grantee of a delegation (active, expired, not yet begun or revoked) signs
        what the delegated right covers, on the delegation's asset."""
        grant = data.draw(st.sampled_from(self.grants), label="delegation")
        self.sign_under(grant, data, presigned, number)

    def sign_under(self, grant: Grant, data: st.DataObject, presigned: bool, number: int) -> None:
        active = self.holds(grant.grantee, grant.right, grant.asset)
        event(f"a delegate signs under the {grant.right} right ({active=})")
        self.forced = grant.asset
        try:
            kind = SIGNS_UNDER[grant.right]
            getattr(self, "sign_" + kind.replace(".", "_"))(data, grant.grantee, presigned, number)
        finally:
            self.forced = None

    @rule(
        data=st.data(),
        kind=st.sampled_from(MONEY_KINDS),
        presigned=st.booleans(),
        number=st.integers(1, 10**6),
    )
    def anyone_signs_money(
        self, data: st.DataObject, kind: str, presigned: bool, number: int
    ) -> None:
        self.anyone_signs(data, kind, presigned, number)

    @rule(
        data=st.data(),
        kind=st.sampled_from(PROVENANCE_KINDS),
        presigned=st.booleans(),
        number=st.integers(1, 10**6),
    )
    def anyone_signs_provenance(
        self, data: st.DataObject, kind: str, presigned: bool, number: int
    ) -> None:
        self.anyone_signs(data, kind, presigned, number)

    @rule(
        data=st.data(),
        kind=st.sampled_from(DELEGATION_KINDS),
        presigned=st.booleans(),
        number=st.integers(1, 10**6),
    )
    def anyone_delegates(
        self, data: st.DataObject, kind: str, presigned: bool, number: int
    ) -> None:
        self.anyone_signs(data, kind, presigned, number)

    def sign_valuation_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        model = self.pick(data, self.models, signer, "valuation", "model")
        inputs = self.inputs[model]
        body = ValuationRecorded(
            model=model,
            values={asset: str(number % (n + 7) - 2) for n, asset in enumerate(inputs)},
            method="exact",
            evaluations=2 ** len(inputs),
            converged=True,
        )
        allowed = self.holds(signer, "valuation", model)
        if self.signed(body, signer, allowed, rule="valuation", presigned=presigned):
            self.licensed(signer, "valuation", model)
            self.valued.add(model)

    def licensed(self, signer: PartyId, right: str, asset: Digest) -> None:
        """An accepted entry's signer is the registrant or was delegated the right."""
        assert signer == self.registrant[asset] or self.delegated(signer, right, asset), (
            f"{signer} signed under the {right} right on {asset} without holding it"
        )
        if signer != self.registrant[asset]:
            event(f"signed as a delegate: {right}")

    def sign_policy_set(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        model = self.pick(data, self.models, signer, "policy", "model")
        weighting = data.draw(st.sampled_from(["valuation", "equal", "declared"]), label="w")
        missing = data.draw(st.sampled_from(["refuse", "declared"]), label="missing")
        data_share = Fraction(number % 9 + 1, 10)
        body = PolicySet(
            asset=model,
            operator=signer,
            pool=Fraction(number % 5, 4),
            roles={"data": data_share, "upstream_model": 1 - data_share},
            weighting={"data": weighting, "upstream_model": "equal"},
            missing_valuation=missing,
        )
        allowed = self.holds(signer, "policy", model)
        if self.signed(body, signer, allowed, rule="policy", presigned=presigned):
            self.licensed(signer, "policy", model)
            self.policies[model] = Policy(weighting, missing)

    def sign_contribution_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        asset = self.pick(data, self.datasets, signer, "contribution", "dataset")
        party = data.draw(st.sampled_from([signer, *self.parties]), label="contributor")
        share = Fraction(1, number % 4 + 2)
        owner = self.registrant[asset]
        declared = self.declared.get(asset, Fraction(0))
        counted = signer == owner
        allowed = signer in (owner, party) and (not counted or declared + share <= 1)
        body = ContributionRecorded(party, asset, "data", share)
        entry = sign_entry(
            body,
            origin=self.ws.origin,
            author=signer,
            key=self.ws.signing_key(signer),
            clock=self.clock,
        )
        refusal = "contribution" if signer not in (owner, party) else None
        # signed here in both cases: a proposal is named by its leaf hash
        if not self.signed_entry(entry, allowed, refusal):
            return
        if counted:
            self.declared[asset] = declared + share
        else:
            assert signer == party, "a contribution signed by neither registrant nor contributor"
            self.proposals[entry.leaf_hash.hex()] = Proposal(party, asset, share)

    def sign_revenue_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        asset = self.pick(data, self.models + self.services, signer, "billing", "earner")
        period = data.draw(st.sampled_from(MONTHS), label="period")
        revenue = RevenueId.new(self.clock)
        body = RevenueRecorded(revenue, asset, Period.parse(period), number, "EUR", "invoice")
        holds = self.holds(signer, "billing", asset)
        closed = (asset, period) in self.closed
        rule_broken = "billing" if not holds else "closed-period" if closed else None
        if self.signed(body, signer, rule_broken is None, rule=rule_broken, presigned=presigned):
            self.licensed(signer, "billing", asset)
            self.booked_revenue(revenue, asset, period)

    def sign_usage_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        service = self.pick(data, self.services, signer, "metering", "service")
        month = number % 6 + 1
        at = datetime(2026, month, 15, tzinfo=UTC)
        consumer = self.ws.pseudonym(f"consumer {number % 3}")
        body = UsageRecorded(service, consumer, number % 100 + 1, at, at + timedelta(hours=1))
        holds = self.holds(signer, "metering", service)
        billed = 2026 * 12 + month - 1 in self.billed.get(service, set())
        rule_broken = "metering" if not holds else "closed-period" if billed else None
        if self.signed(body, signer, rule_broken is None, rule=rule_broken, presigned=presigned):
            self.licensed(signer, "metering", service)
            self.count_usage(service, 2026 * 12 + month - 1, number % 100 + 1)

    def sign_run_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        if not self.outputs:
            self.register_output(data, number)
        output = self.pick(data, self.outputs, signer, "run", "output")
        operator = data.draw(st.sampled_from([signer, signer, *self.parties]), label="operator")
        inputs = data.draw(
            st.lists(st.sampled_from(self.datasets), min_size=1, max_size=2, unique=True),
            label="inputs",
        )
        started = self.clock()
        body = RunRecorded(
            run=RunId.new(self.clock),
            name="train",
            operator=operator,
            status="succeeded",
            started=started,
            ended=self.clock(),
            inputs=tuple(inputs),
            outputs=(output,),
        )
        rule_broken = (
            "run"
            if operator != signer or not self.holds(signer, "run", output)
            else "consent"
            if any(self.withdrawn(asset) for asset in inputs)
            else None
        )
        if self.signed(body, signer, rule_broken is None, rule=rule_broken, presigned=presigned):
            self.licensed(signer, "run", output)
            self.outputs.remove(output)  # produced: no run of the simulation names it again

    def sign_right_granted(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        right = data.draw(st.sampled_from(sorted(RIGHTS)), label="right")
        asset = self.pick(data, self.all_assets(), signer, right, "asset")
        grantee = data.draw(st.sampled_from([self.lab, *self.parties]), label="grantee")
        start, end = data.draw(st.sampled_from(sorted(WINDOWS.values(), key=str)), label="window")
        since = self.clock.now + start
        until = None if end is None else self.clock.now + end
        owner = self.registrant[asset]
        allowed = grantee != owner and self.holds(signer, right, asset)
        rule_broken = None if grantee == owner or allowed else "delegation"
        body = RightGranted(grantee, right, asset, since, until)
        if self.signed(body, signer, allowed, rule=rule_broken, presigned=presigned):
            self.licensed(signer, right, asset)
            self.grants.append(Grant(signer, grantee, right, asset, since, until))

    def sign_right_revoked(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        if self.grants and number % 4:
            grant = data.draw(st.sampled_from(self.grants), label="grant")
            grantee, right, asset = grant.grantee, grant.right, grant.asset
        else:
            grantee = data.draw(st.sampled_from(self.parties), label="grantee")
            right = data.draw(st.sampled_from(sorted(RIGHTS)), label="right")
            asset = data.draw(st.sampled_from(self.all_assets()), label="asset")
        self.revoke(grantee, right, asset, signer, presigned)

    def sign_claim_filed(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        asset = data.draw(st.sampled_from(self.all_assets()), label="asset")
        allowed = signer != self.registrant[asset]
        self.signed(ClaimFiled(asset, f"mine ({number})"), signer, allowed, presigned=presigned)

    def sign_contribution_accepted(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        if not self.proposals:
            event("no proposal to accept")
            return
        leaf = data.draw(st.sampled_from(sorted(self.proposals)), label="proposal")
        proposal = self.proposals[leaf]
        party = proposal.party
        if number % 5 == 0:  # an acceptance that misnames the contributor
            party = data.draw(st.sampled_from([self.lab, *self.parties]), label="party")
        owner = self.registrant[proposal.asset]
        declared = self.declared.get(proposal.asset, Fraction(0))
        allowed = (
            signer == owner
            and party == proposal.party
            and not proposal.accepted
            and declared + proposal.share <= 1
        )
        body = ContributionAccepted(leaf, party, proposal.asset)
        rule_broken = "contribution" if signer != owner else None
        if self.signed(body, signer, allowed, rule=rule_broken, presigned=presigned):
            proposal.accepted = True
            self.declared[proposal.asset] = declared + proposal.share

    def sign_allocation_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        """An allocation computed here, signed by anyone, mostly forged (one unit moved)."""
        if not self.revenues:
            event("no revenue to allocate")
            return
        if self.forced is not None:  # a delegate shares revenue of its asset
            revenues = [r for r in self.revenues if self.revenue_of[r][0] == self.forced]
            if not revenues:
                event("no revenue of the delegated asset")
                return
            unshared = revenues
        else:
            unshared = [r for r in self.revenues if r not in self.shared]
        others = self.revenues if self.forced is None else unshared
        revenue = data.draw(st.sampled_from([*unshared * 3, *others]), label="revenue")
        asset, _ = self.revenue_of[revenue]
        try:
            with self.ws.ledger.read() as conn:
                allocation = allocate(facts_of(conn, revenue))
        except PolicyError:  # not shareable now: anything allocating it is refused
            assert self.blocked(asset)
            body = AllocationRecorded(revenue, "EUR", number, {signer: number}, (), ())
            self.signed(body, signer, False, presigned=presigned)
            return
        amounts = dict(allocation.amounts)
        forged = number % 3 != 0
        if forged:  # one minor unit moves from the first party to the signer
            first = sorted(amounts)[0]
            amounts[first] -= 1
            amounts[signer] = amounts.get(signer, 0) + 1
            forged = amounts != allocation.amounts
            amounts = {p: a for p, a in amounts.items() if a}
        body = AllocationRecorded(
            revenue,
            allocation.currency,
            allocation.total_minor,
            amounts,
            tuple(allocation.inputs),
            tuple(allocation.notes),
        )
        holds = self.holds(signer, "sharing", asset)
        allowed = holds and not forged and revenue not in self.shared
        rule_broken = "sharing" if not holds else "recompute" if forged else None
        if self.signed(body, signer, allowed, rule=rule_broken, presigned=presigned):
            self.licensed(signer, "sharing", asset)
            self.shared.add(revenue)
            self.closed.add(self.revenue_of[revenue])

    def sign_payout_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        """A payout of what the signer owes a payee (or one unit more): only what the
        payer allocated and has not paid may be paid, judged here from the log alone."""
        payee = data.draw(st.sampled_from([self.lab, *self.parties]), label="payee")
        owed = 0
        for _, _, raw in self.ws.store.leaves(0, self.expected_size):
            entry = parse_entry(raw)
            if entry.author != signer:
                continue
            if entry.kind == "allocation.recorded":
                owed += int(entry.raw_body["amounts"].get(str(payee), 0))
            elif entry.kind == "payout.recorded":
                owed -= int(entry.raw_body["paid"].get(str(payee), 0))
        amount = max(owed, 0) + number % 2 if owed > 0 else number % 1000 + 1
        body = PayoutRecorded(
            PayoutId.new(self.clock), Period.parse(YEAR), "EUR", "sepa", {payee: amount}
        )
        allowed = amount <= owed
        if self.signed(body, signer, allowed, rule="payout", presigned=presigned):
            event("payout signed by hand")

    def sign_consent_recorded(
        self, data: st.DataObject, signer: PartyId, presigned: bool, number: int
    ) -> None:
        party = data.draw(st.sampled_from([signer, *self.parties]), label="party")
        asset = data.draw(st.sampled_from(self.datasets), label="dataset")
        action = "withdraw" if number % 2 else "grant"
        body = ConsentRecorded(party, asset, action, self.clock.now)
        if self.signed(body, signer, signer == party, rule="self", presigned=presigned):
            self.consents[(party, asset)] = action

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
        entry = sign_entry(
            body,
            origin=self.ws.origin,
            author=party,
            key=SigningKey.generate(),
            clock=self.ws.clock,
        )
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
            PartyRegistered(party, "again", ("contributor",), key.public),
            origin=self.ws.origin,
            author=party,
            key=key,
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


SIZES = {"dev": (20, 30), "ci": (30, 50)}  # (workflows, steps in each) per hypothesis profile


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
