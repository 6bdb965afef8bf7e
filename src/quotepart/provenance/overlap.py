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

With the default tolerance of 0.05 and 8 grids, a record jittered by 0.2 % relative on
each of 30 fields is found with probability ≈ 1 − (1 − 0.968^30)^8 ≈ 0.9996, while two
records that differ by more than 5 % on any one field never match. Records with text
fields are matched on their numeric fields only; records with no numeric field get no
near keys (exact keys still apply).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quotepart.errors import InputError

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


@dataclass(frozen=True, slots=True)
class RecordKeys:
    """The keys of one record set: `exact` (n × 32 bytes) and `near` (n × NEAR_GRIDS int64)."""

    exact: npt.NDArray[np.uint8]
    near: npt.NDArray[np.int64]
    tolerance: float

    def __len__(self) -> int:
        return int(self.exact.shape[0])


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
    keys = np.empty((rows, NEAR_GRIDS), dtype=np.int64)
    if fields == 0:
        keys[:] = 0
        return keys
    if fields > 2**18:
        raise InputError(
            f"near keys take at most {2**18} numeric fields, got {fields}",
            hint="key a projection of the records (e.g. their first principal components)",
        )
    offsets, multipliers = _grids(fields)
    scale = 1.0 / width
    for start in range(0, rows, _CHUNK):
        x = matrix[start : start + _CHUNK].astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            t = np.sign(x) * np.log1p(np.abs(x)) * scale
        nan = np.isnan(t)
        t = np.clip(np.nan_to_num(t, nan=0.0), -_MAX_CELL + 2, _MAX_CELL - 2)
        for grid in range(NEAR_GRIDS):
            cells = np.floor(t + offsets[grid])
            cells[nan] = _MAX_CELL  # a cell no finite value reaches
            keys[start : start + _CHUNK, grid] = cells @ multipliers[:, grid]
    return keys


def set_root(exact: npt.NDArray[np.uint8]) -> str:
    """An order-independent identity of a record set: SHA-256 over its sorted leaf hashes.

    Hashing the sorted hashes flat (not a Merkle tree) is enough here: nobody proves one
    record against this root; the ordered Merkle root (the digest) serves proofs.
    """
    import numpy as np

    rows = np.ascontiguousarray(exact).view(f"V{exact.shape[1]}").ravel()
    return "sha256:" + hashlib.sha256(np.sort(rows).tobytes()).hexdigest()


__all__ = [
    "DEFAULT_TOLERANCE",
    "NEAR_GRIDS",
    "TOLERANCE_RANGE",
    "RecordKeys",
    "check_tolerance",
    "near_keys",
    "set_root",
]
