"""Tables as record sets: one documented byte encoding per record, whatever library holds it.

A dataset registered from a pandas or polars DataFrame, an Arrow table or numpy arrays
is identified by the Merkle root over its records (`digest.merkle_root_packed`), so the
encoding below is part of the digest and never changes without a new scheme name.

Encoding `quotepart-records/v1` of one record:

* fixed-width columns first, in column order: integers as int64 little-endian, floats as
  IEEE 754 float64 little-endian (every NaN as 0x7ff8000000000000), booleans as one byte
  0/1, date-times as int64 little-endian nanoseconds since the Unix epoch (UTC);
* then text columns, in column order: uint32 little-endian byte length and the UTF-8
  bytes, or length 0xFFFFFFFF for a missing value.

Missing values in integer, boolean or date-time columns are refused (the digest must say
exactly what each record holds); missing floats are NaN, as pandas reads them.

pandas, polars and pyarrow are not dependencies: a table is recognised by its type's
module, and converted through the library that made it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quotepart.errors import InputError
from quotepart.provenance.digest import PackedRecords

if TYPE_CHECKING:  # numpy is imported by the functions that encode: see digest.py
    import numpy as np

ENCODING = "quotepart-records/v1"
_MISSING_TEXT = struct.pack("<I", 0xFFFFFFFF)
_CANONICAL_NAN_BITS = 0x7FF8000000000000  # the one NaN every missing float is written as


@dataclass(frozen=True, slots=True)
class Field:
    """One column: its name and its Croissant (schema.org) data type."""

    name: str
    data_type: str  # sc:Integer | sc:Float | sc:Boolean | sc:DateTime | sc:Text

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.data_type}


_NUMERIC = frozenset({"sc:Integer", "sc:Float", "sc:Boolean"})
"""Field types whose values near keys are computed over (date-times and text are not)."""


@dataclass(frozen=True, slots=True)
class EncodedTable:
    """The records, their fields, and the numeric columns as encoded (for near keys)."""

    records: PackedRecords
    fields: tuple[Field, ...]
    numeric: tuple[np.ndarray, ...] = ()

    def __len__(self) -> int:
        return len(self.records)


def columns_of(data: Any) -> list[tuple[str, np.ndarray]]:
    """(name, numpy array) per column of a DataFrame, Arrow table, array or (X, y) pair.

    Raises:
        InputError: the object is not a table this module knows, or is empty.
    """
    import numpy as np

    module = type(data).__module__.split(".")[0]
    if isinstance(data, tuple) and len(data) == 2:
        features, target = (np.asarray(part) for part in data)
        columns = columns_of(features)
        if target.ndim != 1 or len(target) != len(columns[0][1]):
            raise InputError(
                f"the target has shape {target.shape}, the features {len(columns[0][1])} rows",
                hint="pass (X, y) with one target value per row of X",
            )
        return [*columns, ("target", target)]
    if module == "pandas" and hasattr(data, "columns"):
        columns = []
        for name in data.columns:
            series = data[name]
            _refuse_missing(str(name), series.dtype.kind in "iub" and bool(series.isna().any()))
            columns.append((str(name), series.to_numpy()))
    elif module == "polars" and hasattr(data, "get_column"):
        columns = []
        for name in data.columns:
            series = data.get_column(name)
            numeric_or_bool = series.dtype.is_integer() or str(series.dtype) == "Boolean"
            _refuse_missing(name, numeric_or_bool and series.null_count() > 0)
            columns.append((name, series.to_numpy()))
    elif module == "pyarrow" and hasattr(data, "column_names"):
        columns = []
        for name in data.column_names:
            column = data.column(name)
            kind = str(column.type)
            numeric_or_bool = kind.startswith(("int", "uint")) or kind == "bool"
            _refuse_missing(name, numeric_or_bool and column.null_count > 0)
            columns.append((name, column.to_numpy(zero_copy_only=False)))
    elif isinstance(data, np.ndarray):
        if data.dtype.names:
            columns = [(name, data[name]) for name in data.dtype.names]
        elif data.ndim == 1:
            columns = [("value", data)]
        elif data.ndim == 2:
            columns = [(f"x{i}", data[:, i]) for i in range(data.shape[1])]
        else:
            raise InputError(
                f"a {data.ndim}-dimensional array is not a table",
                hint="pass a 1-D or 2-D array (rows are records), or save it to a file",
            )
    else:
        raise InputError(
            f"cannot read records from a {type(data).__module__}.{type(data).__name__}",
            hint="pass a pandas or polars DataFrame, a pyarrow Table, a numpy array, "
            "an (X, y) pair, a file or a folder",
        )
    if not columns or len(columns[0][1]) == 0:
        raise InputError("the table has no records", hint="register non-empty data")
    return columns


def _refuse_missing(name: str, missing: bool) -> None:
    if missing:
        raise InputError(
            f"column {name!r} has missing values",
            hint="fill or drop missing values before registering the data",
        )


def _fixed(name: str, values: np.ndarray) -> tuple[np.ndarray, str] | None:
    """The column as little-endian fixed-width values and its type, or None for text."""
    import numpy as np

    kind = values.dtype.kind
    if kind == "b":
        return values.astype("u1"), "sc:Boolean"
    if kind in "iu":
        if kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
            raise InputError(
                f"column {name!r} holds integers above 2^63 - 1",
                hint="store such identifiers as text",
            )
        return values.astype("<i8"), "sc:Integer"
    if kind == "f":
        as_float = values.astype("<f8")
        canonical_nan = np.array([_CANONICAL_NAN_BITS], dtype="<u8").view("<f8")[0]
        return np.where(np.isnan(as_float), canonical_nan, as_float), "sc:Float"
    if kind == "M":
        if np.isnat(values).any():
            raise InputError(
                f"column {name!r} has missing date-times",
                hint="fill or drop missing values before registering the data",
            )
        return values.astype("datetime64[ns]").view("<i8"), "sc:DateTime"
    if kind in "OUT":
        return None
    raise InputError(
        f"column {name!r} has type {values.dtype}, which has no record encoding",
        hint="convert it to numbers, booleans, date-times or text first",
    )


def _text_cell(value: Any) -> bytes:
    if not isinstance(value, str):  # _object_column let only text and missing values through
        return _MISSING_TEXT
    data = value.encode()
    return struct.pack("<I", len(data)) + data


def encode_table(data: Any) -> EncodedTable:
    """Encode every record of `data` (see the module docstring) for hashing and proofs."""

    columns = columns_of(data)
    rows = len(columns[0][1])
    fixed_parts: list[tuple[str, np.ndarray]] = []
    text_columns: list[tuple[str, np.ndarray]] = []
    fields: list[Field] = []
    numeric: list[np.ndarray] = []
    for name, values in columns:
        if len(values) != rows:
            raise InputError(
                f"column {name!r} has {len(values)} rows, not {rows}",
                hint="give every column the same number of rows",
            )
        if values.dtype.kind == "O":
            values = _object_column(name, values)
        converted = _fixed(name, values)
        if converted is None:
            text_columns.append((name, values))
            fields.append(Field(name, "sc:Text"))
        else:
            fixed_parts.append((name, converted[0]))
            fields.append(Field(name, converted[1]))
            if converted[1] in _NUMERIC:
                numeric.append(converted[0])
    ordered = [f for f in fields if f.data_type != "sc:Text"] + [
        f for f in fields if f.data_type == "sc:Text"
    ]
    fixed_bytes = _pack_fixed(fixed_parts, rows)
    width = sum(part.dtype.itemsize for _, part in fixed_parts)
    if not text_columns:
        return EncodedTable(
            PackedRecords.fixed_width(fixed_bytes, width), tuple(ordered), tuple(numeric)
        )
    records = []
    for row in range(rows):
        cells = [_text_cell(values[row]) for _, values in text_columns]
        records.append(fixed_bytes[row * width : (row + 1) * width] + b"".join(cells))
    return EncodedTable(PackedRecords.from_records(records), tuple(ordered), tuple(numeric))


def _is_missing(value: Any) -> bool:
    return value is None or value != value or type(value).__name__ in {"NAType", "NaTType"}


def _object_column(name: str, values: np.ndarray) -> np.ndarray:
    """Text stays as objects; numbers held as objects (nullable pandas columns) become numbers."""
    import numpy as np

    present = [value for value in values if not _is_missing(value)]
    if all(isinstance(value, str) for value in present):
        return values
    if len(present) < len(values):
        raise InputError(
            f"column {name!r} has missing values",
            hint="fill or drop missing values before registering the data",
        )
    converted = np.asarray(present)
    if converted.dtype.kind not in "biuf":
        raise InputError(
            f"column {name!r} mixes types ({type(present[0]).__name__} and others)",
            hint="give each column one type before registering",
        )
    return converted


def _pack_fixed(parts: Sequence[tuple[str, np.ndarray]], rows: int) -> bytes:
    import numpy as np

    if not parts:
        return b""
    layout = np.dtype([(f"c{i}", part.dtype) for i, (_, part) in enumerate(parts)])  # packed
    table = np.empty(rows, dtype=layout)
    for i, (_, part) in enumerate(parts):
        table[f"c{i}"] = part
    return table.tobytes()


__all__ = ["ENCODING", "EncodedTable", "Field", "columns_of", "encode_table", "read_table"]


def read_table(path: str | Path) -> Any:
    """A table file as the library that reads it best: CSV (pandas), Parquet, Feather/Arrow
    IPC (pyarrow) or .npy (numpy). Registering and proving read a file the same way.

    Raises:
        InputError: the file is missing or unreadable, its format is unknown, or the
            library that reads it is not installed.
    """
    import numpy as np

    source = Path(path)
    if not source.is_file():
        raise InputError(f"no such file: {source}", hint="check the path of the table")
    suffix = source.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(source, allow_pickle=False)
        if suffix == ".csv":
            import pandas

            return pandas.read_csv(source)
        if suffix == ".parquet":
            import pyarrow.parquet

            return pyarrow.parquet.read_table(source)
        if suffix in {".feather", ".arrow"}:
            import pyarrow.feather

            return pyarrow.feather.read_table(source)
    except ImportError as exc:
        raise InputError(
            f"reading {source.name} needs the {exc.name} package", hint=f"pip install {exc.name}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {source} as a table: {exc}", hint="check the file") from exc
    raise InputError(
        f"{source.name}: tables are read from .csv, .parquet, .feather, .arrow or .npy files",
        hint="register other files as blobs (without --table)",
    )
