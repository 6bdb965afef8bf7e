"""Runs recorded as they happen: `with ws.run("train", operator=lab) as run: ...`.

The run notes what it learns from (`run.use(data)`), what else it uses and how
(`run.use(test_set, role="evaluation")`, or `run.evaluate_with(test_set)`) and what it
produces; only what it learns from earns a share of what its outputs earn. On leaving the block it records one
`run.recorded` entry with its parameters, the code version (git commit and whether the
work tree had uncommitted changes), the environment (Python and the versions of the
packages that shape a model), its times and its status. A block that raises is
recorded as failed, with the error, and the exception goes on.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from importlib import metadata as package_metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from quotepart.errors import InputError
from quotepart.ids import Clock, Digest, PartyId, RunId
from quotepart.log.kinds import USE_ROLES, RunRecorded, describe_value
from quotepart.log.kinds.metering import METER_NAME_RE
from quotepart.text import printable, unsafe_character

KEY_PACKAGES = (
    "quotepart",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "polars",
    "pyarrow",
    "torch",
    "tensorflow",
    "jax",
    "xgboost",
    "lightgbm",
    "transformers",
)
"""Packages whose versions change what a model is; recorded when installed."""


class HasDigest(Protocol):
    @property
    def asset(self) -> Digest: ...


AssetRef = Digest | HasDigest


def asset_digest(asset: AssetRef) -> Digest:
    if isinstance(asset, Digest):
        return asset
    digest = getattr(asset, "asset", None)
    if not isinstance(digest, Digest):
        raise InputError(
            f"{asset!r} is not an asset",
            hint="pass the digest a register_* call returned, or its AssetRecord",
        )
    return digest


def environment() -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    for package in KEY_PACKAGES:
        try:
            found[f"package:{package}"] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            continue
    return found


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(folder: str | Path | None = None) -> dict[str, str]:
    """Commit, dirty flag and remote of the git work tree holding `folder` (cwd by default)."""
    where = Path(folder) if folder is not None else Path.cwd()
    commit = _git(where, "rev-parse", "HEAD")
    if commit is None:
        return {}
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    version = {"commit": commit, "dirty": "true" if status else "false"}
    remote = _git(where, "config", "--get", "remote.origin.url")
    if remote:
        parts = urlsplit(remote)
        if parts.password or parts.username:  # never record credentials from a remote URL
            remote = urlunsplit(parts._replace(netloc=parts.hostname or ""))
        version["repository"] = remote
    return version


class Run:
    """One activity in progress; `record` appends its entry when it ends."""

    def __init__(
        self,
        name: str,
        *,
        operator: PartyId,
        record: Callable[[RunRecorded], int],
        clock: Clock,
        parameters: Mapping[str, Any] | None = None,
        code_folder: str | Path | None = None,
    ) -> None:
        if not name.strip():
            raise InputError("a run needs a name", hint='e.g. ws.run("train", operator=lab)')
        unsafe = unsafe_character(name)
        if unsafe is not None:  # refused now, not when the run ends and its work is done
            raise InputError(
                f"the run name '{printable(name)}' holds {unsafe[1]}, a control or "
                f"bidirectional character, at position {unsafe[0]}",
                hint="remove it: names cannot hold control characters or bidirectional overrides",
            )
        self.name = name
        self.operator = operator
        self.id = RunId.new(clock)
        self.inputs: dict[Digest, None] = {}
        self.uses: dict[Digest, str] = {}  # used, not learned from: role
        self.outputs: dict[Digest, None] = {}
        self.parameters = {k: describe_value(v) for k, v in (parameters or {}).items()}
        self.status: str | None = None
        self.leaf_index: int | None = None
        self._record = record
        self._clock = clock
        self._code_folder = code_folder
        self._started: datetime | None = None

    def use(self, *assets: AssetRef, role: str | None = None) -> None:
        """Note assets the run uses: learned from (no `role`), or used in `role` without
        being learned from ("evaluation", "code", "tokenizer", "reference").

        An asset both learned from and used in a role is recorded as learned from.

        Raises:
            InputError: an unknown role.
        """
        if role is not None and role not in USE_ROLES:
            raise InputError(
                f"unknown role {role!r} of an asset a run uses",
                hint=f"leave role out for what the run learns from; roles of what it only "
                f"uses: {', '.join(sorted(USE_ROLES))}",
            )
        for asset in assets:
            if role is None:
                self.inputs[asset_digest(asset)] = None
            else:
                self.uses.setdefault(asset_digest(asset), role)

    def evaluate_with(self, *assets: AssetRef) -> None:
        """Note the data the run's outputs are evaluated on: used, not learned from."""
        self.use(*assets, role="evaluation")

    def call_service(self, service: AssetRef, *meters: str) -> None:
        """Note that the run called `service` (a metered service; its usage is billed by
        `meters`, named in the run's parameters as `meters <digest>`): lineage then shows
        which pipelines consumed the service, and `quotepart lineage SERVICE --downstream`
        lists them."""
        digest = asset_digest(service)
        for meter in meters:
            if not METER_NAME_RE.match(meter):
                raise InputError(
                    f"{meter!r} is not a meter name", hint="name the service's meters, e.g. tokens"
                )
        self.use(digest, role="service")
        if meters:
            key = f"meters {digest}"
            named = set(filter(None, self.parameters.get(key, "").split(","))) | set(meters)
            self.parameters[key] = ",".join(sorted(named))

    def produce(self, *assets: AssetRef) -> None:
        for asset in assets:
            self.outputs[asset_digest(asset)] = None

    def log_parameters(self, **parameters: Any) -> None:
        self.parameters.update((k, describe_value(v)) for k, v in parameters.items())

    def __enter__(self) -> Run:
        self._started = self._clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        error = None if exc is None else f"{type(exc).__name__}: {exc}"[:10_000]
        self.finish(error=error)

    def finish(self, *, error: str | None = None) -> int:
        """Record the run (succeeded unless `error`); return its leaf index.

        Raises:
            InputError: a successful run produced nothing (nothing is recorded).
        """
        if self.leaf_index is not None:
            return self.leaf_index
        if error is None and not self.outputs:
            raise InputError(
                f"run {self.name!r} produced nothing, so there is nothing to record",
                hint="call run.produce(asset) for what it made; a run that made nothing is not provenance",
            )
        started = self._started or self._clock()
        body = RunRecorded(
            run=self.id,
            name=self.name,
            operator=self.operator,
            status="failed" if error is not None else "succeeded",
            started=started,
            ended=max(self._clock(), started),
            inputs=tuple(self.inputs),
            outputs=tuple(o for o in self.outputs if o not in self.inputs),
            uses={
                d: role
                for d, role in self.uses.items()
                if d not in self.inputs and d not in self.outputs
            },
            parameters=self.parameters,
            code=code_version(self._code_folder),
            environment=environment(),
            error=error,
        )
        self.status = body.status
        self.leaf_index = self._record(body)
        return self.leaf_index


def digests(assets: Iterable[AssetRef]) -> list[Digest]:
    return [asset_digest(asset) for asset in assets]
