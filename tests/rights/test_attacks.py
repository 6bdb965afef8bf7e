"""Issue 14's attack table: claimant B tries, through the SDK and through `quotepart log
append` (an entry signed elsewhere with B's key), to take money from the honest parties
of a scene; every attempt is refused with its rule and nothing written, and the revenue
then pays A and C exactly what a clean twin of the scene pays them, and B nothing."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import pytest

import quotepart.store.rights
from quotepart.errors import (
    AlreadyRegisteredError,
    InputError,
    NotFoundError,
    RightsError,
    VerificationError,
)
from quotepart.ids import Digest, PartyId, PayoutId, Period, RevenueId, RunId
from quotepart.log.kinds import (
    AllocationRecorded,
    AssetRegistered,
    ContributionRecorded,
    EntryBody,
    PayoutRecorded,
    PolicySet,
    RevenueRecorded,
    RunRecorded,
    UsageRecorded,
    ValuationRecorded,
)
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.rights.helpers import (
    FEBRUARY,
    LATE,
    Scene,
    cli_append,
    refused,
    refused_everywhere,
)

# ------------------------------------------------------------------ the rows


def forged_valuation(s: Scene) -> ValuationRecorded:
    values = {s.junk: "1", s.cohort_a: "0", s.cohort_c: "0"}
    return ValuationRecorded(s.model, values, "exact", 4, True)


def row_1_valuation(s: Scene) -> None:
    ws = s.ws
    refused(
        ws,
        lambda: ws.record_valuation(
            s.model,
            {s.junk: 1, s.cohort_a: 0, s.cohort_c: 0},
            method="exact",
            evaluations=4,
            by=s.b,
        ),
        "valuation",
    )
    refused_everywhere(ws, forged_valuation(s), s.b, "valuation")


def forged_policy(s: Scene) -> PolicySet:
    return PolicySet(
        asset=s.model,
        operator=s.b,
        pool=Fraction(0),
        roles={"data": Fraction(1)},
        weighting={"data": "valuation"},
    )


def row_2_policy(s: Scene) -> None:
    ws = s.ws
    refused(
        ws,
        lambda: ws.set_policy(s.model, pool=0, roles={"data": 1}, operator=s.b, by=s.b),
        "policy",
    )
    refused_everywhere(ws, forged_policy(s), s.b, "policy")


def row_3_contribution(s: Scene) -> None:
    """Before A records its own contribution to its fresh cohort."""
    ws = s.ws
    naming_b = ContributionRecorded(s.b, s.cohort_a, "data", Fraction(1))
    # a third party (the lab) may not name B on A's cohort
    refused(ws, lambda: ws.contribute(s.cohort_a, {s.b: 1}, role="data", by=s.lab), "contribution")
    refused_everywhere(ws, naming_b, s.lab, "contribution")
    # B naming itself only proposes: written, waiting for A, counting for nothing
    size = ws.store.tree_size()
    [proposed] = ws.contribute(s.cohort_a, {s.b: 1}, role="data", by=s.b)
    result = cli_append(ws, naming_b, s.b)
    assert result.exit_code == 0, result.stderr
    assert ws.store.tree_size() == size + 2
    waiting = ws.proposed_contributions(s.cohort_a)
    assert [(p.party, p.share, p.accepted_by) for p in waiting] == [(s.b, Fraction(1), None)] * 2
    assert waiting[0].leaf_index == proposed
    assert ws.declared_share_total(s.cohort_a) == 0


def row_4_registration(s: Scene) -> None:
    """B registers A's file (through the SDK, and another through the CLI) before A does."""
    ws = s.ws
    archive = b"hospital A: imaging archive"
    taken = ws.register_data(archive, name="imaging", by=s.b)
    leaf = ws.store.tree_size() - 1
    caught = refused(
        ws, lambda: ws.register_data(archive, name="imaging", by=s.a), None, AlreadyRegisteredError
    )
    assert isinstance(caught, AlreadyRegisteredError)
    assert (caught.asset, caught.registrant, caught.leaf_index) == (str(taken), str(s.b), leaf)
    assert caught.registered_at == ws.entry_at(leaf).time.isoformat()
    assert str(s.b) in caught.message
    assert "registered first by" in caught.message
    # the same through an entry B signed elsewhere
    notes = b"hospital A: clinical notes"
    result = cli_append(ws, AssetRegistered(Digest.of_bytes(notes), "dataset", "notes"), s.b)
    assert result.exit_code == 0, result.stderr
    refused(
        ws,
        lambda: ws.register_asset(notes, asset_kind="dataset", name="notes", by=s.a),
        None,
        AlreadyRegisteredError,
    )
    # A disputes it; the claim is listed
    claim = ws.file_claim(taken, "these are our patients' images", by=s.a)
    [listed] = [c for c in ws.claims() if c.leaf_index == claim]
    assert (listed.asset, listed.claimant) == (taken, s.a)
    assert listed in ws.claims(taken)
    refused(
        ws, lambda: ws.file_claim(Digest.of_bytes(b"nothing"), "x", by=s.a), None, NotFoundError
    )
    refused(ws, lambda: ws.file_claim(taken, "mine", by=s.b), None, InputError)


def forged_run(s: Scene, operator: PartyId) -> RunRecorded:
    now = s.ws.clock()
    return RunRecorded(
        RunId.new(s.ws.clock),
        "train",
        operator,
        "succeeded",
        now,
        now,
        inputs=(s.junk,),
        outputs=(s.model,),
    )


def row_5_run(s: Scene) -> None:
    refused_everywhere(s.ws, forged_run(s, s.b), s.b, "run")  # operator B
    refused_everywhere(s.ws, forged_run(s, s.lab), s.b, "run")  # operator lab, signed by B


def forged_revenue(s: Scene) -> RevenueRecorded:
    return RevenueRecorded(
        RevenueId.new(s.ws.clock), s.model, Period.parse("2026-01"), 10_000_000, "EUR", "forged"
    )


def forged_usage(s: Scene) -> UsageRecorded:
    return UsageRecorded(s.service, s.ws.metering.pseudonym("mallory"), 1_000, FEBRUARY, FEBRUARY)


def row_6_money(s: Scene) -> None:
    ws = s.ws
    refused(
        ws,
        lambda: ws.record_revenue(
            s.model, "100000.00", "EUR", period="2026-01", source="forged", by=s.b
        ),
        "billing",
    )
    refused_everywhere(ws, forged_revenue(s), s.b, "billing")
    refused(ws, lambda: ws.record_usage(s.service, "mallory", 1_000, FEBRUARY, by=s.b), "metering")
    refused_everywhere(ws, forged_usage(s), s.b, "metering")


def row_6_payout(s: Scene) -> None:
    """Once the revenue is shared: B's payout pays B nothing; a forged one is refused."""
    ws = s.ws
    size = ws.store.tree_size()
    payout = ws.export_payout("2026-01", "EUR", by=s.b)
    assert payout.files == ()
    assert payout.paid == {}
    assert ws.store.tree_size() == size
    forged = PayoutRecorded(
        PayoutId.new(), Period.parse("2026-01"), "EUR", "mobile_money", {s.b: 10_000}
    )
    refused_everywhere(ws, forged, s.b, "payout")


def row_7_late_usage(s: Scene) -> None:
    """January is billed: usage that starts in it."""
    ws = s.ws
    before = ws.usage_units(s.service, "2026-01"), ws.usage_units(s.service, "2026-02")
    refused(ws, lambda: ws.record_usage(s.service, "mallory", 5, LATE, by=s.b), "metering")
    late = UsageRecorded(s.service, ws.metering.pseudonym("clinic 3"), 5, LATE, LATE)
    refused_everywhere(ws, late, s.b, "metering")
    refused_everywhere(ws, late, s.lab, "closed-period")
    # through the SDK, the operator's late usage counts in the next open month, and says so
    leaf = ws.record_usage(s.service, "clinic 3", 5, LATE, by=s.lab)
    body = ws.entry_at(leaf).raw_body
    assert body["counted_in"] == "2026-02"
    assert "2026-01 was already billed" in body["note"]
    assert "counts in 2026-02" in body["note"]
    assert ws.usage_units(s.service, "2026-01") == before[0] == 1_000
    assert ws.usage_units(s.service, "2026-02") == before[1] + 5


def forged_allocation(s: Scene) -> AllocationRecorded:
    return AllocationRecorded(s.revenue, "EUR", 100_000, {s.lab: 100_000}, (), ())


def row_recompute(s: Scene) -> None:
    refused_everywhere(s.ws, forged_allocation(s), s.lab, "recompute")


def early_rows(s: Scene) -> None:
    row_3_contribution(s)
    row_4_registration(s)


def late_rows(s: Scene) -> None:
    for row in (
        row_1_valuation,
        row_2_policy,
        row_5_run,
        row_6_money,
        row_7_late_usage,
        row_recompute,
    ):
        row(s)


CLEAN = {"Lab": 50_000, "Hospital A": 37_500, "Hospital C": 12_500}


def assert_shares_as_clean(s: Scene, tmp_path: Path) -> None:
    """The scene's revenue pays what a clean twin's pays (B nothing), and the log verifies."""
    shared = s.share()
    later = FakeClock(datetime(2026, 1, 1, 6, tzinfo=UTC))  # other ids and times, same amounts
    with init_workspace(tmp_path / "twin", clock=later) as twin_ws:
        twin = Scene(twin_ws)
        clean = twin.by_name(twin.share().allocation.amounts)
    assert clean == CLEAN
    assert s.by_name(shared.allocation.amounts) == clean
    assert s.b not in shared.allocation.amounts
    s.ws.verify()


# ------------------------------------------------------------------ one row, one test

ROWS = {
    "1-valuation": (None, row_1_valuation),
    "2-policy": (None, row_2_policy),
    "3-contribution": (row_3_contribution, None),
    "4-registration": (row_4_registration, None),
    "5-run": (None, row_5_run),
    "6-revenue-usage": (None, row_6_money),
    "7-late-usage": (None, row_7_late_usage),
    "recompute": (None, row_recompute),
}


@pytest.mark.parametrize("row", [*ROWS, "6-payout"])
def test_each_attack_is_refused_and_pays_b_nothing(ws: Workspace, tmp_path: Path, row: str) -> None:
    if row == "6-payout":
        s = Scene(ws)
        s.share()
        row_6_payout(s)
        s.ws.verify()
        return
    early, late = ROWS[row]
    s = Scene(ws, early=early, late=late)
    assert_shares_as_clean(s, tmp_path)


def test_all_attacks_in_one_scene_leave_the_honest_shares_whole(
    ws: Workspace, tmp_path: Path
) -> None:
    s = Scene(ws, early=early_rows, late=late_rows)
    assert_shares_as_clean(s, tmp_path)
    row_6_payout(s)
    s.ws.verify()


# ------------------------------------------------------------------ injected


def _fresh_cohort_naming_b(s: Scene) -> tuple[EntryBody, PartyId]:
    fresh = s.ws.register_data(b"cohort A, second site", name="A2", by=s.a, asset_kind="cohort")
    return ContributionRecorded(s.b, fresh, "data", Fraction(1)), s.lab


INJECTED: dict[str, Callable[[Scene], tuple[EntryBody, PartyId]]] = {
    "valuation": lambda s: (forged_valuation(s), s.b),
    "policy": lambda s: (forged_policy(s), s.b),
    "contribution": _fresh_cohort_naming_b,
    "billing": lambda s: (forged_revenue(s), s.b),
    "metering": lambda s: (forged_usage(s), s.b),
    "run": lambda s: (forged_run(s, s.b), s.b),
    "recompute": lambda s: (forged_allocation(s), s.lab),
}


@pytest.mark.parametrize("rule", list(INJECTED))
def test_an_entry_written_behind_the_stores_back_is_named_by_verify(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, rule: str
) -> None:
    """Only the rule is broken: the store appends it (tree and checkpoint honest) while
    the rule is switched off, as an older quotepart without rights would have."""
    s = Scene(ws)
    body, author = INJECTED[rule](s)
    kind = body.KIND
    real = quotepart.store.rights.RULES[kind]
    if rule == "recompute":  # the allocation rule calls the recomputation itself
        monkeypatch.setattr("quotepart.store.recompute.check_allocation", lambda writer, body: None)
    else:
        lax = dataclasses.replace(real, check=lambda writer, body, entry: None)
        monkeypatch.setitem(quotepart.store.rights.RULES, kind, lax)
    leaf = ws.append(body, author=author)
    monkeypatch.undo()
    assert quotepart.store.rights.RULES[kind] is real
    with pytest.raises(VerificationError) as caught:
        ws.verify()
    message = caught.value.message
    assert message.startswith(f"entry {leaf}: "), message
    assert f"`{kind}`" in message
    assert str(author) in message
    assert f"(rule: {rule})" in message
    # rebuild refuses to replay it, and its transaction leaves the projections as they were
    parties = ws.parties()
    with pytest.raises(VerificationError) as refusal:
        ws.store.rebuild()
    assert refusal.value.message == message  # named as verify names it
    assert isinstance(refusal.value.__cause__, RightsError)
    assert refusal.value.__cause__.rule == rule
    assert ws.parties() == parties
    with pytest.raises(VerificationError, match=re.escape(message)):
        ws.verify()


# ------------------------------------------------------------------ delegation


def test_a_delegated_valuer_counts_until_revoked(ws: Workspace) -> None:
    s = Scene(ws)
    valuer = ws.register_party("Valuer", payout_reference="+254700000001")
    ws.grant_right(valuer, "valuation", s.model, by=s.lab)
    ws.record_valuation(
        s.model, {s.cohort_a: 0.2, s.cohort_c: 0.6}, method="exact", evaluations=4, by=valuer
    )
    first = s.by_name(s.share().allocation.amounts)
    assert first == {"Lab": 50_000, "Hospital A": 12_500, "Hospital C": 37_500}  # V's values
    ws.revoke_right(valuer, "valuation", s.model, by=s.lab)
    refused(
        ws,
        lambda: ws.record_valuation(
            s.model, {s.cohort_a: 1, s.cohort_c: 0}, method="exact", evaluations=4, by=valuer
        ),
        "valuation",
    )
    [delegation] = ws.delegations(s.model)
    assert (delegation.grantor, delegation.grantee, delegation.right) == (
        s.lab,
        valuer,
        "valuation",
    )
    assert delegation.revoked_by is not None
    assert not delegation.active
    assert ws.delegations(active=True) == []
    ws.record_usage(s.service, "clinic 1", 300, FEBRUARY, by=s.lab)
    february = ws.bill_usage(s.service, "2026-02", unit_price="1.00", currency="EUR", by=s.lab)
    second = s.by_name(ws.share(february).allocation.amounts)
    assert second == {"Lab": 15_000, "Hospital A": 3_750, "Hospital C": 11_250}  # still V's
    ws.verify()


def test_delegation_and_acceptance_refuse_bad_input(ws: Workspace) -> None:
    s = Scene(ws)
    refused(ws, lambda: ws.grant_right(s.b, "valuation", s.model, by=s.b), "delegation")
    refused(ws, lambda: ws.grant_right(s.c, "valuation", s.model, by=s.b), "delegation")
    refused(ws, lambda: ws.revoke_right(s.b, "valuation", s.model, by=s.lab), None, NotFoundError)
    refused(ws, lambda: ws.grant_right(s.b, "ownership", s.model, by=s.lab), None, InputError)
    refused(ws, lambda: ws.revoke_right(s.b, "ownership", s.model, by=s.lab), None, InputError)
    refused(ws, lambda: ws.accept_contribution(10_000, by=s.a), None, NotFoundError)
    refused(ws, lambda: ws.accept_contribution("00" * 32, by=s.a), None, NotFoundError)
    # a proposal B makes on A's fresh cohort: only A accepts it
    fresh = ws.register_data(b"cohort A, second site", name="A2", by=s.a, asset_kind="cohort")
    [proposal] = ws.contribute(fresh, {s.b: "1/4"}, role="data", by=s.b)
    refused(ws, lambda: ws.accept_contribution(proposal, by=s.b), "contribution")
    refused(ws, lambda: ws.accept_contribution(proposal, by=s.lab), "contribution")
    accepted = ws.accept_contribution(proposal, by=s.a)
    assert ws.proposed_contributions(fresh, waiting=False)[0].accepted_by == accepted
    assert ws.declared_share_total(fresh) == Fraction(1, 4)
    refused(ws, lambda: ws.accept_contribution(proposal, by=s.a), None, NotFoundError)
    ws.verify()
