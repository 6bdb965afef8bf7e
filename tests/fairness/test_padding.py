"""Padding with 70 random records, over many draws: never a gain where the records are
far from the data, a losing bet where some land among it.

`test_gaming.py` pads once per dataset and label mode (one draw of the records). Here
the same attack is drawn 40 times, valued as `ws.value_inputs` values it (records,
centred, neighbourhoods cut at the default reach; no copies to drop: random records copy
nothing) and shared as the default policy shares it (netted per party, negatives
clipped, pool split by value). Checked against `ws.value_inputs` and `ws.share` on four
draws per dataset: the same figures.

What it shows (`python -m tests.fairness.test_padding` prints the table of
docs/fairness.md). On breast-cancer data, random records lie ≥ 4 times farther from
every test point than real records do; beyond the reach they are null players, and no
draw changes anyone's total. On the generated data (10 dimensions) about a third of
them land within reach of some test point, as close as real records do; those that carry
the right label by chance are, to the valuation, useful records, and nothing in the data
tells them from genuine ones. There padding loses on average but gains in about a third
of the draws, by up to a few per cent. The tests assert: on breast-cancer data no draw
moves the padder's total; on both, the padding's mean value and the padder's mean gain
are at most zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from quotepart.valuation import value_record_sets
from tests.fairness.scene import ATTACKER, cohorts, random_records

DRAWS = 40
LABELS = ("random", "majority")


def shares(values: np.ndarray, parties: np.ndarray) -> np.ndarray:
    """The default policy's split: values netted per party, negatives clipped, normalised."""
    netted = np.clip(np.bincount(parties, weights=values), 0.0, None)
    return netted / netted.sum()


@dataclass(frozen=True)
class Draws:
    """Per draw: the padder's total over its honest total − 1, the padding records' value
    (points of the utility), and the largest rise of an honest party's share."""

    attacker: np.ndarray
    padding: np.ndarray
    anyone: np.ndarray


def pad(name: str, labels: str, draws: int = DRAWS) -> Draws:
    features, test, honest = cohorts(name)
    parties = np.arange(len(honest))
    before = shares(np.array(value_record_sets(honest, test).values), parties)
    others = parties != ATTACKER
    attacker, padding, anyone = [], [], []
    for draw in range(draws):
        junk = random_records(np.random.default_rng(draw), features, 70, labels)
        found = value_record_sets([*honest, junk], test)
        after = shares(np.array(found.values), np.append(parties, ATTACKER))
        attacker.append(after[ATTACKER] / before[ATTACKER] - 1)
        padding.append(found.values[-1])
        anyone.append(float(np.max(after[others] - before[others])))
    return Draws(np.array(attacker), np.array(padding), np.array(anyone))


@pytest.fixture(scope="module", params=["breast-cancer", "generated"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("labels", LABELS)
def test_padding_gains_nothing_on_average(name: str, labels: str) -> None:
    found = pad(name, labels)
    assert found.padding.mean() <= 0.0
    assert found.attacker.mean() <= 0.0


@pytest.mark.parametrize("labels", LABELS)
def test_padding_far_from_the_data_changes_nothing(labels: str) -> None:
    found = pad("breast-cancer", labels)
    assert np.all(found.padding == 0.0)
    assert np.all(found.attacker == 0.0)
    assert np.all(found.anyone == 0.0)


def main() -> None:  # pragma: no cover - prints the table of docs/fairness.md
    print(
        "| data | labels | padder's mean gain (± s.e.) | draws it gains | largest gain "
        "| padding's mean value | largest honest rise (of the revenue) |\n"
        "|---|---|---:|---:|---:|---:|---:|"
    )
    for name in ("breast-cancer", "generated"):
        for labels in LABELS:
            found = pad(name, labels)
            gain = found.attacker
            print(
                f"| {name} | {labels} | {gain.mean():+.2%} ± {gain.std(ddof=1) / np.sqrt(len(gain)):.2%} "
                f"| {np.mean(gain > 0):.0%} | {gain.max():+.2%} | {found.padding.mean():+.2%} "
                f"| {found.anyone.max():+.2%} |"
            )


if __name__ == "__main__":  # pragma: no cover
    main()
