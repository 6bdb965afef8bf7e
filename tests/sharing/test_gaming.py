"""Policies that make gaming unprofitable (issue 16): per-party weighing, floors that need
evidence, no `shift`, overlaps credited to the earlier registrant, and adjustments that
say why. Each attack measured in the issue is replayed under the old rules (a policy
body without `per`, which must keep allocating as it did) and under the new ones."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotepart.allocation import Allocation, allocate
from quotepart.errors import PolicyError
from quotepart.ids import Digest, PartyId
from quotepart.log import parse_entry
from quotepart.log.kinds import OverlapDetected, PolicySet
from quotepart.sharing import verify_statement
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.sharing.graph import Graph


def market(
    holdings: list[tuple[int, str, str | None]],
    parties: int,
    *,
    amount: int = 100_000,
    **policy: Any,
) -> tuple[Graph, list[PartyId], list[Digest], Digest]:
    """A model trained on one dataset per holding (owner index, value, stderr); each dataset
    has no contributors, so its registrant is paid. The policy pays the whole revenue to data."""
    g = Graph()
    owners = [g.party() for _ in range(parties)]
    data = [g.asset("dataset", author=owners[owner]) for owner, _, _ in holdings]
    model = g.asset("model")
    g.run(data, [model])
    g.valuation(
        model,
        {d: v for d, (_, v, _) in zip(data, holdings, strict=True)},
        {d: e for d, (_, _, e) in zip(data, holdings, strict=True) if e is not None},
    )
    g.policy(model, pool="1", roles={"data": "1"}, **policy)
    g.revenue(model, amount)
    return g, owners, data, model


def percent(allocation: Allocation, party: PartyId) -> Fraction:
    return Fraction(100 * allocation.amount_of(party), allocation.total_minor)


# ------------------------------------------------------------ per party, caps


def test_a_per_input_cap_is_beaten_by_splitting_and_a_per_party_cap_is_not() -> None:
    honest = [(0, "0.6", None)] + [(i, "0.1", None) for i in range(1, 5)]
    split = [(0, "0.3", None), (0, "0.3", None)] + [(i, "0.1", None) for i in range(1, 5)]
    cap = Fraction(1, 5)
    g, owners, _, _ = market(honest, 5, cap=cap)
    assert percent(allocate(g.facts()), owners[0]) == 20
    g, owners, _, _ = market(split, 5, cap=cap)  # the old rules: per input
    assert percent(allocate(g.facts()), owners[0]) == 40  # the attack the issue measured
    g, owners, data, _ = market(split, 5, cap=cap, per="input")
    assert percent(allocate(g.facts()), owners[0]) == 40  # per input stays gameable
    g, owners, data, _ = market(split, 5, cap=cap, per="party")
    allocation = allocate(g.facts())
    assert percent(allocation, owners[0]) == 20
    assert allocation.paid_at()[(data[0], owners[0])] == 10_000  # split evenly between its two
    capped = allocation.adjustments_of(owners[0])
    assert {(a.asset, a.kind) for a in capped} == {(data[0], "capped"), (data[1], "capped")}
    assert all(a.value == Fraction(3, 5) and a.before_minor == 30_000 for a in capped)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(-50, 1000), min_size=1, max_size=25),
    st.lists(st.integers(0, 1000), min_size=0, max_size=6),
    st.fractions(Fraction(1, 20), 1, max_denominator=20),
    st.integers(1, 10**9),
)
def test_a_per_party_cap_holds_across_any_number_of_inputs(
    own: list[int], others: list[int], cap: Fraction, amount: int
) -> None:
    holdings = [(0, str(v), None) for v in own] + [(i + 1, str(v), None) for i, v in
                                                    enumerate(others)]  # fmt: skip
    g, owners, _, _ = market(holdings, 1 + len(others), amount=amount, cap=cap, per="party")
    allocation = allocate(g.facts())
    assert sum(allocation.amounts.values()) == amount
    for owner in owners:
        assert allocation.amount_of(owner) <= cap * amount + 1


def test_per_party_clipping_makes_splitting_off_harmful_records_worthless() -> None:
    whole = [(0, "0.2", None), (1, "0.2", None)]
    split = [(0, "0.3", None), (0, "-0.1", None), (1, "0.2", None)]
    g, owners, _, _ = market(split, 2)  # per input: the harmful part is clipped away, a gain
    assert allocate(g.facts()).amount_of(owners[0]) == 60_000
    for holdings in (whole, split):
        g, owners, _, _ = market(holdings, 2, per="party")
        assert allocate(g.facts()).amount_of(owners[0]) == 50_000


def test_a_party_worth_less_than_nothing_is_clipped_and_told_why() -> None:
    g, owners, data, model = market([(0, "0.3", "0.01"), (1, "0.1", None), (1, "-0.2", "0.05")],
                                    2, per="party")  # fmt: skip
    allocation = allocate(g.facts())
    assert allocation.amounts == {owners[0]: 100_000}
    clipped = allocation.adjustments_of(owners[1])
    assert [(a.asset, a.kind, a.amount_minor) for a in clipped] == [
        (d, "clipped", 0) for d in sorted(data[1:])
    ]
    assert clipped[0].value == Fraction(-1, 10)
    assert clipped[0].stderr == Fraction(5, 100)
    assert "below zero" in clipped[0].why
    assert g.facts().policies[model].entry in clipped[0].entries


# ------------------------------------------------------------------- floors


def test_a_floor_is_not_paid_to_junk_valued_within_its_error() -> None:
    hospitals = [(0, "0.3", "0.01"), (1, "0.2", "0.01"), (2, "0.02", "0.005")]
    junk = [(3, "0.0001", "0.02")] * 40  # 40 random-feature records, each its own input
    g, owners, _, _ = market([*hospitals, (3, "0.004", "0.02")], 4, floor=Fraction(1, 10))
    assert percent(allocate(g.facts()), owners[3]) == 10  # the old rules pay it the floor
    g, owners, _, _ = market(hospitals + junk, 4, floor=Fraction(1, 10), per="party")
    allocation = allocate(g.facts())
    # 40 x 0.0001 = 0.004 +- sqrt(40) x 0.02 = 0.126: within twice its error, no floor;
    # it keeps its plain proportional share (0.004 / 0.504 of what the floor leaves)
    assert percent(allocation, owners[3]) < 1
    assert {a.kind for a in allocation.adjustments_of(owners[3])} == {"no-floor"}
    assert percent(allocation, owners[2]) == 10  # 0.02 +- 0.005 is evidence: floored
    assert {a.kind for a in allocation.adjustments_of(owners[2])} == {"floored"}
    g, owners, _, _ = market([*hospitals, (3, "0.004", "0.02")], 4, floor=Fraction(1, 10),
                             per="input")  # fmt: skip
    allocation = allocate(g.facts())
    assert percent(allocation, owners[3]) < 1
    [no_floor] = allocation.adjustments_of(owners[3])
    assert (no_floor.kind, no_floor.before_minor) == ("no-floor", 10_000)


def test_a_floor_needs_no_error_bar_for_equal_or_volume_weights() -> None:
    g = Graph()
    owners = [g.party() for _ in range(3)]
    data = [g.asset("dataset", size=s, author=o) for s, o in zip((98, 1, 1), owners, strict=True)]
    model = g.asset("model")
    g.run(data, [model])
    g.policy(model, pool="1", roles={"data": "1"}, weighting={"data": "volume"},
             floor=Fraction(1, 10), per="party")  # fmt: skip
    g.revenue(model, 1_000)
    allocation = allocate(g.facts())
    assert [allocation.amount_of(o) for o in owners] == [800, 100, 100]


# -------------------------------------------------------------------- shift


def test_shift_is_gamed_by_a_poisoned_sybil_and_refused_for_new_policies() -> None:
    hospitals = [(0, "0.3", None), (1, "0.2", None), (2, "0.1", None), (3, "0.03", None)]
    poisoned = [(4, "-0.5", None)]  # a harmful cohort registered by a sybil of the noisy one
    g, owners, _, _ = market(hospitals, 5, negative_values="clip")
    clip = percent(allocate(g.facts()), owners[3])
    assert round(clip, 1) == Fraction(48, 10)  # 0.03 / 0.63
    g, owners, _, _ = market(hospitals + poisoned, 5, negative_values="shift")
    shifted = percent(allocate(g.facts()), owners[3])
    assert shifted > 4 * clip  # the old rule: 0.53 / 2.63, about 20 %
    for per in ("input", "party"):
        g, owners, _, _ = market(hospitals + poisoned, 5, per=per)
        assert percent(allocate(g.facts()), owners[3]) <= clip
    body = PolicySet(Digest.of_bytes(b"m"), PartyId.new(), Fraction(1), {"data": Fraction(1)},
                     {"data": "valuation"}, negative_values="shift")  # fmt: skip
    assert PolicySet.from_body(body.to_body()) == body  # an old body with shift still reads
    with pytest.raises(PolicyError, match="shift") as refused:
        PolicySet.from_body({**body.to_body(), "per": "party"})
    assert refused.value.hint is not None
    assert "clip" in refused.value.hint


def test_bad_robust_options_are_refused_with_hints() -> None:
    body = PolicySet(Digest.of_bytes(b"m"), PartyId.new(), Fraction(1), {"data": Fraction(1)},
                     {"data": "valuation"}, per="party")  # fmt: skip
    assert PolicySet.from_body(body.to_body()) == body
    for change, message in (
        ({"per": "asset"}, "per must be"),
        ({"floor": "1/2", "cap": "1/5"}, "above cap"),
    ):
        with pytest.raises(PolicyError, match=message) as refused:
            PolicySet.from_body({**body.to_body(), **change})
        assert refused.value.hint


# ----------------------------------------------------------------- overlaps


def copied(
    weighting: str = "valuation", **options: Any
) -> tuple[Graph, list[PartyId], list[Digest]]:
    """P0 registered `first`; P1 registered `copy` later, half of whose records are first's;
    P2 registered `other`. The model learned from `copy` and `other` only."""
    g = Graph()
    owners = [g.party() for _ in range(3)]
    first = g.asset("dataset", size=100, author=owners[0])
    copy = g.asset("dataset", size=100, author=owners[1])
    other = g.asset("dataset", size=100, author=owners[2])
    model = g.asset("model")
    g.run([copy, other], [model])
    g.valuation(model, {copy: "0.4", other: "0.4"}, {copy: "0.01", other: "0.01"},
                options.pop("parameters", None))  # fmt: skip
    g.overlap(copy, first, 50, 100)
    g.policy(model, pool="1", roles={"data": "1"}, weighting={"data": weighting}, **options)
    g.revenue(model, 10_000)
    return g, owners, [first, copy, other]


@pytest.mark.parametrize("weighting", ["valuation", "volume", "equal"])
def test_copied_records_are_credited_to_the_earliest_registrant(weighting: str) -> None:
    g, owners, (_, copy, _) = copied(weighting, per="party")
    allocation = allocate(g.facts())
    assert [allocation.amount_of(o) for o in owners] == [2_500, 2_500, 5_000]
    [line] = allocation.lines_of(owners[0])
    overlap = next(f for f in g.facts().overlaps[copy])
    assert ("overlap", str(copy), overlap.entry) in [(h.what, h.ref, h.entry) for h in line.trace]
    assert any("copies of earlier" in note for note in allocation.notes)
    [discount] = allocation.adjustments_of(owners[1])
    assert (discount.kind, discount.amount_minor, discount.before_minor) == (
        "discounted",
        2_500,
        5_000,
    )
    assert overlap.entry in discount.entries


def test_an_overlap_already_removed_by_the_valuation_or_under_an_old_policy_is_not_credited() -> (
    None
):
    g, owners, _ = copied(per="party", parameters={"deduplicated": "true"})
    assert [allocate(g.facts()).amount_of(o) for o in owners] == [0, 5_000, 5_000]
    g, owners, _ = copied()  # no `per`: the rules it was written under
    assert [allocate(g.facts()).amount_of(o) for o in owners] == [0, 5_000, 5_000]


def test_an_earlier_input_gains_the_copied_weight_on_top_of_its_own() -> None:
    g = Graph()
    owners = [g.party() for _ in range(2)]
    first = g.asset("dataset", author=owners[0])
    copy = g.asset("dataset", author=owners[1])
    model = g.asset("model")
    g.run([first, copy], [model])
    g.valuation(model, {first: "0.3", copy: "0.3"})
    g.overlap(copy, first, 1, 1)  # a full copy
    g.policy(model, pool="1", roles={"data": "1"}, per="party")
    g.revenue(model, 999)
    assert allocate(g.facts()).amounts == {owners[0]: 999}


def test_an_overlap_with_an_asset_registered_later_is_not_credited() -> None:
    g = Graph()
    owners = [g.party() for _ in range(2)]
    first = g.asset("dataset", author=owners[0])
    later = g.asset("dataset", author=owners[1])
    model = g.asset("model")
    g.run([first], [model])
    g.valuation(model, {first: "0.3"})
    g.overlap(first, later, 1, 1)  # claims the earlier asset copies the later one
    g.policy(model, pool="1", roles={"data": "1"}, per="party")
    g.revenue(model, 999)
    allocation = allocate(g.facts())
    assert allocation.amounts == {owners[0]: 999}
    assert allocation.adjustments == []


# --------------------------------------------------------- through a workspace


class Market:
    """A lab's model trained on three hospitals' data; `Copier` holds a later copy of half
    of Hospital A's records (an `overlap.detected` entry says so)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lab = ws.register_party("Lab", roles=("operator",))
        self.a, self.b, self.noisy, self.copier = (
            ws.register_party(name) for name in ("Hospital A", "Hospital B", "Noisy", "Copier")
        )
        self.data_a = ws.register_asset(b"a" * 100, asset_kind="dataset", name="A", by=self.a)
        self.data_b = ws.register_asset(b"b" * 100, asset_kind="dataset", name="B", by=self.b)
        self.data_n = ws.register_asset(b"n" * 100, asset_kind="dataset", name="N", by=self.noisy)
        self.copy = ws.register_asset(b"c" * 100, asset_kind="dataset", name="C", by=self.copier)
        ws.ledger.append(OverlapDetected(self.copy, self.data_a, 50, 100, "exact"),
                         author=self.copier)  # fmt: skip
        with ws.run("train", operator=self.lab) as run:
            for data in (self.data_b, self.data_n, self.copy):
                run.use(data)
            self.model = ws.register_asset(b"weights", asset_kind="model", name="M", by=self.lab)
            run.produce(self.model)
        ws.record_valuation(
            self.model,
            {self.data_b: "0.2", self.data_n: "-0.05", self.copy: "0.4"},
            stderr={self.data_b: "0.01", self.data_n: "0.02", self.copy: "0.01"},
            method="tmc-shapley",
            evaluations=400,
            by=self.lab,
        )


@pytest.fixture
def market_ws(tmp_path: Path) -> Iterator[Market]:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        yield Market(ws)


def test_statements_say_why_a_party_was_clipped_or_discounted_and_prove_it(
    market_ws: Market,
) -> None:
    m, ws = market_ws, market_ws.ws
    ws.set_policy(m.model, pool="1/2", roles={"data": "1"}, by=m.lab)  # per party: the default
    revenue = ws.record_revenue(m.model, "100.00", "EUR", period="2026-01", source="x", by=m.lab)
    allocation = ws.share(revenue).allocation
    # copy 0.4 -> 0.2 for Copier and 0.2 credited to A (which the model never read); B 0.2
    assert allocation.amounts == {m.lab: 5_000, m.a: 1_667, m.b: 1_667, m.copier: 1_666}
    ws.verify()  # the log replays: the overlap entry is among the allocation's inputs
    statement = ws.statement(m.noisy, "2026-Q1")
    assert statement.totals == {}
    [item] = statement.items
    assert item.amount_minor == 0
    [clipped] = item.adjustments
    assert (clipped.kind, clipped.value, clipped.stderr) == ("clipped", Fraction(-5, 100),
                                                             Fraction(2, 100))  # fmt: skip
    [row] = list(csv.DictReader(io.StringIO(statement.to_csv())))
    assert (row["amount_minor"], row["reason"], row["asset_name"]) == (
        "0",
        "adjusted (clipped)",
        "N",
    )
    assert "value -0.05 ± 0.02" in row["trace"]
    [said] = statement.to_json()["items"][0]["adjustments"]
    assert (said["value"], said["stderr"], said["model_name"]) == ("-0.05", "0.02", "M")
    proof = json.loads(json.dumps(ws.statement_proof(m.noisy, "2026-Q1")))
    verified = verify_statement(proof, trusted_key=str(ws.verifier))
    assert verified.totals == {}
    assert [a.kind for a in verified.adjustments] == ["clipped"]
    assert set(clipped.entries) <= {e for e, _ in _hashes(proof)}

    statement = ws.statement(m.copier, "2026-Q1")
    [discounted] = statement.items[0].adjustments
    assert (discounted.kind, discounted.amount_minor) == ("discounted", 1_666)
    proof = json.loads(json.dumps(ws.statement_proof(m.copier, "2026-Q1")))
    assert [a.kind for a in verify_statement(proof).adjustments] == ["discounted"]
    assert discounted.entries[-1] in {e for e, kind in _hashes(proof) if kind == "overlap.detected"}
    proof = json.loads(json.dumps(ws.statement_proof(m.a, "2026-Q1")))
    assert verify_statement(proof).totals == {"EUR": 1_667}
    [line] = ws.statement(m.a, "2026-Q1").items[0].lines
    assert "overlap" in [hop.what for hop in line.trace]


def _hashes(proof: dict[str, Any]) -> list[tuple[str, str]]:
    """(leaf hash, kind) of every entry a statement file holds."""
    found = []
    for blob in proof["entries"].values():
        entry = parse_entry(base64.b64decode(blob))
        found.append((entry.leaf_hash.hex(), entry.kind))
    return found


def test_bad_robust_policies_are_refused_and_nothing_is_written(market_ws: Market) -> None:
    m, ws = market_ws, market_ws.ws
    size = ws.store.tree_size()
    for options, message in (
        ({"negative_values": "shift"}, "shift"),
        ({"floor": "1/4", "cap": "1/5"}, "above cap"),
        ({"per": "asset"}, "per must be"),
    ):
        with pytest.raises(PolicyError, match=message) as refused:
            ws.set_policy(m.model, pool="1/2", roles={"data": "1"}, by=m.lab, **options)
        assert refused.value.hint
    assert ws.store.tree_size() == size
