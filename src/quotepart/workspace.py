"""The workspace: one folder (keys, settings) plus one database, and everything done to them.

```python
ws = quotepart.init_workspace("coop-ledger")            # or open_workspace(...)
hospital = ws.register_party("St Mary's", roles=("contributor",), payout_reference="DE89…")
lab = ws.register_party("Diagnostics Lab", roles=("operator",))
data = ws.register_data(frame, name="Admissions 2025", by=hospital, license="CC-BY-4.0")
ws.contribute(data, {hospital: 1}, role="data", by=hospital)
model = ws.track(LogisticRegression(), operator=lab, uses=[data]).fit(X, y).model
ws.verify()
```

A `Workspace` composes the domain services over one `Ledger` and delegates to them:
`ws.provenance` (parties, assets, contributions, runs, lineage), `ws.metering` (usage),
`ws.sharing` (revenue, policies, allocation, statements, payouts), `ws.valuing`
(split- and copy-robust valuation of a model's inputs) and `ws.reports`.
Every public method below is either defined here or delegated, visibly, in one line
naming the service that owns it; its docstring and signature are the service's.

Layout of a workspace folder:

    workspace.json      origin and (optionally) the database URL, never its password
    quotepart.db        the SQLite database, unless the URL points elsewhere
    keys/, payouts/     keys and secrets (see `quotepart.store.keyfolder.KeyFolder`)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from quotepart.errors import InputError, QuotepartError, VerificationError, WorkspaceNotFoundError
from quotepart.ids import Clock, PartyId, Period, RevenueId, utc_now
from quotepart.log import (
    AuditReport,
    NoteVerifier,
    SignedEntry,
    SigningKey,
    audit,
    parse_entry,
    verifier_key,
)
from quotepart.log.canonical import ENTRY_BYTES_CEILING, MAX_ENTRY_BYTES
from quotepart.metering import Metering, ServiceMeter
from quotepart.metering.audit import check_usage
from quotepart.metering.billing import Bill
from quotepart.provenance.resolve import AssetOrName
from quotepart.provenance.service import Provenance
from quotepart.report.service import Reports
from quotepart.sharing.service import Sharing
from quotepart.sharing.valuing import Valuing
from quotepart.store import (
    LogStore,
    migrate,
    open_engine,
    split_password,
    sqlite_url,
    with_password,
)
from quotepart.store.keyfolder import KeyFolder, write_private_file
from quotepart.store.ledger import KeyedLedger
from quotepart.store.queries.names import PartyRef
from quotepart.store.queries.provenance import AssetRecord, ContributionRecord, PartyRecord

SETTINGS_FILE = "workspace.json"
DATABASE_FILE = "quotepart.db"
FORMAT_VERSION = 1
PASSWORD_ENV = "QUOTEPART_DATABASE_PASSWORD"
"""Where the database password comes from when the URL has none (before keys/database.password)."""

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")


class Delegated(Generic[S, P, R]):
    """A workspace method that is a service's: `ws.name(...)` is `ws.<service>.name(...)`.

    It keeps the service method's signature and docstring (for `help()`, IDEs and
    mypy), so the facade states in one line where each method lives, and nothing is
    written twice.
    """

    def __init__(self, service: str, method: Callable[Concatenate[S, P], R]) -> None:
        self.service = service
        self.method = method
        self.__doc__ = method.__doc__
        self.__wrapped__ = method
        self.__name__ = method.__name__

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, instance: object | None, owner: type[Any]) -> Self | Callable[P, R]:
        if instance is None:
            return self
        bound: Callable[P, R] = getattr(getattr(instance, self.service), self.method.__name__)
        return bound


def delegate(service: str, method: Callable[Concatenate[S, P], R]) -> Delegated[S, P, R]:
    """Declare a workspace method as `service`'s `method` (see `Delegated`)."""
    return Delegated(service, method)


class Workspace:
    """A log and its projections, with the keys of the parties it signs for."""

    def __init__(self, path: Path, store: LogStore, log_key: SigningKey, clock: Clock) -> None:
        self.path = path
        self.store = store
        self.log_key = log_key
        self.clock = clock
        self.keys = KeyFolder(path)
        self.verifier = NoteVerifier.parse(verifier_key(store.origin, log_key.public))
        self.ledger = KeyedLedger(store, self.keys, clock, self.verifier)
        self.provenance = Provenance(self.ledger)
        self.metering = Metering(self.ledger)
        self.sharing = Sharing(self.ledger, self.provenance)
        self.valuing = Valuing(self.provenance, self.sharing)
        self.reports = Reports(self.ledger)

    @property
    def origin(self) -> str:
        return self.store.origin

    @property
    def database_url(self) -> str:
        return self.store.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ the log

    append = delegate("ledger", KeyedLedger.append)
    append_many = delegate("ledger", KeyedLedger.append_many)
    entry_at = delegate("ledger", KeyedLedger.entry_at)

    def append_signed(self, entries: Iterable[bytes | SignedEntry]) -> list[int]:
        """Append entries signed elsewhere (wire bytes); every signature is checked first."""
        parsed = [item if isinstance(item, SignedEntry) else parse_entry(item) for item in entries]
        return self.ledger.append_signed(parsed)

    def signing_key(self, party: PartyId) -> SigningKey:
        """The key of a party this workspace signs for (NotFoundError otherwise)."""
        return self.keys.party_key(party)

    # ----------------------------------------------------------- provenance

    register_party = delegate("provenance", Provenance.register_party)
    payout_reference = delegate("provenance", Provenance.payout_reference)
    resolve_party = delegate("provenance", Provenance.resolve_party)
    resolve_asset = delegate("provenance", Provenance.resolve_asset)
    change_payout_reference = delegate("provenance", Provenance.change_payout_reference)
    parties = delegate("provenance", Provenance.parties)
    party_entry = delegate("provenance", Provenance.party_entry)
    register_asset = delegate("provenance", Provenance.register_asset)
    register_described = delegate("provenance", Provenance.register_described)
    register_many = delegate("provenance", Provenance.register_many)
    register_data = delegate("provenance", Provenance.register_data)
    register_cohort = delegate("provenance", Provenance.register_cohort)
    register_labelling_batch = delegate("provenance", Provenance.register_labelling_batch)
    register_model = delegate("provenance", Provenance.register_model)
    register_service = delegate("provenance", Provenance.register_service)
    register_compute_grant = delegate("provenance", Provenance.register_compute_grant)
    asset = delegate("provenance", Provenance.asset)
    assets = delegate("provenance", Provenance.assets)
    asset_entry = delegate("provenance", Provenance.asset_entry)
    contribute = delegate("provenance", Provenance.contribute)
    accept_contribution = delegate("provenance", Provenance.accept_contribution)
    proposed_contributions = delegate("provenance", Provenance.proposed_contributions)
    file_claim = delegate("provenance", Provenance.file_claim)
    claims = delegate("provenance", Provenance.claims)
    overlaps = delegate("provenance", Provenance.overlaps)
    record_set = delegate("provenance", Provenance.record_set)
    grant_right = delegate("provenance", Provenance.grant_right)
    revoke_right = delegate("provenance", Provenance.revoke_right)
    delegations = delegate("provenance", Provenance.delegations)
    declared_share_total = delegate("provenance", Provenance.declared_share_total)
    contributions = delegate("provenance", Provenance.contributions)
    run = delegate("provenance", Provenance.run)
    runs = delegate("provenance", Provenance.runs)
    run_entry = delegate("provenance", Provenance.run_entry)
    track = delegate("provenance", Provenance.track)
    step = delegate("provenance", Provenance.step)
    lineage = delegate("provenance", Provenance.lineage)
    contributions_feeding = delegate("provenance", Provenance.contributions_feeding)
    models_using = delegate("provenance", Provenance.models_using)
    prove_record = delegate("provenance", Provenance.prove_record)

    # ------------------------------------------------------------- metering

    pseudonym = delegate("metering", Metering.pseudonym)
    record_usage = delegate("metering", Metering.record_usage)
    record_usage_many = delegate("metering", Metering.record_usage_many)
    usage_units = delegate("metering", Metering.usage_units)
    define_meter = delegate("metering", Metering.define_meter)
    meters = delegate("metering", Metering.meters)
    ingest_usage = delegate("metering", Metering.ingest)
    consume_usage = delegate("metering", Metering.consume)
    rotate_usage_key = delegate("metering", Metering.rotate_key)
    set_privacy_budget = delegate("metering", Metering.set_privacy_budget)
    release_usage_statistics = delegate("metering", Metering.release_usage_statistics)

    def meter(self, service: AssetOrName) -> ServiceMeter:
        """The metering calls of one service: `ws.meter(svc).ingest(events)`."""
        return ServiceMeter(self.metering, service)

    # -------------------------------------------------------------- sharing

    record_revenue = delegate("sharing", Sharing.record_revenue)
    set_policy = delegate("sharing", Sharing.set_policy)
    record_valuation = delegate("sharing", Sharing.record_valuation)
    value_inputs = delegate("valuing", Valuing.value_inputs)
    grant_consent = delegate("sharing", Sharing.grant_consent)
    withdraw_consent = delegate("sharing", Sharing.withdraw_consent)
    set_tariff = delegate("metering", Metering.set_tariff)
    tariffs = delegate("metering", Metering.tariffs)
    bill_metered_usage = delegate("metering", Metering.bill_usage)
    bill_recorded_usage = delegate("sharing", Sharing.bill_usage)
    usage_receipt = delegate("metering", Metering.receipt)
    prepare_receipts = delegate("metering", Metering.prepare_receipts)

    @overload
    def bill_usage(
        self, service: AssetOrName, period: str, *, unit_price: str, currency: str, by: PartyId
    ) -> RevenueId: ...
    @overload
    def bill_usage(
        self,
        service: AssetOrName,
        period: str | Period,
        *,
        currency: str,
        evidence: bytes | str | Path | None = None,
        by: PartyRef | None = None,
    ) -> Bill: ...
    def bill_usage(self, service: Any, period: Any, **options: Any) -> RevenueId | Bill:
        """Bill a period's usage of `service`: its metered usage (usage batches) at the
        tariffs in force (`Metering.bill_usage`, returns the `Bill`), or, given
        `unit_price`, its `usage.recorded` units at that price (`Sharing.bill_usage`,
        returns the revenue id)."""
        if options.get("unit_price") is not None:
            return self.sharing.bill_usage(service, period, **options)
        options.pop("unit_price", None)
        return self.metering.bill_usage(service, period, **options)

    share = delegate("sharing", Sharing.share)
    statement = delegate("sharing", Sharing.statement)
    statement_proof = delegate("sharing", Sharing.statement_proof)
    export_payout = delegate("sharing", Sharing.export_payout)
    revenue_entries = delegate("sharing", Sharing.revenue_entries)

    # -------------------------------------------------------------- reports

    report_data = delegate("reports", Reports.report_data)
    publish_report = delegate("reports", Reports.publish_report)

    # ---------------------------------------------------------- integrity

    def verify(
        self, *, workers: int | None = None, progress: Callable[[int, int], None] | None = None
    ) -> AuditReport:
        """Re-derive the log from its bytes, the projections from a replay, and every usage
        batch's root, count, aggregate and totals from its events; raise on the first fault.

        Raises:
            VerificationError: naming the first bad entry, node, checkpoint or projection row.
        """
        identity = self.store.log_identity()
        if identity is None or identity != (self.origin, self.log_key.public):
            raise VerificationError(
                "the database does not belong to this workspace's log key and origin",
                hint="open the workspace folder that created this database",
            )
        # One snapshot for every read, so that appends committed meanwhile (other processes
        # may write the whole time) neither pass for tampering nor go half-judged.
        with self.store.snapshot() as snapshot, self.store.projection_checker() as replay:
            report = audit(
                snapshot, self.verifier, workers=workers, progress=progress, observe=replay.feed
            )
            replay.compare(snapshot)
            usage = check_usage(snapshot.connection)
        report.usage_batches_checked = usage.batches
        report.usage_events_checked = usage.events
        report.usage_bills_checked = usage.bills
        return report

    def rebuild(self) -> int:
        """Drop the projection tables and replay the log into them; return the entries replayed."""
        return self.store.rebuild()


# ---------------------------------------------------------------- opening


def _read_settings(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise WorkspaceNotFoundError(
            f"workspace folder {path} does not exist",
            hint=f"create one with `quotepart init {path}`, or pass --workspace",
        )
    if not path.is_dir():
        raise WorkspaceNotFoundError(
            f"{path} is a file, not a workspace folder", hint="pass a folder"
        )
    settings_path = path / SETTINGS_FILE
    if not settings_path.exists():
        raise WorkspaceNotFoundError(
            f"{path} is not a quotepart workspace (it has no {SETTINGS_FILE})",
            hint=f"create one with `quotepart init {path}`, or pass --workspace DIR",
        )
    try:
        settings = json.loads(settings_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{settings_path} is unreadable: {exc}", hint="restore it from a backup"
        ) from exc
    if not isinstance(settings, dict) or settings.get("format") != FORMAT_VERSION:
        raise InputError(
            f"{settings_path} is not a workspace settings file this version reads",
            hint="upgrade quotepart",
        )
    return settings


def _write_settings(folder: Path, settings: dict[str, Any]) -> None:
    write_private_file(folder / SETTINGS_FILE, (json.dumps(settings, indent=2) + "\n").encode())


def _database_url(path: Path, settings: dict[str, Any], override: str | None) -> str:
    """The URL to connect with: a password comes from the URL itself, else from
    `QUOTEPART_DATABASE_PASSWORD`, else from `keys/database.password`, else from libpq
    (`~/.pgpass`, `PGPASSWORD`)."""
    url = override or settings.get("database_url")
    if not url:
        return sqlite_url(path / DATABASE_FILE)
    url = str(url)
    if url.startswith("sqlite") or split_password(url)[1] is not None:
        return url
    password = os.environ.get(PASSWORD_ENV) or KeyFolder(path).database_password()
    return with_password(url, password) if password else url


def _move_password_out(folder: Path, settings: dict[str, Any]) -> None:
    """A workspace.json written before passwords were kept apart: move its password out."""
    url = settings.get("database_url")
    if not url:
        return
    bare, password = split_password(str(url))
    if password is None:
        return
    KeyFolder(folder).save_database_password(password)
    _write_settings(folder, {**settings, "database_url": bare})


def open_workspace(
    path: str | os.PathLike[str],
    *,
    database_url: str | None = None,
    clock: Clock = utc_now,
    read_only: bool | None = None,
) -> Workspace:
    """Open an existing workspace folder (and its database).

    A workspace on read-only media (or opened with `read_only=True`) can be read (verify,
    the log, statements, lineage, exports) and creates no file; any command that would
    write refuses with `ReadOnlyWorkspaceError`. `read_only=None` finds out by trying.

    Raises:
        WorkspaceNotFoundError: the folder does not exist or is not a workspace.
        StorageError: the database cannot be reached.
    """
    folder = Path(path)
    settings = _read_settings(folder)
    url = _database_url(folder, settings, database_url)
    _move_password_out(folder, settings)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise WorkspaceNotFoundError(
            f"the workspace database {url.removeprefix('sqlite:///')} is missing",
            hint="restore it from a backup, or create a new workspace with `quotepart init`",
        )
    on_read_only_media = not _writable(folder)
    read_only = on_read_only_media if read_only is None else read_only or on_read_only_media
    log_key = KeyFolder(folder).log_key()
    engine = open_engine(url, read_only=read_only, immutable=on_read_only_media)
    try:
        migrate(engine, read_only=read_only)
        store = LogStore(
            engine,
            origin=str(settings["origin"]),
            log_key=None if read_only else log_key,
            max_entry_bytes=_entry_limit(settings.get("max_entry_bytes", MAX_ENTRY_BYTES)),
        )
        identity = store.log_identity()
        if identity is not None and identity != (store.origin, log_key.public):
            raise InputError(
                f"the database at {engine.url.render_as_string(hide_password=True)} holds the log "
                f"{identity[0]!r}, not this workspace's {store.origin!r}",
                hint="point --database-url at this workspace's own database",
            )
        return Workspace(folder, store, log_key, clock)
    except BaseException:
        engine.dispose()
        raise


def _entry_limit(value: object) -> int:
    """A workspace's `max_entry_bytes`: a whole number from 4 KiB to the parsing ceiling."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 4096 <= value <= ENTRY_BYTES_CEILING
    ):
        raise InputError(
            f"max_entry_bytes in {SETTINGS_FILE} is {value!r}",
            hint=f"give a whole number of bytes from 4096 to {ENTRY_BYTES_CEILING:,} "
            f"(the default is {MAX_ENTRY_BYTES:,})",
        )
    return value


def _writable(folder: Path) -> bool:
    """Whether files can be created in `folder` (a read-only mount says no, even to root)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".quotepart-probe-"):
            return True
    except OSError:
        return False


def init_workspace(
    path: str | os.PathLike[str],
    *,
    database_url: str | None = None,
    origin: str | None = None,
    clock: Clock = utc_now,
    max_entry_bytes: int = MAX_ENTRY_BYTES,
) -> Workspace:
    """Create a workspace folder with a new log key, and its (migrated, empty) database.

    `max_entry_bytes` is the largest entry this workspace appends (kept in workspace.json).

    Raises:
        InputError: the folder already holds a workspace, or the database holds another log.
        StorageError: the database cannot be reached (nothing is left behind).
    """
    folder = Path(path)
    _entry_limit(max_entry_bytes)
    if (folder / SETTINGS_FILE).exists():
        raise InputError(
            f"{folder} is already a quotepart workspace", hint="open it, or choose another folder"
        )
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file", hint="choose a folder name for the workspace")
    keys = KeyFolder(folder)
    leftovers = [keys.log_key_path, folder / DATABASE_FILE]
    if any(path.exists() for path in leftovers):
        raise InputError(
            f"{folder} holds the remains of an interrupted `quotepart init` (no {SETTINGS_FILE})",
            hint=f"nothing was recorded there yet: delete {folder} and run init again",
        )
    if origin is None:
        from ulid import ULID  # imported here: opening a workspace does not need it

        origin = f"quotepart.local/{str(ULID.from_datetime(clock())).lower()}"
    verifier_key(origin, SigningKey.generate().public)  # checks the origin is a valid key name
    url = _database_url(folder, {}, database_url)
    stored_url, password = split_password(database_url) if database_url else (None, None)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    engine = None
    try:
        if database_url:
            engine = open_engine(url)  # reach a server before writing anything
        log_key = keys.create_log_key()
        made.append(keys.log_key_path)
        if engine is None:
            made.append(folder / DATABASE_FILE)
            engine = open_engine(url)
        migrate(engine)
        store = LogStore(engine, origin=origin, log_key=log_key, max_entry_bytes=max_entry_bytes)
        store.claim(log_key.public)
        if password is not None:  # kept apart, 0600, so workspace.json can be shared
            made.append(keys.database_password_path)
            keys.save_database_password(password)
        settings: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "origin": origin,
            "database_url": stored_url,
        }
        if max_entry_bytes != MAX_ENTRY_BYTES:
            settings["max_entry_bytes"] = max_entry_bytes
        _write_settings(folder, settings)
        return Workspace(folder, store, log_key, clock)
    except BaseException:
        if engine is not None:
            engine.dispose()
        for item in made:
            for suffix in ("", "-wal", "-shm"):
                Path(str(item) + suffix).unlink(missing_ok=True)
        if keys.keys_dir.exists() and not any(keys.keys_dir.iterdir()):
            keys.keys_dir.rmdir()
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise


__all__ = [
    "AssetRecord",
    "ContributionRecord",
    "PartyRecord",
    "QuotepartError",
    "Workspace",
    "init_workspace",
    "open_workspace",
]
