"""Record-level identity: the record index, and overlaps flagged at registration."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

from quotepart.errors import InputError, RightsError
from quotepart.ids import Digest
from quotepart.log.kinds import OverlapDetected
from quotepart.log.merkle import leaf_hash
from quotepart.provenance.digest import (
    PackedRecords,
    merkle_root_and_leaves,
    merkle_root_packed,
)
from quotepart.provenance.overlap import (
    IndexedSet,
    OverlapWarning,
    record_keys,
    set_root,
)
from quotepart.provenance.tables import encode_table
from quotepart.workspace import Workspace

Table = tuple[np.ndarray, np.ndarray]


@pytest.fixture
def wine() -> Table:
    features, target = load_wine(return_X_y=True)
    return features, target


def jitter(features: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return features * (1 + rng.normal(0, 0.002, features.shape))


def shuffled(table: Table, seed: int = 0) -> Table:
    order = np.random.default_rng(seed).permutation(len(table[0]))
    return table[0][order], table[1][order]


@pytest.fixture
def caught() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always", OverlapWarning)
        yield found


def overlap_warnings(found: list[warnings.WarningMessage]) -> list[OverlapWarning]:
    return [w.message for w in found if isinstance(w.message, OverlapWarning)]


# ----------------------------------------------------------------- keys and identity


def test_leaf_hashes_come_with_the_root_whichever_path_hashes() -> None:
    records = [f"record {i}".encode() * (1 + i % 3) for i in range(5000)]
    packed = PackedRecords.from_records(records)
    expected = b"".join(leaf_hash(r) for r in records)
    for workers, above in ((1, 10**9), (2, 100)):
        root, leaves = merkle_root_and_leaves(packed, workers=workers, parallel_above=above)
        assert root == merkle_root_packed(packed, workers=1)
        assert leaves == expected


@pytest.mark.parametrize("load", [load_breast_cancer, load_wine, load_digits, load_diabetes])
def test_set_root_is_the_same_under_any_order(load: object) -> None:
    features, target = load(return_X_y=True)  # type: ignore[operator]
    tables = [(features, target), shuffled((features, target), 3)]
    roots = []
    for table in tables:
        _, leaves = merkle_root_and_leaves(encode_table(table).records, workers=1)
        roots.append(set_root(np.frombuffer(leaves, dtype=np.uint8).reshape(-1, 32)))
    assert roots[0] == roots[1]
    assert merkle_root_packed(encode_table(tables[0]).records) != merkle_root_packed(
        encode_table(tables[1]).records
    )


def test_index_blobs_round_trip(wine: Table) -> None:
    encoded = encode_table(wine)
    _, leaves = merkle_root_and_leaves(encoded.records)
    indexed = IndexedSet.of("sha256:" + "a" * 64, record_keys(leaves, encoded.numeric))
    back = IndexedSet.from_parts(
        indexed.asset,
        indexed.set_root,
        indexed.records,
        indexed.fields,
        indexed.tolerance,
        indexed.parts(50),
    )
    assert (back.exact == indexed.exact).all()
    assert (back.near == indexed.near).all()


# ------------------------------------------------------------- flagged at registration


def test_a_reordered_copy_is_flagged_exactly_with_the_first_registrant(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    a, b = ws.register_party("Hillside"), ws.register_party("Copier")
    first = ws.register_data(wine, name="wine", by=a)
    copy = ws.register_data(shuffled(wine), name="wine again", by=b)
    assert isinstance(copy, Digest)
    assert copy != first
    [warning] = overlap_warnings(caught)
    assert warning.earlier == str(first)
    assert warning.registrant == str(a)
    assert (warning.records, warning.of) == (178, 178)
    assert "Hillside" in str(warning)
    assert "178 of 178" in str(warning)
    [found] = ws.overlaps(copy)
    assert (found.earlier, found.match, found.shared) == (first, "exact", Fraction(1))
    assert ws.overlaps(first) == [found]  # both directions
    set_a, set_b = ws.record_set(first), ws.record_set(copy)
    assert set_a is not None
    assert set_b is not None
    assert set_a.set_root == set_b.set_root
    entry = ws.entry_at(found.leaf_index)
    assert entry.author == b
    assert entry.body_as(OverlapDetected).earlier == first


def test_a_jittered_copy_is_flagged_as_near_duplicates(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    a, b = ws.register_party("A"), ws.register_party("B")
    first = ws.register_data(wine, name="wine", by=a)
    features, target = shuffled(wine)
    ws.register_data((jitter(features), target), name="jittered", by=b)
    [found] = ws.overlaps()
    assert found.earlier == first
    assert found.match == "near"
    assert found.tolerance == "0.05"
    assert found.shared >= Fraction(95, 100)


def test_a_hundred_copied_records_are_flagged(
    ws: Workspace, caught: list[warnings.WarningMessage]
) -> None:
    features, target = load_digits(return_X_y=True)
    a, b = ws.register_party("A"), ws.register_party("B")
    first = ws.register_data((features[:800], target[:800]), name="digits A", by=a)
    rng = np.random.default_rng(0)
    copied = rng.choice(800, 100, replace=False)
    rows = np.concatenate([copied, np.arange(800, 1700)])
    ws.register_data((features[rows], target[rows]), name="digits B", by=b)
    [found] = ws.overlaps()
    assert found.earlier == first
    assert found.records >= 100
    assert found.of == 1000
    assert found.match == "exact"


def test_honest_disjoint_cohorts_are_not_flagged(
    ws: Workspace, caught: list[warnings.WarningMessage]
) -> None:
    for load in (load_breast_cancer, load_diabetes, load_wine):
        features, target = load(return_X_y=True)
        half = len(features) // 2
        a, b = ws.register_party(f"{load.__name__} A"), ws.register_party(f"{load.__name__} B")
        ws.register_data((features[:half], target[:half]), name=f"{load.__name__} A", by=a)
        ws.register_data((features[half:], target[half:]), name=f"{load.__name__} B", by=b)
    assert ws.overlaps() == []
    assert overlap_warnings(caught) == []


def test_text_columns_match_exactly_and_on_their_numbers(
    ws: Workspace, caught: list[warnings.WarningMessage]
) -> None:
    frame = pd.DataFrame(
        {
            "site": [f"clinic {i % 7}" for i in range(300)],
            "age": np.arange(300) % 90 + 10,
            "weight": np.linspace(40.0, 120.0, 300),
        }
    )
    a, b, c = (ws.register_party(n) for n in ("A", "B", "C"))
    first = ws.register_data(frame, name="visits", by=a)
    ws.register_data(frame.sample(frac=1, random_state=0), name="reordered", by=b)
    near = frame.assign(weight=frame.weight * 1.001, site=frame.site.str.upper())
    ws.register_data(near, name="renamed sites", by=c)
    exact, nearly = ws.overlaps()
    assert (exact.match, exact.records, exact.earlier) == ("exact", 300, first)
    assert (nearly.match, nearly.earlier) == ("near", first)  # text ignored by near keys
    assert nearly.records == 300


def test_a_party_reregistering_its_own_data_reordered_is_flagged(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    a = ws.register_party("A")
    first = ws.register_data(wine, name="wine", by=a)
    assert ws.register_data(wine, name="wine", by=a) == first  # the same bytes: no new entry
    again = ws.register_data(shuffled(wine), name="wine reordered", by=a)
    [found] = ws.overlaps()
    assert (found.asset, found.earlier, found.match) == (again, first, "exact")


def test_a_chain_of_copies_credits_the_earliest_registrant(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    a, b, c = (ws.register_party(n) for n in ("A", "B", "C"))
    first = ws.register_data(wine, name="original", by=a)
    second = ws.register_data(shuffled(wine, 1), name="copy", by=b)
    third = ws.register_data(shuffled(wine, 2), name="copy of the copy", by=c)
    of_third = [o for o in ws.overlaps(third) if o.asset == third]
    assert [(o.earlier, o.records) for o in of_third] == [(first, 178)]  # never B
    assert [w.registrant for w in overlap_warnings(caught)] == [str(a), str(a)]
    assert {o.asset for o in ws.overlaps(first)} == {second, third}


def test_rebuild_keeps_the_index_and_verify_passes(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    a, b = ws.register_party("A"), ws.register_party("B")
    first = ws.register_data(wine, name="wine", by=a)
    ws.store.rebuild()
    assert ws.record_set(first) is not None
    ws.register_data(shuffled(wine), name="copy", by=b)
    assert len(ws.overlaps()) == 1
    ws.verify()


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("tolerance", [0.0, -0.1, 1.5, float("nan"), "0.05", True])
def test_a_tolerance_out_of_range_writes_nothing(
    ws: Workspace, wine: Table, tolerance: object
) -> None:
    a = ws.register_party("A")
    size = ws.store.tree_size()
    with pytest.raises(InputError) as refusal:
        ws.register_data(wine, name="wine", by=a, tolerance=tolerance)  # type: ignore[arg-type]
    assert refusal.value.hint
    assert ws.store.tree_size() == size
    assert ws.assets() == []


def test_only_the_later_assets_registrant_may_flag_it(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    a, b, other = (ws.register_party(n) for n in ("A", "B", "Other"))
    first = ws.register_data(wine[0][:80], name="first", by=a)
    later = ws.register_data(wine[0][80:], name="later", by=b)
    size = ws.store.tree_size()
    with pytest.raises(RightsError) as refusal:
        ws.ledger.append(OverlapDetected(later, first, 10, 98, "exact"), author=other)
    assert refusal.value.hint
    assert "did not register" in str(refusal.value)
    with pytest.raises(InputError):  # the earlier one must be registered first
        ws.ledger.append(OverlapDetected(first, later, 10, 80, "exact"), author=a)
    assert ws.store.tree_size() == size
    ws.ledger.append(OverlapDetected(later, first, 10, 98, "exact"), author=b)
    assert len(ws.overlaps()) == 1


def test_a_copy_within_one_batch_is_flagged_against_the_first_of_the_batch(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    from quotepart.provenance.assets import describe_data

    a = ws.register_party("A")
    one, two = ws.register_many(
        [describe_data(wine, name="one"), describe_data(shuffled(wine), name="two")], by=a
    )
    [found] = ws.overlaps()
    assert (found.asset, found.earlier, found.records) == (two, one, 178)
    assert [w.earlier for w in overlap_warnings(caught)] == [str(one)]


def test_a_declared_derivation_is_not_a_copy(
    ws: Workspace, wine: Table, caught: list[warnings.WarningMessage]
) -> None:
    a, b = ws.register_party("A"), ws.register_party("B")
    dataset = ws.register_data(wine, name="wine", by=a)
    cohort = ws.register_cohort((wine[0][:50], wine[1][:50]), of=dataset, name="first 50", by=b)
    ws.register_data(
        (wine[0][:20], wine[1][:20]), name="first 20", by=b, derived_from=[cohort]
    )  # upstream of its parent too
    assert ws.overlaps() == []
    assert overlap_warnings(caught) == []
