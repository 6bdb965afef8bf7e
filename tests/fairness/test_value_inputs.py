"""`ws.value_inputs`: what it records, the copies it drops, and the inputs it refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from quotepart.errors import InputError, QuotepartError
from quotepart.log.kinds import ValuationRecorded
from quotepart.workspace import Workspace
from tests.fairness.scene import ATTACKER, Scene, jitter


@pytest.fixture
def scene(ws: Workspace) -> Scene:
    return Scene(ws, "generated")


def _model(scene: Scene, inputs: list[Any]) -> Any:
    ws = scene.ws
    with ws.run("train", operator=scene.lab) as run:
        for item in inputs:
            run.use(item.asset)
        model = ws.register_asset(b"weights", asset_kind="model", name="M", by=scene.lab)
        run.produce(model)
    return model


def test_a_jittered_copy_is_dropped_and_credited_to_the_first_holder(scene: Scene) -> None:
    ws = scene.ws
    northgate = scene.cohorts[1]
    x, y = northgate.data
    copy = scene.register(
        scene.sybil("Westfield"), (jitter(np.random.default_rng(0), x[:40]), y[:40]), "copy"
    )
    inputs = [*scene.cohorts, copy]
    model = _model(scene, inputs)
    result = ws.value_inputs(model, {i.asset: i.data for i in inputs}, scene.test, by=scene.lab)
    assert result.values[copy.asset] == 0.0
    [flagged] = [o for o in ws.overlaps() if o.asset == copy.asset]  # and the log says so
    assert (flagged.earlier, flagged.match) == (northgate.asset, "near")
    assert [(c.asset, c.of, c.records) for c in result.copies] == [
        (copy.asset, northgate.asset, 40)
    ]
    entry = ws.entry_at(result.leaf_index)
    body = entry.body_as(ValuationRecorded)
    assert body.method == "knn-shapley/records"
    assert body.parameters["deduplicated"] == "true"
    assert body.parameters["centred"] == "label-prior"
    assert body.parameters["dropped"] == "40 records of 'copy' as copies of 'Northgate cohort'"
    assert set(body.stderr) == set(body.values) == {i.asset for i in inputs}
    # the originator's value is what it is without the copy
    alone = ws.value_inputs(
        model, {i.asset: i.data for i in scene.cohorts}, scene.test, by=scene.lab
    )
    assert result.values[northgate.asset] == pytest.approx(alone.values[northgate.asset])


def test_repeats_within_one_input_count_once(scene: Scene) -> None:
    attacker = scene.cohorts[ATTACKER]
    x, y = attacker.data
    doubled = scene.register(attacker.party, (np.vstack([x, x]), np.concatenate([y, y])), "doubled")
    inputs = [*(c for n, c in enumerate(scene.cohorts) if n != ATTACKER), doubled]
    model = _model(scene, inputs)
    result = scene.ws.value_inputs(
        model, {i.asset: i.data for i in inputs}, scene.test, by=scene.lab
    )
    assert [(c.asset, c.of, c.records) for c in result.copies] == [
        (doubled.asset, doubled.asset, len(y))
    ]
    assert "repeats within it" in result.parameters["dropped"]


def test_shapley_over_deduplicated_inputs(scene: Scene) -> None:
    northgate = scene.cohorts[1]
    x, y = northgate.data
    copy = scene.register(scene.sybil("Copier"), (x[::-1], y[::-1]), "reversed copy")
    inputs = [*scene.cohorts[:3], copy]
    model = _model(scene, inputs)
    result = scene.ws.value_inputs(
        model, {i.asset: i.data for i in inputs}, scene.test, by=scene.lab,
        method="shapley", estimator=LogisticRegression(max_iter=500),
    )  # fmt: skip
    assert result.values[copy.asset] == 0.0
    assert result.method == "shapley/exact/inputs"
    assert result.parameters["deduplicated"] == "true"
    assert result.copies[0].records == len(y)


def _bad_calls(scene: Scene, model: Any, data: dict[Any, Any]) -> dict[str, Callable[[], Any]]:
    ws, test, lab = scene.ws, scene.test, scene.lab
    first = scene.cohorts[0]
    x, y = first.data
    return {
        "tolerance": lambda: ws.value_inputs(model, data, test, by=lab, tolerance=2.0),
        "negative tolerance": lambda: ws.value_inputs(model, data, test, by=lab, tolerance=-1),
        "method": lambda: ws.value_inputs(model, data, test, by=lab, method="cohorts"),
        "copy radius": lambda: ws.value_inputs(model, data, test, by=lab, copy_radius=1.5),
        "k with shapley": lambda: ws.value_inputs(
            model, data, test, by=lab, method="shapley", k=5, estimator=LogisticRegression()
        ),
        "shapley without estimator": lambda: ws.value_inputs(
            model, data, test, by=lab, method="shapley"
        ),
        "estimator with records": lambda: ws.value_inputs(
            model, data, test, by=lab, estimator=LogisticRegression()
        ),
        "centre": lambda: ws.value_inputs(model, data, test, by=lab, centre="median"),
        "neighbours below k": lambda: ws.value_inputs(model, data, test, by=lab, neighbours=2),
        "negative reach": lambda: ws.value_inputs(model, data, test, by=lab, reach=-1.0),
        "reach with shapley": lambda: ws.value_inputs(
            model, data, test, by=lab, method="shapley", reach=3.0, estimator=LogisticRegression()
        ),
        "not the registered data": lambda: ws.value_inputs(
            model, {**data, first.asset: (x[::-1], y[::-1])}, test, by=lab
        ),
        "not a pair": lambda: ws.value_inputs(model, {first.asset: x}, test, by=lab),
        "no inputs": lambda: ws.value_inputs(model, {}, test, by=lab),
    }


BAD = [
    "tolerance",
    "negative tolerance",
    "method",
    "copy radius",
    "k with shapley",
    "shapley without estimator",
    "estimator with records",
    "centre",
    "neighbours below k",
    "negative reach",
    "reach with shapley",
    "not the registered data",
    "not a pair",
    "no inputs",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_refused_with_a_hint_and_writes_nothing(scene: Scene, case: str) -> None:
    model = _model(scene, scene.cohorts)
    data = {c.asset: c.data for c in scene.cohorts}
    size = scene.ws.store.tree_size()
    with pytest.raises(InputError) as caught:
        _bad_calls(scene, model, data)[case]()
    assert caught.value.hint
    assert scene.ws.store.tree_size() == size


def test_the_reach_is_recorded_and_0_turns_it_off(scene: Scene) -> None:
    model = _model(scene, scene.cohorts)
    data = {c.asset: c.data for c in scene.cohorts}
    found = scene.ws.value_inputs(model, data, scene.test, by=scene.lab)
    assert found.parameters["reach"] == "3.0 x test spacing"
    assert float(found.parameters["test_spacing"]) > 0
    uncut = scene.ws.value_inputs(model, data, scene.test, by=scene.lab, reach=0)
    assert uncut.parameters["reach"] == "none"
    assert "test_spacing" not in uncut.parameters


def test_records_refuse_text_features(scene: Scene) -> None:
    ws = scene.ws
    words = np.array([["a", "b"], ["c", "d"], ["e", "f"]])
    labels = np.array([0, 1, 0])
    text = scene.register(scene.cohorts[0].party, (words, labels), "words")
    model = _model(scene, [text])
    size = ws.store.tree_size()
    with pytest.raises(QuotepartError, match="numeric features") as caught:
        ws.value_inputs(model, {text.asset: (words, labels)}, scene.test, by=scene.lab)
    assert "method='shapley'" in (caught.value.hint or "")
    assert ws.store.tree_size() == size


def test_the_copiers_statement_says_why_it_earns_nothing(scene: Scene) -> None:
    """A copy the valuation dropped earns 0, and its registrant's statement has a line of 0
    naming the overlap, with the value and the entries it follows from, checked offline."""
    from quotepart.sharing import verify_statement

    ws = scene.ws
    northgate = scene.cohorts[1]
    x, y = northgate.data
    westfield = scene.sybil("Westfield")
    copy = scene.register(westfield, (jitter(np.random.default_rng(0), x[:40]), y[:40]), "copy")
    amounts = scene.earnings([copy])
    assert amounts.get(westfield, 0) == 0
    [item] = ws.statement(westfield, "2026-Q1").items
    [discount] = item.adjustments
    assert (discount.kind, discount.asset, discount.amount_minor) == ("discounted", copy.asset, 0)
    assert "40 of its 40 records copy earlier registered" in discount.why
    [overlap] = [o for o in ws.overlaps() if o.asset == copy.asset]
    assert ws.entry_at(overlap.leaf_index).leaf_hash.hex() in discount.entries
    checked = verify_statement(
        ws.statement_proof(westfield, "2026-Q1"), trusted_key=str(ws.verifier)
    )
    assert [a.kind for a in checked.adjustments] == ["discounted"]


def test_a_copy_jittered_beyond_the_near_keys_is_found_by_distance(scene: Scene) -> None:
    """2 % jitter escapes most near keys; the distance check still finds the copy, and
    `copy_radius=0` turns it off (the copy then keeps some value)."""
    ws = scene.ws
    northgate = scene.cohorts[1]
    x, y = northgate.data
    rng = np.random.default_rng(5)
    copy = scene.register(scene.sybil("Jitterer"), (jitter(rng, x, 0.02), y), "2 % copy")
    inputs = [*scene.cohorts, copy]
    model = _model(scene, inputs)
    data = {i.asset: i.data for i in inputs}
    found = ws.value_inputs(model, data, scene.test, by=scene.lab)
    assert found.values[copy.asset] == 0.0
    assert found.parameters["copy_radius"] == "0.25"
    assert sum(c.records for c in found.copies if c.asset == copy.asset) == len(y)
    blind = ws.value_inputs(model, data, scene.test, by=scene.lab, copy_radius=0)
    assert sum(c.records for c in blind.copies if c.asset == copy.asset) < len(y)


def test_a_record_with_another_label_is_not_a_copy_however_many_classes() -> None:
    """Labels are matched exactly: with 200 classes, codes 100 and 101 differ by 1 % after
    the near keys' log scale, which quantising them with the features would merge."""
    from quotepart.ids import Digest
    from quotepart.sharing.valuing import Valuing, _Input
    from quotepart.valuation import first_holders

    x = np.random.default_rng(0).normal(size=(200, 4))
    labels = np.arange(200)
    first = _Input(Digest.of_bytes(b"a"), "a", x, labels, np.arange(200, dtype=np.int64))
    relabelled = _Input(
        Digest.of_bytes(b"b"), "b", x, labels + 1, np.arange(200, 400, dtype=np.int64)
    )
    same = _Input(Digest.of_bytes(b"c"), "c", x, labels, np.arange(400, 600, dtype=np.int64))
    kept, _ = first_holders(Valuing._keys([first, relabelled, same], 0.05))
    assert kept[1][:-1].all()  # every relabelled record is new (its last label is new too)
    assert not kept[2].any()  # the same records with the same labels are copies
