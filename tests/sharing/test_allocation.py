"""The recursive allocation: worked examples with known answers, and its invariants."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import quotepart
from quotepart.allocation.engine import (
    CAPPED_REST,
    INPUT_RANK,
    POOL,
    REGISTRANT_KEY,
    RETAINED,
    UPSTREAM_RANK,
    SplitKey,
)
from quotepart.errors import LineageCycleError, PolicyError
from quotepart.ids import Digest, PartyId
from quotepart.sharing import Allocation, allocate
from tests.sharing.graph import T0, Graph


def worked_example() -> tuple[Graph, dict[str, PartyId]]:
    """docs/sharing.md, example 1: 1,000.00 EUR through a service to a model with four inputs."""
    g = Graph()
    p = {name: g.party() for name in "ABCEFG"}
    d1, d2, d3 = (g.asset("dataset") for _ in range(3))
    labels = g.asset("labelling_batch")
    model = g.asset("model")
    g.run([d1, d2, d3, labels], [model])
    service = g.asset("service", derived_from=(model,))
    g.contribute(d1, p["A"], 1)
    g.contribute(d2, p["B"], "1/2")
    g.contribute(d2, p["C"], "1/2")
    g.contribute(d3, p["E"], 1)
    g.contribute(labels, p["F"], "1/3", "annotation")
    g.contribute(labels, p["G"], "2/3", "annotation")
    g.policy(
        model,
        pool="1/5",
        roles={"data": "3/4", "annotation": "1/4"},
        weighting={"data": "valuation", "annotation": "equal"},
    )
    g.valuation(model, {d1: "0.3", d2: "0.1", d3: "-0.05"})
    g.revenue(service, 100_000)
    return g, p


def test_worked_example_gives_the_hand_computed_amounts() -> None:
    g, p = worked_example()
    allocation = allocate(g.facts())
    assert allocation.amounts == {
        g.operator: 80_000,  # 4/5 retained
        p["A"]: 11_250,  # 15,000 of data x 0.3 / 0.4
        p["B"]: 1_875,  # 3,750 x 1/2
        p["C"]: 1_875,
        p["F"]: 1_667,  # 5,000 x 1/3 = 1,666.67: the leftover unit goes to the largest remainder
        p["G"]: 3_333,
    }
    assert p["E"] not in allocation.amounts  # valued below zero: clipped to exactly zero
    assert any("clipped to zero" in note for note in allocation.notes)
    [line] = allocation.lines_of(p["A"])
    assert [hop.what for hop in line.trace] == [
        "revenue", "service", "model", "policy", "role", "valuation", "run", "dataset", "contribution",
    ]  # fmt: skip
    assert all(hop.entry for hop in line.trace if hop.what not in ("role",))


def test_shift_gives_the_harmful_input_zero_and_the_rest_more() -> None:
    g, p = worked_example()
    model = next(d for d, f in g.facts().assets.items() if f.body.asset_kind == "model")
    g.policy(
        model, pool="1/5", roles={"data": "3/4", "annotation": "1/4"},
        weighting={"data": "valuation", "annotation": "equal"}, negative_values="shift",
    )  # fmt: skip
    allocation = allocate(g.facts())
    # shifted values 0.35, 0.15, 0: data 15,000 -> 10,500 / 4,500 / 0
    assert allocation.amount_of(p["A"]) == 10_500
    assert allocation.amount_of(p["B"]) == allocation.amount_of(p["C"]) == 2_250
    assert allocation.amount_of(p["E"]) == 0


def upstream_chain(mode: str) -> tuple[Graph, list[PartyId]]:
    """Three models, each fine-tuned from the next, each with one dataset of one contributor."""
    g = Graph()
    owners = [g.party() for _ in range(3)]
    models = [g.asset("model") for _ in range(3)]
    for level, model in enumerate(models):
        data = g.asset("dataset")
        g.contribute(data, owners[level], 1)
        inputs = [data] + ([models[level + 1]] if level + 1 < len(models) else [])
        g.run(inputs, [model])
        roles = (
            {"data": "1/2", "upstream_model": "1/2"} if level + 1 < len(models) else {"data": "1"}
        )
        options = (
            {"upstream_mode": "fixed", "upstream_share": Fraction(1, 10)} if mode == "fixed" else {}
        )
        g.policy(model, pool="1/2", roles=roles, weighting=dict.fromkeys(roles, "equal"), **options)
    g.revenue(models[0], 1_000_000)
    return g, owners


def test_dilute_mode_halves_at_every_level() -> None:
    g, owners = upstream_chain("dilute")
    allocation = allocate(g.facts())
    # level 0: pool 500,000 -> data 250,000, upstream 250,000 -> level 1 pool 125,000 -> ...
    assert [allocation.amount_of(o) for o in owners] == [250_000, 62_500, 31_250]


def test_fixed_mode_pays_every_ancestor_the_same_share() -> None:
    g, owners = upstream_chain("fixed")
    allocation = allocate(g.facts())
    # each ancestor gets 1/10 of 1,000,000 and shares half of it with its data contributor
    # (its own upstream part is not passed on: the top pays every ancestor directly)
    assert allocation.amount_of(owners[1]) == allocation.amount_of(owners[2]) == 50_000
    # the top's pool less 2 x 100,000 of royalties, all to data (no upstream role left)
    assert allocation.amount_of(owners[0]) == 300_000


def test_fixed_shares_above_the_pool_are_refused() -> None:
    g, _ = upstream_chain("fixed")
    top = next(f.body.asset for f in g.items if getattr(f.body, "upstream_mode", None))
    g.policy(top, pool="1/10", roles={"data": "1/2", "upstream_model": "1/2"},
             weighting={"data": "equal", "upstream_model": "equal"},
             upstream_mode="fixed", upstream_share=Fraction(1, 10))  # fmt: skip
    with pytest.raises(PolicyError, match="more than its pool"):
        allocate(g.facts())


def test_withdrawn_consent_before_the_run_gets_nothing_and_after_it_counts() -> None:
    g = Graph()
    early, late, stays = g.party(), g.party(), g.party()
    data = g.asset("dataset")
    model = g.asset("model")
    g.contribute(data, early, "1/3")
    g.contribute(data, late, "1/3")
    g.contribute(data, stays, "1/3")
    g.run([data], [model], started=T0 + timedelta(days=30))
    g.consent(early, data, "withdraw", T0 + timedelta(days=1))
    g.consent(late, data, "withdraw", T0 + timedelta(days=60))
    g.policy(model, pool="1", roles={"data": "1"}, weighting={"data": "equal"})
    g.revenue(model, 9_000)
    allocation = allocate(g.facts())
    assert allocation.amount_of(early) == 0
    assert allocation.amount_of(late) == allocation.amount_of(stays) == 4_500


def test_a_lineage_cycle_is_refused_by_name() -> None:
    g = Graph()
    a, b = g.asset("model"), g.asset("model")
    g.run([b], [a])
    g.run([a], [b])
    g.policy(a, pool="1", roles={"upstream_model": "1"}, weighting={"upstream_model": "equal"})
    g.policy(b, pool="1", roles={"upstream_model": "1"}, weighting={"upstream_model": "equal"})
    g.revenue(a, 100)
    with pytest.raises(LineageCycleError, match="loops") as caught:
        allocate(g.facts())
    assert str(a) in caught.value.message
    assert str(b) in caught.value.message


def test_a_missing_valuation_is_refused_unless_the_policy_falls_back() -> None:
    g = Graph()
    owner_1, owner_2 = g.party(), g.party()
    d1, d2, model = g.asset("dataset"), g.asset("dataset"), g.asset("model")
    g.contribute(d1, owner_1, 1)
    g.contribute(d2, owner_2, 1)
    g.run([d1, d2], [model])
    g.policy(model, pool="1", roles={"data": "1"})
    g.revenue(model, 1_000)
    with pytest.raises(PolicyError, match="no recorded valuation"):
        allocate(g.facts())
    g.policy(model, pool="1", roles={"data": "1"}, missing_valuation="declared",
             declared={d1: Fraction(3), d2: Fraction(1)})  # fmt: skip
    allocation = allocate(g.facts())
    assert (allocation.amount_of(owner_1), allocation.amount_of(owner_2)) == (750, 250)
    assert any("declared weights used" in note for note in allocation.notes)


def test_caps_and_floors_bound_each_input() -> None:
    g = Graph()
    owners = [g.party() for _ in range(4)]
    data = [g.asset("dataset") for _ in range(4)]
    model = g.asset("model")
    for owner, d in zip(owners, data, strict=True):
        g.contribute(d, owner, 1)
    g.run(data, [model])
    g.valuation(model, {data[0]: "0.9", data[1]: "0.05", data[2]: "0.05", data[3]: "0"})
    g.policy(model, pool="1", roles={"data": "1"}, floor=Fraction(1, 10), cap=Fraction(1, 2))
    g.revenue(model, 10_000)
    allocation = allocate(g.facts())
    # cap 1/2 for the first; the other half split 0.05:0.05 = 1/4 each (above the floor);
    # the input worth zero stays at zero: a floor never pays a worthless contribution
    assert [allocation.amount_of(o) for o in owners] == [5_000, 2_500, 2_500, 0]


def test_a_cohort_without_contributors_passes_its_part_to_its_dataset() -> None:
    g = Graph()
    hospital = g.party()
    dataset = g.asset("dataset")
    g.contribute(dataset, hospital, 1)
    cohort = g.asset("cohort", derived_from=(dataset,))
    model = g.asset("model")
    g.run([cohort], [model])
    g.policy(model, pool="1/2", roles={"data": "1"}, weighting={"data": "equal"})
    g.revenue(model, 1_001)
    allocation = allocate(g.facts())
    assert allocation.amount_of(hospital) == 500  # 1,001 / 2 rounds to 501 for the operator
    assert allocation.amount_of(g.operator) == 501


# ------------------------------------------------------------------ properties


@st.composite
def lineages(
    draw: st.DrawFn, *, max_depth: int = 50, max_receivers: int = 300
) -> tuple[Graph, dict[str, object]]:
    """A chain of up to 50 models, each using the next and datasets from a shared pool."""
    g = Graph()
    depth = draw(st.integers(1, max_depth))
    pool_size = draw(st.integers(1, 8))
    receivers = [g.party() for _ in range(draw(st.integers(1, max_receivers)))]
    per = draw(st.sampled_from([None, "input", "party"]))  # None: a policy body from before
    holders = [g.operator, *receivers[:3]]
    datasets = [
        g.asset(
            "dataset",
            size=draw(st.integers(1, 10**6)),
            author=draw(st.sampled_from(holders)) if per else None,
        )
        for _ in range(pool_size)
    ]
    if per:  # later datasets copying records of earlier ones
        for later in range(1, pool_size):
            if draw(st.booleans()):
                earlier = draw(st.integers(0, later - 1))
                of = draw(st.integers(1, 100))
                g.overlap(datasets[later], datasets[earlier], draw(st.integers(1, of)), of)
    withdrawn: set[PartyId] = set()
    for dataset in datasets:
        count = draw(st.integers(1, min(5, len(receivers))))
        chosen = draw(
            st.lists(st.sampled_from(receivers), min_size=count, max_size=count, unique=True)
        )
        raw = draw(st.lists(st.integers(1, 100), min_size=len(chosen), max_size=len(chosen)))
        for party, weight in zip(chosen, raw, strict=True):
            g.contribute(dataset, party, Fraction(weight, sum(raw)))
        if draw(st.booleans()) and draw(st.booleans()):
            g.consent(chosen[0], dataset, "withdraw", T0)
            withdrawn.add(chosen[0])
    models = [g.asset("model") for _ in range(depth)]
    for level, model in enumerate(models):
        uses = draw(
            st.lists(st.sampled_from(datasets), min_size=1, max_size=pool_size, unique=True)
        )
        upstream = [models[level + 1]] if level + 1 < depth else []
        g.run(uses + upstream, [model])
        roles = {"data": Fraction(draw(st.integers(1, 9)), 10)}
        if upstream:
            roles["upstream_model"] = 1 - roles["data"]
        else:
            roles["data"] = Fraction(1)
        weighting = {
            r: draw(
                st.sampled_from(
                    ["valuation", "equal", "declared", "volume"][: 4 if r == "data" else 3]
                )
            )
            for r in roles
        }
        values = {d: str(draw(st.integers(-50, 100)) / 100) for d in uses}
        for m in upstream:
            values[m] = str(draw(st.integers(0, 100)) / 100)
        g.valuation(model, values)
        g.policy(
            model,
            pool=str(Fraction(draw(st.integers(0, 20)), 20)),
            roles={r: str(v) for r, v in roles.items()},
            weighting=weighting,
            negative_values=draw(st.sampled_from(["clip"] if per else ["clip", "shift"])),
            floor=Fraction(draw(st.integers(0, 3)), 10),
            cap=Fraction(draw(st.integers(4, 10)), 10),
            per=per,
        )
    currency, exponent = draw(st.sampled_from([("JPY", 0), ("EUR", 2), ("BHD", 3)]))
    amount = draw(st.integers(1, 10 ** (7 + exponent)))
    g.revenue(models[0], amount, currency)
    return g, {"amount": amount, "withdrawn": withdrawn, "receivers": receivers}


def _check_conserved(allocation: Allocation, amount: int) -> None:
    assert sum(allocation.amounts.values()) == amount
    assert sum(line.amount_minor for line in allocation.lines) == amount
    assert all(a > 0 for a in allocation.amounts.values())
    for digest, flow in allocation.flows.items():
        assert flow.received == flow.kept + flow.passed, digest


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lineages())
def test_money_is_conserved_at_every_level(case: tuple[Graph, dict[str, object]]) -> None:
    g, meta = case
    _check_conserved(allocate(g.facts()), int(meta["amount"]))  # type: ignore[call-overload]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lineages(max_depth=10), st.integers(0, 2**32))
def test_the_allocation_does_not_depend_on_the_order_facts_are_read(
    case: tuple[Graph, dict[str, object]], seed: int
) -> None:
    g, _ = case
    first, again, shuffled = (
        allocate(g.facts()),
        allocate(g.facts()),
        allocate(g.facts(shuffle=seed)),
    )
    assert first.amounts == again.amounts == shuffled.amounts
    assert [(line.party, line.amount_minor) for line in first.lines] == [
        (line.party, line.amount_minor) for line in again.lines
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lineages(max_depth=10))
def test_a_contributor_who_withdrew_before_the_run_receives_exactly_zero(
    case: tuple[Graph, dict[str, object]],
) -> None:
    g, meta = case
    allocation = allocate(g.facts())
    for party in meta["withdrawn"]:  # type: ignore[attr-defined]
        contributed_elsewhere = any(
            c.body.party == party
            and not any(k == (party, c.body.asset) for k in g.facts().consents)
            for cs in g.facts().contributions.values()
            for c in cs
        )
        if not contributed_elsewhere:
            assert allocation.amount_of(party) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-100, 1000), min_size=2, max_size=30),
    st.integers(1, 10**9),
    st.sampled_from(["clip", "shift"]),
)
def test_a_higher_valuation_never_receives_less(
    values: list[int], amount: int, negative: str
) -> None:
    g = Graph()
    owners = [g.party() for _ in values]
    data = [g.asset("dataset") for _ in values]
    model = g.asset("model")
    for owner, d in zip(owners, data, strict=True):
        g.contribute(d, owner, 1)
    g.run(data, [model])
    g.valuation(model, {d: str(v) for d, v in zip(data, values, strict=True)})
    g.policy(model, pool="1", roles={"data": "1"}, negative_values=negative)
    g.revenue(model, amount)
    if (negative == "clip" and max(values) <= 0) or (
        negative == "shift" and len(set(values)) == 1 and values[0] <= 0
    ):
        return  # nobody is worth anything: all stays with the operator (tested below)
    allocation = allocate(g.facts())
    paid = [allocation.amount_of(o) for o in owners]
    for i in range(len(values)):
        for j in range(len(values)):
            if values[i] > values[j]:
                assert paid[i] >= paid[j]
            if values[j] <= 0 and negative == "clip":
                assert paid[j] == 0


def test_inputs_all_worth_zero_leave_the_pool_with_the_operator() -> None:
    g = Graph()
    owner = g.party()
    data, model = g.asset("dataset"), g.asset("model")
    g.contribute(data, owner, 1)
    g.run([data], [model])
    g.valuation(model, {data: "-0.2"})
    g.policy(model, pool="1/2", roles={"data": "1"})
    g.revenue(model, 999)
    allocation = allocate(g.facts())
    assert allocation.amounts == {g.operator: 999}
    assert any("weighs zero" in note for note in allocation.notes)


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.integers(0, 2**32))
def test_ten_thousand_receivers_at_depth_fifty(seed: int) -> None:
    import random

    rng = random.Random(seed)
    g = Graph()
    receivers = [g.party() for _ in range(10_000)]
    models = [g.asset("model") for _ in range(50)]
    per_level = 200
    for level, model in enumerate(models):
        datasets = []
        for _ in range(4):
            d = g.asset("dataset")
            group = receivers[(level * per_level) : (level + 1) * per_level][_ * 50 : (_ + 1) * 50]
            for party in group:
                g.contribute(d, party, Fraction(1, len(group)))
            datasets.append(d)
        upstream = [models[level + 1]] if level + 1 < len(models) else []
        g.run(datasets + upstream, [model])
        roles = {"data": "1/2", "upstream_model": "1/2"} if upstream else {"data": "1"}
        g.policy(model, pool="1", roles=roles, weighting=dict.fromkeys(roles, "equal"))
    amount = rng.randrange(10**22, 10**23)  # halved 50 times, it still reaches every receiver
    g.revenue(models[0], amount, "BHD")
    allocation = allocate(g.facts())
    _check_conserved(allocation, amount)
    assert set(allocation.amounts) == set(receivers)


def test_edges_and_payments_at_assets_account_for_every_unit() -> None:
    g, _ = worked_example()
    allocation = allocate(g.facts())
    assert sum(allocation.paid_at().values()) == 100_000
    for digest, flow in allocation.flows.items():
        into = sum(v for (_, to), v in allocation.edges.items() if to == digest)
        out = sum(v for (origin, _), v in allocation.edges.items() if origin == digest)
        paid_here = sum(v for (at, _), v in allocation.paid_at().items() if at == digest)
        assert (into, out, paid_here) == (flow.received, flow.passed, flow.kept)


def test_an_input_assembled_from_other_inputs_of_the_run_is_not_counted_twice() -> None:
    g = Graph()
    a, b = g.party(), g.party()
    cohort_a, cohort_b = g.asset("cohort"), g.asset("cohort")
    g.contribute(cohort_a, a, 1)
    g.contribute(cohort_b, b, 1)
    training = g.asset("dataset", derived_from=(cohort_a, cohort_b))  # what fit() saw
    model = g.asset("model")
    g.run([training, cohort_a, cohort_b], [model])
    g.valuation(model, {cohort_a: "0.3", cohort_b: "0.1"})  # no value for the union: none needed
    g.policy(model, pool="1", roles={"data": "1"})
    g.revenue(model, 4_000)
    allocation = allocate(g.facts())
    assert (allocation.amount_of(a), allocation.amount_of(b)) == (3_000, 1_000)


# ------------------------------------------- invariants that `python -O` cannot switch off

_UNDER_O = """
import sys

try:
    assert False
except AssertionError:
    sys.exit("asserts are on: this must run under python -O")

import quotepart.money as money
import quotepart.allocation.engine as allocation
from quotepart.errors import ConservationError
from tests.sharing.graph import Graph

g = Graph()
ann, bob = g.party(), g.party()
data, model = g.asset("dataset"), g.asset("model")
g.run([data], [model])
g.contribute(data, ann, "1/3")
g.contribute(data, bob, "2/3")
g.policy(model, pool="1/2", roles={"data": "1"}, weighting={"data": "equal"})
g.revenue(model, 1001)
facts = g.facts()
assert allocation.allocate(facts).total_minor == 1001  # stripped, like every assert here
print("intact", sum(allocation.allocate(facts).amounts.values()))

honest_split = money.split_exact
def lossy_split(total, weights):  # an internal function fed parts that do not add up
    parts = honest_split(total, weights)
    first = next(key for key, part in parts.items() if part)
    return {**parts, first: parts[first] - 1}

allocation.split_exact = lossy_split
try:
    allocation.allocate(facts)
except ConservationError as exc:
    print("allocation:", exc)
allocation.split_exact = honest_split

real_floors = money._floors_and_threshold
money._floors_and_threshold = lambda total, weights: ([total + 1, *[0] * (len(weights) - 1)], 0, None)
for split in (lambda: money.split_exact(10, {"a": 1, "b": 1}),
              lambda: money.split_exact_sequence(10, [1, 1])):
    try:
        split()
    except ConservationError as exc:
        print("split:", exc)
"""


def test_a_broken_conservation_raises_under_python_o() -> None:
    """Money conservation is a raise, not an assert: `python -O` keeps it (TigerBeetle's rule)."""
    paths = [str(Path(quotepart.__file__).parents[1]), str(Path(__file__).parents[2])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-O", "-c", _UNDER_O], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "intact 1001"
    assert lines[1].startswith("allocation: the allocation of ")
    assert "pays 997 minor units to 3 parties, but the revenue is 1001 (-4)" in lines[1]
    assert lines[2:] == [
        "split: split_exact of 10 minor units over 2 weights gave parts adding up to 11 (+1)",
        "split: split_exact_sequence of 10 minor units over 2 weights gave parts adding up to 11 (+1)",
    ]


# ------------------------------------------------------------------ the tie-break order


@given(st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=6, unique=True))
def test_split_keys_keep_the_order_the_old_string_keys_had(contents: list[bytes]) -> None:
    """'0 retained' < '1 pool' < '2 <digest>' and '<digest>' < '~operator', as before."""
    digests = [Digest.of_bytes(c) for c in contents]
    model_keys = [RETAINED, POOL, *(SplitKey(UPSTREAM_RANK, str(d)) for d in digests)]
    old_model = ["0 retained", "1 pool", *(f"2 {d}" for d in digests)]
    assert sorted(range(len(model_keys)), key=model_keys.__getitem__) == sorted(
        range(len(old_model)), key=old_model.__getitem__
    )
    role_keys = [*(SplitKey(INPUT_RANK, str(d)) for d in digests), CAPPED_REST]
    old_role = [*(str(d) for d in digests), "~operator"]
    assert sorted(range(len(role_keys)), key=role_keys.__getitem__) == sorted(
        range(len(old_role)), key=old_role.__getitem__
    )


@given(st.binary(min_size=32, max_size=32))
def test_the_registrant_key_sorts_after_every_contribution_entry(leaf: bytes) -> None:
    assert leaf.hex() < REGISTRANT_KEY


def test_a_tied_unit_goes_to_what_the_operator_retains_before_the_pool() -> None:
    g = Graph()
    ann = g.party()
    data, model = g.asset("dataset"), g.asset("model")
    g.run([data], [model])
    g.contribute(data, ann, 1)
    g.policy(model, pool="1/2", roles={"data": "1"}, weighting={"data": "equal"})
    g.revenue(model, 1001)
    assert allocate(g.facts()).amounts == {g.operator: 501, ann: 500}
