"""The data a model is evaluated with is used, not learned from: it earns nothing unless
the model's policy gives the `evaluation` role a part (issue 13, point 1)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from quotepart.errors import InputError, PolicyError
from quotepart.ids import Digest, PartyId, format_timestamp
from quotepart.log.entry import SIGNING_CONTEXT, parse_entry, signed_message
from quotepart.log.kinds import RunRecorded
from quotepart.workspace import Workspace

RNG = np.random.default_rng(13)
X = RNG.normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


class Growers:
    """A lab fits a model on two growers' data and scores it on its own test set."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lab = ws.register_party("Lab", roles=("operator",))
        self.growers = [ws.register_party(f"Grower {i}") for i in (1, 2)]
        self.cohorts: list[Digest] = []
        for grower, rows in zip(self.growers, (slice(0, 20), slice(20, 40)), strict=True):
            cohort = ws.register_data((X[rows], Y[rows]), name=f"plots of {grower}", by=grower)
            ws.contribute(cohort, {grower: 1}, role="data", by=grower)
            self.cohorts.append(cohort)
        tracked = ws.track(
            LogisticRegression(),
            operator=self.lab,
            name="yield",
            uses=self.cohorts,
            evaluate_on=(X[40:], Y[40:]),
        )
        tracked.fit(X[:40], Y[:40])
        assert tracked.model is not None
        assert tracked.last_run is not None
        self.model = tracked.model
        self.run = ws.run_entry(str(tracked.last_run.id))
        (self.evaluation,) = self.run.used_as("evaluation")

    def share(self, **policy: object) -> dict[PartyId, int]:
        self.ws.set_policy(self.model, by=self.lab, **policy)  # type: ignore[arg-type]
        revenue = self.ws.record_revenue(
            self.model, "300.00", "EUR", period="2026-Q1", source="sales", by=self.lab
        )
        return self.ws.share(revenue).allocation.amounts


def test_the_evaluation_set_is_used_in_its_role_and_the_metric_stays_in_the_card(
    ws: Workspace,
) -> None:
    scene = Growers(ws)
    assert scene.evaluation not in scene.run.inputs
    assert scene.run.uses == {scene.evaluation: "evaluation"}
    card = ws.asset_entry(scene.model)
    assert card is not None
    assert "score" in card.metadata["metrics"]
    edges = {e.relation for e in ws.lineage(scene.model).edges}
    assert "used:evaluation" in edges


def test_equal_weighting_pays_only_what_the_model_was_made_from(ws: Workspace) -> None:
    scene = Growers(ws)
    amounts = scene.share(pool="1/2", roles={"data": "1"}, weighting="equal")
    # 300.00 EUR: the lab keeps 1 - 1/2 = 150.00; the pool of 150.00 goes to the two
    # training cohorts alone (75.00 each), not to three inputs at 50.00 with the lab's
    # evaluation set taking the third.
    assert amounts == {scene.lab: 15_000, scene.growers[0]: 7_500, scene.growers[1]: 7_500}


def test_valuation_weighting_needs_no_value_for_the_evaluation_set(ws: Workspace) -> None:
    scene = Growers(ws)
    ws.record_valuation(
        scene.model,
        {scene.cohorts[0]: "0.3", scene.cohorts[1]: "0.1"},
        method="test",
        evaluations=1,
        by=scene.lab,
    )
    amounts = scene.share(pool="1/2", roles={"data": "1"}, weighting="valuation")
    assert amounts == {scene.lab: 15_000, scene.growers[0]: 11_250, scene.growers[1]: 3_750}


def test_a_missing_valuation_names_the_inputs_and_says_what_to_do(ws: Workspace) -> None:
    scene = Growers(ws)
    with pytest.raises(PolicyError) as raised:
        scene.share(pool="1/2", roles={"data": "1"}, weighting="valuation")
    message = str(raised.value)
    assert f"plots of {scene.growers[0]}" in message
    assert f"plots of {scene.growers[1]}" in message
    assert "evaluation data" not in message
    assert raised.value.hint is not None
    assert "missing_valuation" in raised.value.hint
    assert "record a valuation" in raised.value.hint


def test_an_explicit_evaluation_role_pays_the_evaluation_set(ws: Workspace) -> None:
    scene = Growers(ws)
    grader = ws.register_party("Grader")
    ws.contribute(scene.evaluation, {grader: 1}, role="data", by=scene.lab)
    amounts = scene.share(pool="1/2", roles={"data": "4/5", "evaluation": "1/5"}, weighting="equal")
    # pool 150.00: data 120.00 (60.00 per grower), evaluation 30.00 to its contributor
    assert amounts == {
        scene.lab: 15_000,
        scene.growers[0]: 6_000,
        scene.growers[1]: 6_000,
        grader: 3_000,
    }
    ws.verify()


def test_a_run_refuses_an_unknown_role(ws: Workspace) -> None:
    lab = ws.register_party("Lab")
    data = ws.register_data(b"d", name="d", by=lab)
    made = ws.register_data(b"e", name="e", by=lab)
    with ws.run("x", operator=lab) as run:
        run.produce(made)
        with pytest.raises(InputError, match="unknown role"):
            run.use(data, role="inspiration")


def test_an_old_v1_run_entry_decodes_and_replays_as_learned_from(ws: Workspace) -> None:
    """A v1 run (written before roles) names only inputs: all of them learned from."""
    lab = ws.register_party("Lab", roles=("operator",))
    grower = ws.register_party("Grower")
    data = ws.register_data(b"plots", name="plots", by=grower)
    ws.contribute(data, {grower: 1}, role="data", by=grower)
    checked = ws.register_data(b"held out", name="held out", by=lab)
    model = ws.register_asset(b"model", asset_kind="model", name="m", by=lab)
    current = RunRecorded.from_body(
        {
            "run": "run:01M91FADXCNW4DRV1285MCWFCP",
            "name": "fit m",
            "operator": str(lab),
            "status": "succeeded",
            "started": "2026-01-01T00:00:01.000000Z",
            "ended": "2026-01-01T00:00:02.000000Z",
            "inputs": sorted([str(data), str(checked)]),
            "outputs": [str(model)],
            "parameters": {},
            "code": {},
            "environment": {},
            "uses": {},
        }
    )
    v1_body = current.to_body()
    del v1_body["uses"]
    key = ws.ledger.keys.party_key(lab)
    message = signed_message(
        "run.recorded", 1, format_timestamp(ws.ledger.clock()), lab, v1_body, origin=ws.origin
    )
    unsigned = message[len(SIGNING_CONTEXT) :]
    position = unsigned.rindex(b',"ts":"')
    sig = base64.b64encode(key.sign(message))
    wire = unsigned[:position] + b',"sig":"' + sig + b'"' + unsigned[position:]
    entry = parse_entry(wire)
    assert entry.version == 1
    ws.ledger.append_signed([entry])
    body = ws.run_entry("run:01M91FADXCNW4DRV1285MCWFCP")
    assert body.uses == {}
    assert set(body.inputs) == {data, checked}
    ws.set_policy(model, pool="1/2", roles={"data": "1"}, weighting="equal", by=lab)
    revenue = ws.record_revenue(model, "300.00", "EUR", period="2026-Q1", source="x", by=lab)
    amounts = ws.share(revenue).allocation.amounts
    assert amounts == {lab: 22_500, grower: 7_500}  # as v1 meant: both inputs earn
    ws.verify()
    assert ws.rebuild() > 0
    assert ws.run_entry("run:01M91FADXCNW4DRV1285MCWFCP") == body
