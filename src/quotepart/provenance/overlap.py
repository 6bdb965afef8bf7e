"""Record-level identity: which records of a record set another one already holds.

An asset's digest is the Merkle root over its records *in order*, so the same records
reordered, or nudged by a rounding error, look new. Two more identities catch that:

* **exact keys**: each record's RFC 9162 leaf hash (32 bytes, the hash the digest is
  built from). Their sorted Merkle root, `set_root`, is an order-independent identity of
  the record set: reorder the rows and it stays the same.
* **near keys**: `NEAR_GRIDS` locality-sensitive keys per record, over its numeric
  fields, in the spirit of Broder's and Charikar's sketches but per record rather than
  per document (a copy must be found record by record, so that exactly the copied
  records are credited to their first registrant). Each value is mapped to
  t = sign(x)·log(1 + |x|), so a relative change of δ moves it by about δ for |x| ≫ 1
  and an absolute change of δ moves it by δ for |x| ≪ 1; t is then quantised on
  `NEAR_GRIDS` grids of cell width `tolerance`, each shifted by its own random offset
  per field (the offsets come from a fixed seed: keys are comparable across machines and
  versions). A record's key on a grid is a 64-bit hash of its cell. Two records collide
  on a grid with probability Π_j (1 − |Δt_j| / tolerance) (zero once any field moves by
  more than one cell), and are called near-duplicates when they collide on any grid.

With the default tolerance of 0.05 and 8 grids, a record jittered by N(0, 0.2 %)
relative on each of 30 fields, all well above 1, is found with probability
≈ 1 − (1 − 0.968^30)^8 ≈ 0.977 (E|δ| = 0.0016 moves t by 3.2 % of a cell; 0.978
measured on 100,000 such records); fields near or below 1 move t less, so fewer or
smaller fields find it more surely (1.0 measured on the breast-cancer, wine and diabetes
tables, 0.973 on digits' 64 fields). Two records that differ by more than one cell (about
5 %) on any one field never match. Records with text fields are matched on their numeric
fields (integers, floats, booleans; not date-times) only; records with no numeric field
get no near keys (exact keys still apply).

**The index and matching.** At registration the keys are sorted and stored beside the
log (`IndexedSet`; the store's `record_sets` / `record_keys` side tables, which
`rebuild` keeps and `verify` does not compare: they come from the data, not the log).
`find_overlaps` matches a new set against every earlier indexed one, oldest first, and
credits each shared record to the earliest set holding it. Any exact overlap (even one
record) is reported; a near overlap when at least `NEAR_SHARE_THRESHOLD` (1/5) of the
new set's records are near-duplicates. `bench/overlap.py` measures both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from quotepart.errors import InputError, QuotepartWarning

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

NEAR_GRIDS = 8
"""Shifted grids per record: more grids find jittered copies more surely, at 8 bytes each."""
DEFAULT_TOLERANCE = 0.05
"""Cell width in t = sign(x)·log(1 + |x|): about 5 % relative for values well above 1."""
TOLERANCE_RANGE = (1e-6, 1.0)
"""Tolerances outside this range find nothing (too fine) or everything (too coarse)."""
_SEED = 20_240_601
"""Fixes the grid offsets and hash multipliers: near keys must agree across machines."""


NEAR_SHARE_THRESHOLD = Fraction(1, 5)
"""A record set is flagged as a near-copy of an earlier one when at least this fraction of
its records are near-duplicates of the earlier one's (any exact overlap, even of one
record, is flagged). Chosen with `bench/overlap.py`: honest cohorts drawn from the same
distribution share far less than this, and copies of half a cohort or more far more."""


class OverlapWarning(QuotepartWarning):
    """A registered record set holds records an earlier registered one already holds.

    The registration went through (the records are credited to the earlier registrant,
    and an `overlap.detected` entry says so); `asset`, `earlier`, `registrant`, `records`
    and `of` say which, by whom and how many.
    """

    def __init__(
        self, message: str, *, asset: str, earlier: str, registrant: str, records: int, of: int
    ) -> None:
        super().__init__(message)
        self.asset = asset
        self.earlier = earlier
        self.registrant = registrant
        self.records = records
        self.of = of


@dataclass(frozen=True, slots=True)
class RecordKeys:
    """The keys of one record set: `exact` (n × 32 bytes, the RFC 9162 leaf hashes, in
    record order), `near` (n × NEAR_GRIDS int64) over `fields` numeric fields (0: the
    records have no numeric field, and no near keys), at `tolerance`."""

    exact: npt.NDArray[np.uint8]
    near: npt.NDArray[np.int64]
    tolerance: float
    fields: int = 0

    def __len__(self) -> int:
        return int(self.exact.shape[0])


def record_keys(
    leaf_hashes: bytes,
    numeric: Sequence[npt.NDArray[np.generic]],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    near: npt.NDArray[np.int64] | None = None,
) -> RecordKeys:
    """The keys of a record set from its leaf hashes (32 bytes per record, concatenated, as
    `merkle_root_and_leaves` gives them: nothing is hashed again) and its numeric columns
    (one 1-D array per field, as `encode_table` keeps them); `near`, when given, is
    `near_keys_of_columns(numeric, tolerance)` computed already.

    Raises:
        InputError: a tolerance outside its range, or columns of another length.
    """
    import numpy as np

    width = check_tolerance(tolerance)
    exact = np.frombuffer(leaf_hashes, dtype=np.uint8).reshape(-1, 32)
    rows = exact.shape[0]
    if any(len(column) != rows for column in numeric):
        raise InputError(
            f"numeric columns of {sorted({len(c) for c in numeric})} rows for {rows} records",
            hint="pass one value per record in every column",
        )
    if not numeric:
        return RecordKeys(exact, np.zeros((rows, NEAR_GRIDS), dtype=np.int64), width, 0)
    keys = near_keys_of_columns(numeric, width) if near is None else near
    return RecordKeys(exact, keys, width, len(numeric))


def near_keys_of_columns(
    numeric: Sequence[npt.NDArray[np.generic]], tolerance: float = DEFAULT_TOLERANCE
) -> npt.NDArray[np.int64]:
    """`near_keys` of the matrix whose columns are `numeric` (equal-length 1-D arrays),
    without building that matrix: it is stacked `_CHUNK` rows at a time."""
    import numpy as np

    width = check_tolerance(tolerance)
    if not numeric:
        raise InputError("near keys need at least one numeric column", hint="pass the columns")
    rows = len(numeric[0])

    def chunk(start: int, stop: int) -> np.ndarray:
        return np.column_stack([column[start:stop] for column in numeric])

    return _near(chunk, rows, len(numeric), width)


def check_tolerance(tolerance: float) -> float:
    """The tolerance as a float, or a clear error when it lies outside `TOLERANCE_RANGE`."""
    low, high = TOLERANCE_RANGE
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise InputError(
            f"the near-duplicate tolerance must be a number, got {tolerance!r}",
            hint=f"e.g. {DEFAULT_TOLERANCE} (about 5 % relative per field)",
        )
    if not low <= float(tolerance) <= high:
        raise InputError(
            f"the near-duplicate tolerance {tolerance!r} is outside [{low:g}, {high:g}]",
            hint=f"{DEFAULT_TOLERANCE} finds copies jittered by a few per mille; larger values "
            "also match genuinely different records, smaller ones miss rounded copies",
        )
    return float(tolerance)


_CHUNK = 8192
"""Rows keyed at a time: the temporaries stay in cache (a 1M × 31 table in one go is 3× slower)."""
_MAX_CELL = 2**14
"""|cell| of any finite float64 at the smallest tolerance stays below this after clamping."""


def _grids(fields: int) -> tuple[np.ndarray, np.ndarray]:
    """Per grid and field: the offset (a fraction of a cell), and per field and grid an
    integer multiplier below 2^20, held as float64 so the hash is one BLAS product."""
    import numpy as np

    rng = np.random.default_rng([_SEED, fields])
    offsets = rng.random((NEAR_GRIDS, fields))
    multipliers = rng.integers(1, 2**20, size=(fields, NEAR_GRIDS)).astype(np.float64)
    return offsets, multipliers


def near_keys(values: npt.ArrayLike, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """NEAR_GRIDS int64 keys per row of a numeric (n × d) matrix (see the module docstring).

    A key is Σ_j cell_j · m_j over the fields, with integer multipliers m_j < 2^20 and
    cells clamped to ±2^14: every product and sum is an integer below 2^53, so the float64
    product is exact whatever order BLAS adds in, and keys agree across machines.
    NaN and ±inf fall in cells of their own.

    Raises:
        InputError: a tolerance outside its range, or values that are not a numeric matrix.
    """
    import numpy as np

    width = check_tolerance(tolerance)
    matrix = np.asarray(values)
    if matrix.ndim == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.ndim != 2 or matrix.dtype.kind not in "biuf":
        raise InputError(
            f"near keys need a numeric matrix of records × fields, got {matrix.dtype} "
            f"with shape {matrix.shape}",
            hint="pass the numeric fields of the records, one row per record",
        )
    rows, fields = matrix.shape
    if fields == 0:
        return np.zeros((rows, NEAR_GRIDS), dtype=np.int64)
    return _near(lambda start, stop: matrix[start:stop], rows, fields, width)


def _near(
    chunk: Callable[[int, int], np.ndarray], rows: int, fields: int, width: float
) -> np.ndarray:
    """Near keys of `rows` records of `fields` fields, read `_CHUNK` rows at a time."""
    import numpy as np

    keys = np.empty((rows, NEAR_GRIDS), dtype=np.int64)
    if fields > 2**18:
        raise InputError(
            f"near keys take at most {2**18} numeric fields, got {fields}",
            hint="key a projection of the records (e.g. their first principal components)",
        )
    offsets, multipliers = _grids(fields)
    scale = 1.0 / width
    for start in range(0, rows, _CHUNK):
        x = np.asarray(chunk(start, start + _CHUNK), dtype=np.float64)
        # t = sign(x)·log1p(|x|)/width, in place (the same values, a third fewer passes)
        t = np.abs(x)
        with np.errstate(invalid="ignore", over="ignore"):
            np.log1p(t, out=t)
            np.copysign(t, x, out=t)
            t *= scale
        nan = np.isnan(t)
        missing = bool(nan.any())
        if missing:
            t[nan] = 0.0
        np.clip(t, -_MAX_CELL + 2, _MAX_CELL - 2, out=t)  # ±inf too
        cells = np.empty_like(t)
        for grid in range(NEAR_GRIDS):
            np.add(t, offsets[grid], out=cells)
            np.floor(cells, out=cells)
            if missing:
                cells[nan] = _MAX_CELL  # a cell no finite value reaches
            keys[start : start + _CHUNK, grid] = cells @ multipliers[:, grid]
    return keys


def sorted_exact(exact: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The leaf hashes (n × 32) in byte order: sorted on their first 8 bytes (an integer
    sort, 3× faster than sorting 32-byte strings), falling back to the full comparison
    only when two different hashes share those 8 bytes (about never)."""
    import numpy as np

    exact = np.ascontiguousarray(exact, dtype=np.uint8).reshape(-1, 32)
    prefixes = _prefixes(exact)
    order = np.argsort(prefixes)  # ties are equal hashes, or handled below: no need for stable
    ranked = exact[order]
    same = np.flatnonzero(prefixes[order][1:] == prefixes[order][:-1])
    if same.size and bool((ranked[same] != ranked[same + 1]).any()):
        rows = exact.view("V32").ravel()
        return np.sort(rows).view(np.uint8).reshape(-1, 32)
    return ranked


def _prefixes(exact: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """The first 8 bytes of each leaf hash as a big-endian integer (byte order = integer order)."""
    import numpy as np

    return np.ascontiguousarray(exact[:, :8]).view(">u8").ravel().astype(np.uint64)


def set_root(exact: npt.NDArray[np.uint8]) -> str:
    """An order-independent identity of a record set: SHA-256 over its sorted leaf hashes.

    Hashing the sorted hashes flat (not a Merkle tree) is enough here: nobody proves one
    record against this root; the ordered Merkle root (the digest) serves proofs.
    """
    return _root_of_sorted(sorted_exact(exact))


def _root_of_sorted(ranked: npt.NDArray[np.uint8]) -> str:
    return "sha256:" + hashlib.sha256(ranked.tobytes()).hexdigest()


# --- the index: what is stored per record set, and matching against it -------------------


@dataclass(frozen=True, slots=True, eq=False)
class IndexedSet:
    """A record set as the index holds it: its leaf hashes sorted (n × 32), and per grid its
    near keys folded to 32 bits and sorted (NEAR_GRIDS × n uint32; 0 × n when it has no
    numeric field). The order of the records is gone: matching asks only whether a key
    is in the set.

    Folding the 64-bit near keys to their low 32 bits halves the index (64 bytes per
    record instead of 96 with the exact keys) and its sort; the price is that a record
    matches an unrelated one of a set of m records on some grid with probability about
    NEAR_GRIDS · m / 2^32 (0.2 % for a million-record set), far below
    `NEAR_SHARE_THRESHOLD`."""

    asset: str
    set_root: str
    records: int
    fields: int
    tolerance: float
    exact: npt.NDArray[np.uint8]
    near: npt.NDArray[np.uint32]

    @classmethod
    def of(cls, asset: str, keys: RecordKeys) -> IndexedSet:
        """The index form of `keys` (sorts them once, at registration)."""
        import numpy as np

        ranked = sorted_exact(keys.exact)
        near = (
            np.sort(_fold(keys.near).T, axis=1)
            if keys.fields
            else np.empty((0, len(keys)), dtype=np.uint32)
        )
        return cls(
            asset, _root_of_sorted(ranked), len(keys), keys.fields, keys.tolerance, ranked, near
        )

    def parts(self, size: int) -> list[tuple[bytes, bytes]]:
        """The keys as (exact, near) blobs of at most `size` records each, in order: exact
        is 32 bytes per record, near the part's keys grid by grid (uint32 little-endian)."""
        return [
            (
                self.exact[start : start + size].tobytes(),
                self.near[:, start : start + size].astype("<u4").tobytes(),
            )
            for start in range(0, max(self.records, 1), size)
        ]

    @classmethod
    def from_parts(
        cls,
        asset: str,
        set_root: str,
        records: int,
        fields: int,
        tolerance: float,
        parts: Sequence[tuple[bytes, bytes]],
    ) -> IndexedSet:
        """The inverse of `parts` (the blobs as the index stores them)."""
        import numpy as np

        exact = np.frombuffer(b"".join(e for e, _ in parts), dtype=np.uint8).reshape(-1, 32)
        grids = NEAR_GRIDS if fields else 0
        pieces = [np.frombuffer(n, dtype="<u4").reshape(grids, -1) for _, n in parts if grids]
        near = (
            np.concatenate(pieces, axis=1).astype(np.uint32)
            if pieces
            else np.empty((grids, 0), dtype=np.uint32)
        )
        if exact.shape[0] != records or near.shape[1] != (records if grids else 0):
            raise InputError(
                f"the record index holds {exact.shape[0]} keys for {asset}, which has "
                f"{records} records",
                hint="the index was changed outside quotepart: restore the database",
            )
        return cls(asset, set_root, records, fields, tolerance, exact, near)


@dataclass(frozen=True, slots=True)
class Overlap:
    """`records` of the new set's `of` records are in `earlier` (exactly, or near)."""

    earlier: str
    records: int
    of: int
    match: str  # exact | near
    tolerance: float

    @property
    def shared(self) -> Fraction:
        return Fraction(self.records, self.of)


def _fold(near: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
    """The low 32 bits of each near key (see `IndexedSet`)."""
    import numpy as np

    return near.astype(np.uint32)  # wraps modulo 2^32


def _in_sorted(values: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """Whether each value is in the sorted array `ranked` (one binary search each)."""
    import numpy as np

    if ranked.size == 0:
        return np.zeros(values.shape[0], dtype=bool)
    positions = np.minimum(np.searchsorted(ranked, values), ranked.size - 1)
    found: np.ndarray = ranked[positions] == values
    return found


def find_overlaps(
    new: RecordKeys,
    earlier: Sequence[IndexedSet],
    *,
    threshold: Fraction = NEAR_SHARE_THRESHOLD,
) -> list[Overlap]:
    """Which earlier record sets hold the new set's records; `earlier` oldest first.

    Each new record is credited to the *earliest* set that holds it, so a record copied
    along a chain (A, then B copying A, then C copying B) is counted against A only. Per
    earlier set, the new records found exactly (same leaf hash) and those found exactly
    or near (same cell on any grid, over the same number of numeric fields and tolerance)
    are counted among those not credited to an older set yet. A near overlap is reported
    when the near count is at least `threshold` of the new set and exceeds the exact
    count; otherwise an exact overlap is reported when at least one record is shared.

    Cost: O(n log m) per earlier set of m records, n the new set's size.
    """
    import numpy as np

    rows = len(new)
    taken = np.zeros(rows, dtype=bool)
    prefixes = _prefixes(new.exact)
    folded = _fold(new.near)
    found: list[Overlap] = []
    for other in earlier:
        exact = _exact_in(new.exact, prefixes, other.exact)
        near = exact.copy()
        if new.fields and other.fields == new.fields and other.tolerance == new.tolerance:
            for grid in range(NEAR_GRIDS):
                near |= _in_sorted(folded[:, grid], other.near[grid])
        exact &= ~taken
        near &= ~taken
        exact_count, near_count = int(exact.sum()), int(near.sum())
        if near_count > exact_count and Fraction(near_count, rows) >= threshold:
            found.append(Overlap(other.asset, near_count, rows, "near", new.tolerance))
            taken |= near
        elif exact_count:
            found.append(Overlap(other.asset, exact_count, rows, "exact", 0.0))
            taken |= exact
    return found


def _exact_in(
    exact: npt.NDArray[np.uint8], prefixes: npt.NDArray[np.uint64], ranked: npt.NDArray[np.uint8]
) -> np.ndarray:
    """Whether each leaf hash is among the sorted leaf hashes `ranked`: found by its first
    8 bytes, then confirmed on all 32."""
    import numpy as np

    if ranked.shape[0] == 0:
        return np.zeros(exact.shape[0], dtype=bool)
    other = _prefixes(ranked)
    positions = np.minimum(np.searchsorted(other, prefixes), other.size - 1)
    hit: np.ndarray = other[positions] == prefixes
    candidates = np.flatnonzero(hit)
    hit[candidates] = (ranked[positions[candidates]] == exact[candidates]).all(axis=1)
    return hit


__all__ = [
    "DEFAULT_TOLERANCE",
    "NEAR_GRIDS",
    "NEAR_SHARE_THRESHOLD",
    "TOLERANCE_RANGE",
    "IndexedSet",
    "Overlap",
    "OverlapWarning",
    "RecordKeys",
    "check_tolerance",
    "find_overlaps",
    "near_keys",
    "near_keys_of_columns",
    "record_keys",
    "set_root",
    "sorted_exact",
]
