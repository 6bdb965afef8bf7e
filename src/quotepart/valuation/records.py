"""Per-record values summed per record set, after the copies are taken out (issue 16).

Cohort Shapley pays a party for *how it cuts* its data: the same 70 records submitted
as 8 sybil cohorts earned +159 % on the demo's data, and a reordered resubmission +63 %.
Values per record, summed per set, do not see the cut: splitting a set leaves every
record's value, hence the party's total, unchanged. Replication is handled before
valuing: a record that an earlier set already holds (the same record, or one within
the near-duplicate tolerance) is dropped from the later set, so a copy is worth nothing
and the copied record's value stays with its first holder.

This module is pure: record identity comes in as key columns (two records are copies
when they agree on any one key column), computed by the caller; the sharing layer
uses `quotepart.provenance.overlap.near_keys` plus an exact-row key.

```python
kept, holders = first_holders([keys_a, keys_b])         # keys: (records × columns) int64
result = value_record_sets([(xa, ya), (xb, yb)], (x_test, y_test), keys=[keys_a, keys_b])
result.values, result.stderr, result.copies
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from quotepart.errors import InputError
from quotepart.valuation.knn import Centre, knn_shapley_sets

NEIGHBOURS_PER_K = 10
"""Default neighbourhood: each test point's game holds its 10·k nearest records."""
REACH = 3.0
"""Default reach: and only those within 3 times the test set's median distance from a
test point to its nearest other test point (features scaled as valued)."""


def test_spacing(x_test: np.ndarray) -> float:
    """The median distance from a test point to its nearest other test point, over the
    points that are not repeated (inf when there are none): the scale of "near" that the
    valuer's test set sets, which no contributor can move."""
    if len(x_test) < 2:
        return float("inf")
    from sklearn.neighbors import NearestNeighbors

    found = NearestNeighbors(n_neighbors=1).fit(x_test).kneighbors()[0][:, 0]
    found = found[found > 0]
    return float(np.median(found)) if found.size else float("inf")


def first_holders(keys: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per set, which records to keep and which set holds each record first.

    Sets are in registration order, earliest first. Two records are copies when they
    share a value in any key column; a record is kept when no earlier record (an
    earlier set's, or an earlier row of its own set) is a copy of it, and its holder is
    then its own set; otherwise its holder is the set of the earliest kept record it
    copies, through chains of copies.

    Raises:
        InputError: the key arrays differ in their number of columns.
    """
    arrays = [np.asarray(k, dtype=np.int64) for k in keys]
    arrays = [a.reshape(len(a), -1) for a in arrays]
    widths = {a.shape[1] for a in arrays}
    if len(widths) > 1:
        raise InputError(
            f"key arrays have different numbers of columns: {sorted(widths)}",
            hint="compute every set's keys the same way (same tolerance, same fields)",
        )
    sizes = [len(a) for a in arrays]
    total = sum(sizes)
    set_of = np.repeat(np.arange(len(arrays)), sizes)
    earliest = np.arange(total)
    if total and widths and widths.pop() > 0:
        stacked = np.vstack(arrays)
        for column in stacked.T:
            _, first, inverse = np.unique(column, return_index=True, return_inverse=True)
            earliest = np.minimum(earliest, first[inverse.ravel()])
        while True:  # follow chains of copies to a record that copies nothing earlier
            deeper = earliest[earliest]
            if np.array_equal(deeper, earliest):
                break
            earliest = deeper
    kept = earliest == np.arange(total)
    holders = set_of[earliest]
    bounds = np.cumsum([0, *sizes])
    return (
        [kept[a:b] for a, b in pairwise(bounds)],
        [holders[a:b] for a, b in pairwise(bounds)],
    )


def count_copies(
    kept: Sequence[np.ndarray], holders: Sequence[np.ndarray]
) -> dict[tuple[int, int], int]:
    """{(set, holder set): records dropped from `set` as copies of what `holder set` holds},
    from `first_holders`' answer (holder == set: repeats within it)."""
    copies: dict[tuple[int, int], int] = {}
    for index, (mask, held) in enumerate(zip(kept, holders, strict=True)):
        for holder, number in zip(*np.unique(held[~mask], return_counts=True), strict=True):
            copies[(index, int(holder))] = int(number)
    return copies


@dataclass(frozen=True)
class RecordSetValues:
    """Values of record sets: the sum of their kept records' KNN-Shapley values.

    `kept[s]` masks the records of set s that were valued; `copies[(s, h)]` counts the
    records dropped from set s as copies of records set h holds (h == s: repeated within
    set s); `records[s]` holds each record's value (0 for dropped ones).
    """

    values: tuple[float, ...]
    stderr: tuple[float, ...]
    kept: tuple[np.ndarray, ...]
    copies: dict[tuple[int, int], int]
    records: tuple[np.ndarray, ...]
    test_points: int
    parameters: dict[str, str] = field(default_factory=dict)


def _pair(data: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(data, tuple) and len(data) == 2):
        raise InputError(
            f"{what} is not an (X, y) pair", hint="pass (features, labels), one row per record"
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise InputError(
            f"{what} has features of type {x.dtype} and shape {x.shape}; per-record values "
            "need a numeric matrix",
            hint="encode the features as numbers first, or value whole sets with "
            "method='shapley' and a model that reads them",
        )
    return x.astype(np.float64), y


def value_record_sets(
    sets: Sequence[tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, np.ndarray],
    *,
    keys: Sequence[np.ndarray] | None = None,
    k: int = 5,
    neighbours: int | None = None,
    centre: Centre = "label-prior",
    standardise: bool = True,
    workers: int | None = None,
    reach: float | None = REACH,
) -> RecordSetValues:
    """KNN-Shapley per record, summed per set, after dropping copies (`first_holders`).

    `sets` are (X, y) pairs in registration order, earliest first; `keys` one key array
    per set (None: no deduplication). `neighbours` defaults to 10·k (each test point
    values its nearest records only: a record nobody is near is worth 0), and `reach`
    cuts each neighbourhood at that many times `test_spacing` (None: no cut), so that
    records far from every test point are null players however few records are near.
    With `standardise`, features are scaled by the test set's mean and spread, so that
    no contributor's records move the metric.

    Raises:
        InputError: non-numeric or mismatched inputs, keys that do not fit the sets, or
            a reach that is not a positive number.
    """
    if reach is not None and (
        isinstance(reach, bool) or not isinstance(reach, int | float) or not reach > 0
    ):
        raise InputError(
            f"reach must be a positive number, got {reach!r}",
            hint=f"reach={REACH} (times the test set's median nearest-neighbour distance), "
            "or None for no cut",
        )
    if not sets:
        raise InputError("there are no record sets to value", hint="pass at least one (X, y)")
    pairs = [_pair(s, f"record set {i}") for i, s in enumerate(sets)]
    x_test, y_test = _pair(test, "the test set")
    if keys is None:
        kept = [np.ones(len(x), dtype=bool) for x, _ in pairs]
        holders = [np.full(len(x), i) for i, (x, _) in enumerate(pairs)]
    else:
        if len(keys) != len(pairs) or any(
            len(key) != len(x) for key, (x, _) in zip(keys, pairs, strict=False)
        ):
            raise InputError(
                "the keys do not match the record sets", hint="pass one key row per record"
            )
        kept, holders = first_holders(keys)
    neighbours = NEIGHBOURS_PER_K * k if neighbours is None else neighbours
    x_all = np.vstack([x[m] for (x, _), m in zip(pairs, kept, strict=True)])
    y_all = np.concatenate([y[m] for (_, y), m in zip(pairs, kept, strict=True)])
    owner = np.concatenate([np.full(int(m.sum()), i) for i, m in enumerate(kept)])
    if len(x_all) == 0:
        raise InputError("no record is left to value", hint="pass non-empty record sets")
    if standardise:
        centre_x, spread = x_test.mean(axis=0), x_test.std(axis=0)
        spread[spread == 0] = 1.0
        x_all, x_test = (x_all - centre_x) / spread, (x_test - centre_x) / spread
    spacing = test_spacing(x_test) if reach is not None else float("inf")
    cut = None if reach is None or not np.isfinite(spacing) else float(reach) * spacing
    found = knn_shapley_sets(
        x_all, y_all, x_test, y_test, owner, k,
        centre=centre, neighbours=neighbours, workers=workers, reach=cut,
    )  # fmt: skip
    count = len(pairs)
    values = np.zeros(count)
    stderr = np.zeros(count)
    present = len(found.sets)  # sets after the last one with a kept record have none
    values[:present], stderr[:present] = found.sets, found.set_stderr
    records = []
    start = 0
    for mask in kept:
        full = np.zeros(len(mask))
        full[mask] = found.records[start : start + int(mask.sum())]
        start += int(mask.sum())
        records.append(full)
    copies = count_copies(kept, holders)
    return RecordSetValues(
        values=tuple(float(v) for v in values),
        stderr=tuple(float(v) for v in stderr),
        kept=tuple(kept),
        copies=copies,
        records=tuple(records),
        test_points=found.test_points,
        parameters={
            "k": str(k),
            "neighbours": str(neighbours),
            "centred": centre,
            "standardised": "test set" if standardise else "no",
            "deduplicated": "false" if keys is None else "true",
            **(
                {"reach": "none"}
                if reach is None
                else {"reach": f"{float(reach)!r} x test spacing", "test_spacing": repr(spacing)}
            ),
        },
    )


__all__ = [
    "NEIGHBOURS_PER_K",
    "REACH",
    "RecordSetValues",
    "count_copies",
    "first_holders",
    "test_spacing",
    "value_record_sets",
]
