"""Issue 16's scene: five hospitals' cohorts, a model trained on them, and the gaming attacks.

Cohorts of 100/80/70/60/55 records (the last with 30 % flipped labels), 170 held-out
test records; policy: pool 1, data weighted by valuation, negatives clipped. The attacker
is the 70-record hospital. Each attack trains a fresh model on the honest cohorts plus
what the attack registers (new parties where it uses sybils), values its inputs with
`ws.value_inputs` (the default, robust method), earns 1,000,000.00 EUR and shares it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification

from quotepart.ids import Digest, PartyId
from quotepart.provenance.overlap import OverlapWarning
from quotepart.sharing.valuing import InputValues
from quotepart.workspace import Workspace

SIZES = (100, 80, 70, 60, 55)
NAMES = ("St Mary's", "Northgate", "Riverside", "Hillcrest", "Eastport")
ATTACKER = 2
REVENUE_MINOR = 100_000_000


def dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The demo's data, or a second, generated one (no download)."""
    if name == "breast-cancer":
        return load_breast_cancer(return_X_y=True)
    x, y = make_classification(
        n_samples=600, n_features=10, n_informative=5, n_redundant=2,
        flip_y=0.03, class_sep=1.0, random_state=3,
    )  # fmt: skip
    return x, y


Pair = tuple[np.ndarray, np.ndarray]


def cohorts(name: str) -> tuple[np.ndarray, Pair, list[Pair]]:
    """The dataset's features, the 170 test records and the five hospitals' cohorts (in
    `SIZES`, the last with 30 % of its labels flipped), drawn with seed 7."""
    features, labels = dataset(name)
    rng = np.random.default_rng(7)
    order = rng.permutation(len(labels))
    test = (features[order[:170]], labels[order[:170]])
    found: list[Pair] = []
    start = 170
    for number, size in enumerate(SIZES):
        rows = order[start : start + size]
        start += size
        x, y = features[rows], labels[rows].copy()
        if number == len(SIZES) - 1:
            flipped = rng.random(size) < 0.3
            y[flipped] = 1 - y[flipped]
        found.append((x, y))
    return features, test, found


@dataclass
class Input:
    party: PartyId
    asset: Digest
    data: Pair


class Scene:
    """The honest scene on `ws`; `earnings(extra, without=...)` runs one attack."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.ws = ws
        self.features, self.test, honest = cohorts(name)
        self.lab = ws.register_party("Lab", roles=("operator",))
        self.cohorts: list[Input] = []
        for data, party_name in zip(honest, NAMES, strict=True):
            party = ws.register_party(party_name)
            self.cohorts.append(self.register(party, data, f"{party_name} cohort"))
        self.models = count()
        self.valued: InputValues | None = None  # the last earnings' valuation

    def register(self, party: PartyId, data: Pair, name: str) -> Input:
        with warnings.catch_warnings():
            # The attacks register copies on purpose: the warning they raise is tested in
            # tests/provenance/test_overlap.py; here what matters is what the copy earns.
            warnings.simplefilter("ignore", OverlapWarning)
            asset = self.ws.register_data(data, name=name, by=party, asset_kind="cohort")
        self.ws.contribute(asset, {party: 1}, role="data", by=party)
        return Input(party, asset, data)

    def sybil(self, name: str) -> PartyId:
        return self.ws.register_party(name)

    def earnings(
        self, extra: list[Input], *, without: tuple[int, ...] = (), **options: object
    ) -> dict[PartyId, int]:
        """Amounts per party when a model is trained on the honest cohorts (less those
        numbered in `without`) plus `extra`, valued with `value_inputs(**options)`."""
        ws = self.ws
        inputs = [c for n, c in enumerate(self.cohorts) if n not in without] + extra
        with ws.run("train", operator=self.lab) as run:
            for item in inputs:
                run.use(item.asset)
            model = ws.register_asset(
                f"weights {next(self.models)}".encode(), asset_kind="model", name="M", by=self.lab
            )
            run.produce(model)
        ws.set_policy(
            model, pool=1, roles={"data": 1}, weighting="valuation", negative_values="clip",
            by=self.lab,
        )  # fmt: skip
        self.valued = ws.value_inputs(
            model,
            {i.asset: i.data for i in inputs},
            self.test,
            by=self.lab,
            **options,  # type: ignore[arg-type]
        )
        revenue = ws.record_revenue(
            model, REVENUE_MINOR, "EUR", period="2026-Q1", source="licence", by=self.lab
        )
        return dict(ws.share(revenue).allocation.amounts)


def jitter(rng: np.random.Generator, x: np.ndarray, relative: float = 0.002) -> np.ndarray:
    """The demo's Westfield jitter: each value times 1 + N(0, 0.2 %)."""
    return x * (1 + rng.normal(0, relative, size=x.shape))


def random_records(rng: np.random.Generator, features: np.ndarray, size: int, labels: str) -> Pair:
    """`size` records with features uniform in the data's range; random or majority labels."""
    x = rng.uniform(features.min(axis=0), features.max(axis=0), size=(size, features.shape[1]))
    y = rng.integers(0, 2, size) if labels == "random" else np.ones(size, dtype=np.int64)
    return x, y


Attack = Callable[[Scene], tuple[dict[PartyId, int], set[PartyId]]]
