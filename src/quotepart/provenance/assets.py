"""What an asset is, computed from the thing itself: its digest, size, and standard metadata.

Each `describe_*` function turns data, a model, a service or a grant into the body of an
`asset.registered` entry (plus, for record sets and folders, the members a contributor
will later prove membership of). Nothing here writes: the workspace appends the body.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from quotepart.errors import InputError
from quotepart.ids import Digest, PartyId
from quotepart.log import canonicalize
from quotepart.log.kinds import AssetRegistered, describe_value
from quotepart.provenance.digest import (
    PackedRecords,
    digest_file,
    folder_members,
    merkle_root_and_leaves,
    merkle_root_packed,
)
from quotepart.provenance.overlap import (
    DEFAULT_TOLERANCE,
    RecordKeys,
    check_tolerance,
    near_keys_of_columns,
    record_keys,
)
from quotepart.provenance.tables import EncodedTable, encode_table

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Described:
    """An asset body ready to sign, the members its digest is a Merkle root of (if any),
    and, for a table, its records' keys for the record index (`overlap.RecordKeys`)."""

    body: AssetRegistered
    members: PackedRecords | None = None
    keys: RecordKeys | None = None

    @property
    def digest(self) -> Digest:
        return self.body.asset


def _metadata(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value not in (None, (), [], {})}


def _creators(creators: Iterable[str | PartyId]) -> list[str]:
    return [str(creator) for creator in creators]


def decimal_text(value: Any, *, what: str) -> str:
    """A number as the decimal string entries hold (they carry no floats)."""
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number, got {value!r}", hint="pass a number")
    try:
        number = Decimal(value) if isinstance(value, str) else Decimal(repr(value))
    except ArithmeticError as exc:
        raise InputError(f"{what} must be a number, got {value!r}", hint="pass a number") from exc
    if not number.is_finite():
        raise InputError(f"{what} must be finite, got {value!r}", hint="pass a finite number")
    return format(number.normalize(), "f") if number == number.to_integral() else str(number)


def describe_data(
    data: Any,
    *,
    name: str,
    asset_kind: str = "dataset",
    description: str | None = None,
    license: str | None = None,
    creators: Iterable[str | PartyId] = (),
    derived_from: Sequence[Digest] = (),
    url: str | None = None,
    extra: Mapping[str, Any] | None = None,
    workers: int | None = None,
    tolerance: float | None = DEFAULT_TOLERANCE,
) -> Described:
    """A file, a folder, bytes, or a table (pandas/polars/Arrow/numpy/(X, y)) as an asset.

    A table's records also get their keys (exact: the leaf hashes the digest is built
    from, kept rather than hashed again; near: at `tolerance`, over its numeric fields);
    `tolerance=None` skips them.

    Raises:
        InputError: the path is missing or unreadable, the object is not data, or the
            tolerance is outside `overlap.TOLERANCE_RANGE`.
    """
    if tolerance is not None:
        tolerance = check_tolerance(tolerance)  # before any work: a bad one writes nothing
    common = _metadata(license=license, creators=_creators(creators), url=url, **(extra or {}))
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if not raw:
            raise InputError(f"asset {name!r} is empty", hint="register non-empty data")
        return Described(
            AssetRegistered(
                Digest.of_bytes(raw),
                asset_kind,
                name,
                "sha256",
                len(raw),
                tuple(derived_from),
                description,
                common,
            )
        )
    if isinstance(data, str | os.PathLike):
        return _describe_path(Path(data), name, asset_kind, description, derived_from, common)
    table = encode_table(data)
    keys = None
    if tolerance is None:
        root = merkle_root_packed(table.records, workers=workers)
    else:
        root, keys = _root_and_keys(table, tolerance, workers)
    fields = [f.to_json() for f in table.fields]
    return Described(
        AssetRegistered(
            root,
            asset_kind,
            name,
            "merkle-records",
            len(table),
            tuple(derived_from),
            description,
            {**common, "fields": fields},
        ),
        table.records,
        keys,
    )


def _root_and_keys(
    table: EncodedTable, tolerance: float, workers: int | None
) -> tuple[Digest, RecordKeys]:
    """The table's digest and its record keys.

    The near keys are computed in a thread while worker processes hash the records, when
    the workers start clean anyway (this process already runs other threads, as a
    workspace does: see `digest._pool_context`); otherwise after, so that the workers can
    still be forked and inherit the records for free.
    """
    if not table.numeric or threading.active_count() == 1:
        root, leaves = merkle_root_and_leaves(table.records, workers=workers)
        return root, record_keys(leaves, table.numeric, tolerance)
    with ThreadPoolExecutor(1, thread_name_prefix="quotepart-near-keys") as pool:
        near = pool.submit(near_keys_of_columns, table.numeric, tolerance)
        root, leaves = merkle_root_and_leaves(table.records, workers=workers)
        return root, record_keys(leaves, table.numeric, tolerance, near=near.result())


def _describe_path(
    path: Path,
    name: str,
    asset_kind: str,
    description: str | None,
    derived_from: Sequence[Digest],
    common: dict[str, Any],
) -> Described:
    if path.is_dir():
        members = folder_members(path)
        packed = PackedRecords.from_records(members)
        return Described(
            AssetRegistered(
                merkle_root_packed(packed, workers=1),
                asset_kind,
                name,
                "merkle-files",
                len(members),
                tuple(derived_from),
                description,
                common,
            ),
            packed,
        )
    digest = digest_file(path)  # raises a clear InputError when missing or unreadable
    return Described(
        AssetRegistered(
            digest,
            asset_kind,
            name,
            "sha256",
            path.stat().st_size,
            tuple(derived_from),
            description,
            common,
        )
    )


def _canonical_digest(document: dict[str, Any]) -> Digest:
    return Digest.of_bytes(canonicalize(document))


# ------------------------------------------------------------------ models


def estimator_parameters(estimator: Any) -> dict[str, str]:
    """A scikit-learn estimator's parameters as text (nested estimators by class name)."""
    if not hasattr(estimator, "get_params"):
        return {}
    parameters = {}
    for key, value in sorted(estimator.get_params(deep=True).items()):
        if hasattr(value, "get_params"):
            value = type(value).__name__
        elif isinstance(value, list | tuple) and any(
            hasattr(v, "get_params") for v in _flat(value)
        ):
            continue  # Pipeline steps: their parameters appear under their own keys
        parameters[key] = describe_value(value)[:1000]
    return parameters


def _flat(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, list | tuple):
            yield from _flat(item)
        else:
            yield item


def _framework(estimator: Any) -> str | None:
    package = type(estimator).__module__.split(".")[0]
    distribution = {"sklearn": "scikit-learn"}.get(package, package)
    try:
        return f"{distribution} {package_metadata.version(distribution)}"
    except package_metadata.PackageNotFoundError:
        return None


def describe_model(
    model: Any,
    *,
    name: str,
    description: str | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    training_data: Sequence[Digest] = (),
    license: str | None = None,
    creators: Iterable[str | PartyId] = (),
    derived_from: Sequence[Digest] = (),
) -> Described:
    """A trained model (any picklable estimator) or a file/folder of weights, with model-card fields.

    An estimator's digest is the SHA-256 of its pickle (protocol 5): the same fitted
    object gives the same digest; refitting with another seed gives another model.
    """
    card = _metadata(
        intended_use=intended_use,
        limitations=limitations,
        metrics={k: decimal_text(v, what=f"metric {k!r}") for k, v in (metrics or {}).items()},
        training_data=sorted({str(d) for d in training_data}),
        license=license,
        creators=_creators(creators),
    )
    if isinstance(model, str | os.PathLike | bytes):
        return describe_data(
            model,
            name=name,
            asset_kind="model",
            description=description,
            derived_from=derived_from,
            extra=card,
        )
    try:
        blob = pickle.dumps(model, protocol=5)
    except Exception as exc:  # pickling runs arbitrary __reduce__ code
        raise InputError(
            f"cannot serialise model {name!r} to compute its digest: {exc}",
            hint="save the model to a file and register the file",
        ) from exc
    estimator = f"{type(model).__module__}.{type(model).__qualname__}"
    fields = _metadata(
        estimator=estimator,
        framework=_framework(model),
        parameters=estimator_parameters(model),
        **card,
    )
    return Described(
        AssetRegistered(
            Digest("sha256", hashlib.sha256(blob).hexdigest()),
            "model",
            name,
            "sha256",
            len(blob),
            tuple(derived_from),
            description,
            fields,
        )
    )


# ------------------------------------------------------- services, grants


def describe_service(
    *,
    name: str,
    endpoint: str,
    model: Digest,
    unit: str = "request",
    description: str | None = None,
) -> Described:
    """An API endpoint backed by a model; the same endpoint and model give the same asset."""
    digest = _canonical_digest({"type": "service", "endpoint": endpoint, "model": str(model)})
    return Described(
        AssetRegistered(
            digest,
            "service",
            name,
            "canonical-json",
            None,
            (model,),
            description,
            {"endpoint": endpoint, "unit": unit},
        )
    )


def describe_compute_grant(
    *,
    name: str,
    grantor: PartyId,
    resources: Mapping[str, Any],
    provider: str | None = None,
    description: str | None = None,
) -> Described:
    """Resources (GPU-hours, CPU-hours, storage) a party gives to the runs that use the grant."""
    if not resources:
        raise InputError(
            f"compute grant {name!r} names no resources", hint="e.g. resources={'gpu_hours': 120}"
        )
    amounts = {
        key: decimal_text(value, what=f"resource {key!r}") for key, value in resources.items()
    }
    if any(Decimal(amount) <= 0 for amount in amounts.values()):
        raise InputError(
            f"compute grant {name!r} has a resource amount that is not positive: {amounts}",
            hint="grant positive amounts",
        )
    document = {
        "type": "compute_grant",
        "name": name,
        "grantor": str(grantor),
        "resources": amounts,
    }
    metadata = _metadata(grantor=str(grantor), resources=amounts, provider=provider)
    return Described(
        AssetRegistered(
            _canonical_digest(document),
            "compute_grant",
            name,
            "canonical-json",
            None,
            (),
            description,
            metadata,
        )
    )


# ---------------------------------------------------------- labelling


@dataclass(frozen=True, slots=True)
class DescribedBatch:
    described: Described
    counts: dict[PartyId, int]  # annotations per annotator

    def shares(self) -> dict[PartyId, Fraction]:
        """Each annotator's share of the batch, in proportion to their annotations."""
        total = sum(self.counts.values())
        return {party: Fraction(count, total) for party, count in self.counts.items()}


def describe_labelling_batch(
    annotations: Any,
    *,
    name: str,
    annotator_column: str,
    annotators: Mapping[str, PartyId] | None = None,
    of: Sequence[Digest] = (),
    label_set: Iterable[str] = (),
    description: str | None = None,
    license: str | None = None,
) -> DescribedBatch:
    """Annotations (a table with one column naming the annotator of each record).

    The annotator column holds party ids, or names mapped to parties by `annotators`.
    """
    from quotepart.provenance.tables import columns_of

    columns = dict(columns_of(annotations))
    if annotator_column not in columns:
        raise InputError(
            f"the annotations have no column {annotator_column!r}",
            hint=f"columns: {', '.join(columns)}",
        )
    counts: Counter[PartyId] = Counter()
    for value, count in Counter(str(v) for v in columns[annotator_column]).items():
        if annotators is not None:
            if value not in annotators:
                raise InputError(
                    f"annotator {value!r} is not in the annotators mapping",
                    hint="map every annotator name to its registered party",
                )
            counts[annotators[value]] += count
        else:
            counts[PartyId.parse(value)] += count
    described = describe_data(
        annotations,
        name=name,
        asset_kind="labelling_batch",
        description=description,
        license=license,
        derived_from=of,
        extra={
            "annotators": {str(party): count for party, count in sorted(counts.items())},
            "label_set": sorted(set(label_set)),
        },
    )
    return DescribedBatch(described, dict(counts))


__all__ = [
    "Described",
    "DescribedBatch",
    "decimal_text",
    "describe_compute_grant",
    "describe_data",
    "describe_labelling_batch",
    "describe_model",
    "describe_service",
    "estimator_parameters",
]
