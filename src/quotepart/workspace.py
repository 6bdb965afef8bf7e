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

Layout of a workspace folder:

    workspace.json      origin and (optionally) the database URL
    quotepart.db        the SQLite database, unless the URL points elsewhere
    keys/log.key        the log's checkpoint signing key (0600)
    keys/party-<ULID>.key  keys of the parties this workspace signs for (0600)
    keys/party-<ULID>.payout.json  payout references, kept off the log (0600)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import select
from ulid import ULID

from quotepart.errors import (
    InputError,
    NotFoundError,
    QuotepartError,
    SignatureError,
    UnknownAuthorError,
    VerificationError,
    WorkspaceNotFoundError,
)
from quotepart.ids import Clock, Digest, PartyId, utc_now
from quotepart.log import (
    AuditReport,
    NoteVerifier,
    SignedEntry,
    SigningKey,
    audit,
    parse_entry,
    sign_entry,
    verifier_key,
)
from quotepart.log.kinds import (
    AssetRegistered,
    ContributionRecorded,
    EntryBody,
    PartyRegistered,
)
from quotepart.metering import UsageRecorder
from quotepart.money import parse_ratio
from quotepart.provenance.parties import PayoutSecret
from quotepart.provenance.recorder import ProvenanceRecorder
from quotepart.report.recorder import ReportRecorder
from quotepart.sharing.recorder import SharingRecorder
from quotepart.store import LogStore, migrate, open_engine, sqlite_url
from quotepart.store.projections import digest_prefix
from quotepart.store.schema import assets, contributions, parties

SETTINGS_FILE = "workspace.json"
DATABASE_FILE = "quotepart.db"
KEYS_DIR = "keys"
LOG_KEY_FILE = "log.key"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class PartyRecord:
    party: PartyId
    name: str
    roles: tuple[str, ...]
    leaf_index: int


@dataclass(frozen=True, slots=True)
class AssetRecord:
    asset: Digest
    asset_kind: str
    name: str
    registered_by: PartyId
    leaf_index: int


@dataclass(frozen=True, slots=True)
class ContributionRecord:
    party: PartyId
    asset: Digest
    role: str
    share: Fraction
    leaf_index: int


class Workspace(ProvenanceRecorder, SharingRecorder, UsageRecorder, ReportRecorder):
    """A log and its projections, with the keys of the parties it signs for."""

    def __init__(self, path: Path, store: LogStore, log_key: SigningKey, clock: Clock) -> None:
        self.path = path
        self.store = store
        self.log_key = log_key
        self.clock = clock
        self.verifier = NoteVerifier.parse(verifier_key(store.origin, log_key.public))

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

    # ------------------------------------------------------------------ keys

    def _party_key_path(self, party: PartyId) -> Path:
        return self.path / KEYS_DIR / f"party-{party.ulid}.key"

    def signing_key(self, party: PartyId) -> SigningKey:
        path = self._party_key_path(party)
        if not path.exists():
            raise NotFoundError(
                f"this workspace holds no key for {party}",
                hint="that party signs its own entries elsewhere; submit them with `quotepart log append`",
            )
        return SigningKey.load(path)

    # ------------------------------------------------------------- appending

    def append(self, body: EntryBody, *, author: PartyId) -> int:
        """Sign `body` with the author's key held here and append it; return its leaf index."""
        return self.append_many([(body, author)])[0]

    def append_many(self, items: Sequence[tuple[EntryBody, PartyId]]) -> list[int]:
        """Sign and append many entries in one transaction with one checkpoint."""
        keys: dict[PartyId, SigningKey] = {}
        entries = []
        for body, author in items:
            if author not in keys:
                keys[author] = self._registered_signing_key(author)
            entries.append(sign_entry(body, author=author, key=keys[author], clock=self.clock))
        return self.store.append(entries, signed_here=True)

    def _registered_signing_key(self, party: PartyId) -> SigningKey:
        """The key held here for `party`, checked against the key the log registered for it,
        since the store does not re-verify signatures made in this process."""
        key = self.signing_key(party)
        registered = self.store.party_key(party)
        if registered is None:
            raise UnknownAuthorError(
                f"{party} is not registered in this log", hint="register the party first"
            )
        if registered != key.public:
            raise SignatureError(
                f"the key file for {party} does not hold the key the log registered for it",
                hint=f"restore {self._party_key_path(party)} from a backup",
            )
        return key

    def append_signed(self, entries: Iterable[bytes | SignedEntry]) -> list[int]:
        """Append entries signed elsewhere (wire bytes); every signature is checked first."""
        parsed = [item if isinstance(item, SignedEntry) else parse_entry(item) for item in entries]
        return self.store.append(parsed)

    # ----------------------------------------------------------- the facts

    def register_party(
        self,
        name: str,
        *,
        roles: Sequence[str] = ("contributor",),
        agent_type: str = "organisation",
        payout_reference: str | None = None,
        key: SigningKey | None = None,
    ) -> PartyId:
        """Create a party with its own key (kept in this workspace) and register it in the log.

        `agent_type` is person, organisation, community or software. A payout reference
        (IBAN, mobile-money number) stays in this workspace's keys folder; the log holds
        only a salted commitment to it.
        """
        party = PartyId.new(self.clock)
        key = key or SigningKey.generate()
        payout = PayoutSecret.new(payout_reference) if payout_reference is not None else None
        body = PartyRegistered(
            party,
            name,
            tuple(sorted(set(roles))),
            key.public,
            agent_type,
            payout.commitment() if payout else None,
        )
        entry = sign_entry(body, author=party, key=key, clock=self.clock)
        key_path = self._party_key_path(party)
        payout_path = self._payout_path(party)
        key.save(key_path)  # after sign_entry validated the body
        try:
            if payout is not None:
                payout.save(payout_path)
            self.store.append([entry], signed_here=True)
        except BaseException:
            key_path.unlink(missing_ok=True)
            payout_path.unlink(missing_ok=True)
            raise
        return party

    def _payout_path(self, party: PartyId) -> Path:
        return self.path / KEYS_DIR / f"party-{party.ulid}.payout.json"

    def payout_reference(self, party: PartyId) -> str:
        """The clear payout reference of `party`, checked against its commitment in the log.

        Raises:
            NotFoundError: no reference is held here for that party.
            VerificationError: the file does not open the commitment the party signed.
        """
        path = self._payout_path(party)
        if not path.exists():
            raise NotFoundError(
                f"this workspace holds no payout reference for {party}",
                hint="the party registered without one, or elsewhere",
            )
        secret = PayoutSecret.load(path)
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(parties.c.leaf_index).where(parties.c.party_id == str(party))
            ).first()
        if row is None:
            raise UnknownAuthorError(
                f"{party} is not registered in this log", hint="register it first"
            )
        body = self.entry_at(int(row[0])).body()
        assert isinstance(body, PartyRegistered)
        if body.payout_commitment is None:
            raise VerificationError(
                f"{party} registered without a payout commitment", hint="nothing to open"
            )
        secret.open(body.payout_commitment)
        return secret.reference

    def register_asset(
        self, content: bytes | Digest, *, asset_kind: str, name: str, by: PartyId
    ) -> Digest:
        """Register content (bytes, or a digest computed elsewhere); the same content twice
        returns the same asset without a new entry."""
        digest = content if isinstance(content, Digest) else Digest.of_bytes(content)
        if self.asset(digest) is None:
            size = None if isinstance(content, Digest) else len(content)
            self.append(AssetRegistered(digest, asset_kind, name, size=size), author=by)
        return digest

    def record_contribution(
        self, party: PartyId, asset: Digest, *, role: str, share: Fraction | str | int, by: PartyId
    ) -> int:
        share_value = parse_ratio(share, what=f"the share of {party}")
        return self.append(ContributionRecorded(party, asset, role, share_value), author=by)

    # ------------------------------------------------------------ reading

    def parties(self) -> list[PartyRecord]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(parties).order_by(parties.c.leaf_index)).all()
        return [
            PartyRecord(PartyId.parse(r.party_id), r.name, tuple(r.roles.split(",")), r.leaf_index)
            for r in rows
        ]

    def asset(self, digest: Digest) -> AssetRecord | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(assets).where(
                    assets.c.digest_prefix == digest_prefix(str(digest)),
                    assets.c.digest == str(digest),
                )
            ).first()
        if row is None:
            return None
        return AssetRecord(
            Digest.parse(row.digest),
            row.asset_kind,
            row.name,
            PartyId.parse(row.registered_by),
            row.leaf_index,
        )

    def assets(self) -> list[AssetRecord]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(assets).order_by(assets.c.leaf_index)).all()
        return [
            AssetRecord(
                Digest.parse(r.digest),
                r.asset_kind,
                r.name,
                PartyId.parse(r.registered_by),
                r.leaf_index,
            )
            for r in rows
        ]

    def contributions(self) -> list[ContributionRecord]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(contributions).order_by(contributions.c.leaf_index)).all()
        return [
            ContributionRecord(
                PartyId.parse(r.party_id),
                Digest.parse(r.asset),
                r.role,
                Fraction(r.share),
                r.leaf_index,
            )
            for r in rows
        ]

    # ---------------------------------------------------------- integrity

    def verify(
        self, *, workers: int | None = None, progress: Callable[[int, int], None] | None = None
    ) -> AuditReport:
        """Re-derive the log from its bytes and the projections from a replay; raise on the first fault.

        Raises:
            VerificationError: naming the first bad entry, node, checkpoint or projection row.
        """
        identity = self.store.log_identity()
        if identity is None or identity != (self.origin, self.log_key.public):
            raise VerificationError(
                "the database does not belong to this workspace's log key and origin",
                hint="open the workspace folder that created this database",
            )
        with self.store.projection_checker() as replay:
            report = audit(
                self.store, self.verifier, workers=workers, progress=progress, observe=replay.feed
            )
            replay.compare()
        return report

    def rebuild(self) -> int:
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


def _database_url(path: Path, settings: dict[str, Any], override: str | None) -> str:
    url = override or settings.get("database_url")
    return str(url) if url else sqlite_url(path / DATABASE_FILE)


def open_workspace(
    path: str | os.PathLike[str], *, database_url: str | None = None, clock: Clock = utc_now
) -> Workspace:
    """Open an existing workspace folder (and its database).

    Raises:
        WorkspaceNotFoundError: the folder does not exist or is not a workspace.
        StorageError: the database cannot be reached.
    """
    folder = Path(path)
    settings = _read_settings(folder)
    url = _database_url(folder, settings, database_url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise WorkspaceNotFoundError(
            f"the workspace database {url.removeprefix('sqlite:///')} is missing",
            hint="restore it from a backup, or create a new workspace with `quotepart init`",
        )
    log_key = SigningKey.load(folder / KEYS_DIR / LOG_KEY_FILE)
    engine = open_engine(url)
    try:
        migrate(engine)
        store = LogStore(engine, origin=str(settings["origin"]), log_key=log_key)
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


def init_workspace(
    path: str | os.PathLike[str],
    *,
    database_url: str | None = None,
    origin: str | None = None,
    clock: Clock = utc_now,
) -> Workspace:
    """Create a workspace folder with a new log key, and its (migrated, empty) database.

    Raises:
        InputError: the folder already holds a workspace, or the database holds another log.
        StorageError: the database cannot be reached (nothing is left behind).
    """
    folder = Path(path)
    if (folder / SETTINGS_FILE).exists():
        raise InputError(
            f"{folder} is already a quotepart workspace", hint="open it, or choose another folder"
        )
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file", hint="choose a folder name for the workspace")
    leftovers = [folder / KEYS_DIR / LOG_KEY_FILE, folder / DATABASE_FILE]
    if any(path.exists() for path in leftovers):
        raise InputError(
            f"{folder} holds the remains of an interrupted `quotepart init` (no {SETTINGS_FILE})",
            hint=f"nothing was recorded there yet: delete {folder} and run init again",
        )
    origin = origin or f"quotepart.local/{str(ULID.from_datetime(clock())).lower()}"
    verifier_key(origin, SigningKey.generate().public)  # checks the origin is a valid key name
    url = database_url or sqlite_url(folder / DATABASE_FILE)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    keys_dir = folder / KEYS_DIR
    made: list[Path] = []
    engine = None
    try:
        if database_url:
            engine = open_engine(url)  # reach a server before writing anything
        keys_dir.mkdir(mode=0o700, exist_ok=True)
        log_key = SigningKey.generate()
        log_key.save(keys_dir / LOG_KEY_FILE)
        made.append(keys_dir / LOG_KEY_FILE)
        if engine is None:
            made.append(folder / DATABASE_FILE)
            engine = open_engine(url)
        migrate(engine)
        store = LogStore(engine, origin=origin, log_key=log_key)
        store.claim(log_key.public)
        settings = {"format": FORMAT_VERSION, "origin": origin, "database_url": database_url}
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        return Workspace(folder, store, log_key, clock)
    except BaseException:
        if engine is not None:
            engine.dispose()
        for item in made:
            for suffix in ("", "-wal", "-shm"):
                Path(str(item) + suffix).unlink(missing_ok=True)
        if keys_dir.exists() and not any(keys_dir.iterdir()):
            keys_dir.rmdir()
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
