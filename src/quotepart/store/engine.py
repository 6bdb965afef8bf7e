"""Engines for SQLite (embedded, WAL) and PostgreSQL, and the migrations that shape them."""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc
from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect
from sqlalchemy.engine import make_url

from quotepart.errors import InputError, ReadOnlyWorkspaceError, StorageError

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another's write lock before failing with StorageError.

Read each time an engine is opened, so an embedding program (or a test) may set it first.
"""

_SQLITE_BUSY = 5  # SQLITE_BUSY: another connection holds the lock (primary result code)
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full

_MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION_RE = re.compile(r"^(down_revision|revision) = (None|\"([^\"]+)\")$", re.M)


@functools.cache
def head_revision() -> str:
    """The newest migration in `migrations/versions` (a test checks it against Alembic's head).

    Read from the migration files' own `revision` / `down_revision` lines, so that opening
    a workspace whose schema is current reads one row and never imports Alembic (which
    costs more than the rest of the open), and adding a migration needs no edit here.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _MIGRATIONS.glob("*.py"):
        for field, _, value in _REVISION_RE.findall(path.read_text()):
            if value:
                (revisions if field == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise StorageError(
            f"quotepart's migrations have {len(heads)} heads ({', '.join(sorted(heads))})",
            hint="this installation is damaged: reinstall quotepart",
        )
    return heads.pop()


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as libpq writes them) and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def split_password(url: str) -> tuple[str, str | None]:
    """`url` without its password, and the password (None when it has none).

    split_password("postgresql://app:s3cret@db/ledger")  # ('postgresql://app@db/ledger', 's3cret')
    """
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return url, None  # not a URL: `open_engine` says so, with a hint
    if parsed.password is None:
        return url, None
    password = str(parsed.password)
    return parsed._replace(password=None).render_as_string(hide_password=False), password


def with_password(url: str, password: str) -> str:
    """`url` with `password` (the one it had, if any, replaced)."""
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def open_engine(url: str, *, read_only: bool = False, immutable: bool = False) -> Engine:
    """An engine for `url`; raises StorageError with a hint when it cannot be reached.

    `read_only` opens SQLite with `mode=ro` and sets no pragma that writes; `immutable`
    (for a database on read-only media, which no one can be writing) also tells SQLite
    that nothing changes the file, so it needs no `-shm` or lock files beside it.
    PostgreSQL connections are made read-only by the server's own rules: appends are
    refused by the store, which has no log key then.
    """
    try:
        parsed = make_url(normalise_url(url))
    except sqlalchemy.exc.ArgumentError as exc:
        raise InputError(
            f"not a database URL: {url!r}",
            hint="use postgresql://user@host:5432/dbname, or leave it out for the embedded SQLite",
        ) from exc
    if parsed.get_backend_name() == "sqlite" and read_only:
        engine = _read_only_sqlite(parsed.database or "", immutable=immutable)
    elif parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    else:
        raise InputError(
            f"unsupported database {parsed.get_backend_name()!r}",
            hint="quotepart runs on SQLite (embedded) or PostgreSQL",
        )
    try:
        with engine.connect():
            pass
    except (sqlalchemy.exc.OperationalError, StorageError) as exc:
        engine.dispose()
        cause = exc.__cause__ if isinstance(exc, StorageError) else exc
        detail = getattr(cause, "orig", None) or cause
        if parsed.get_backend_name() == "sqlite" and _no_space_beside(parsed.database):
            raise StorageError(
                f"the disk is full: cannot open the database {parsed.database} "
                f"({str(detail).strip().splitlines()[0]})",
                hint="free some space on the disk holding the database, then retry",
            ) from exc
        raise StorageError(
            f"cannot reach database {parsed.render_as_string(hide_password=True)}: "
            f"{str(detail).strip().splitlines()[0]}",
            hint="check that the server runs and the URL (host, port, user, database) is right",
        ) from exc
    _translate_errors(engine)
    return engine


class WalCheckpointer:
    """Copies SQLite's write-ahead log back into the database file on a background thread.

    Left to SQLite, the checkpoint runs inside whichever commit crosses the threshold, so
    one append in ten stalls for a few hundred milliseconds; here a PASSIVE checkpoint
    (which never blocks writers or readers) runs beside the next batch instead. SQLite
    releases the GIL while it copies pages, so this uses a second core. If the thread
    falls behind, SQLite's own auto-checkpoint (`wal_autocheckpoint`) is still the backstop.
    Does nothing for PostgreSQL.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._wanted = threading.Event()
        self._stopping = False
        self.last_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._thread = threading.Thread(target=self._run, name="quotepart-wal", daemon=True)
            self._thread.start()

    def request(self) -> None:
        if self._thread is not None:
            self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            try:
                with self._engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as exc:  # the backstop still checkpoints; keep it for diagnosis
                self.last_error = exc

    def close(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wanted.set()
            self._thread.join(timeout=30)
            self._thread = None


def _translate_errors(engine: Engine) -> None:
    """Database failures surface as StorageError at the store's edge, never as driver tracebacks.

    Integrity errors stay as they are: the store checks facts before writing, so one
    reaching a caller is our bug, and it must not be mistaken for an outage.
    """

    @event.listens_for(engine, "handle_error")
    def _on_error(context: sqlalchemy.engine.ExceptionContext) -> None:
        error = context.sqlalchemy_exception
        if (
            isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
            or type(error) is sqlalchemy.exc.DatabaseError
        ):
            original = context.original_exception
            code = getattr(original, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            if primary == _SQLITE_FULL or getattr(original, "sqlstate", None) == _PG_DISK_FULL:
                raise StorageError(
                    f"the disk is full: cannot write the database {_where(engine)}",
                    hint="free some space on the disk holding the database, then retry; "
                    "the failed write was rolled back, nothing of it was kept",
                ) from error
            if primary == _SQLITE_BUSY:
                raise StorageError(
                    f"the database {_where(engine)} is locked by another writer "
                    f"(waited {SQLITE_BUSY_TIMEOUT_MS / 1000:g} s)",
                    hint="another program holds its write lock; retry when it has finished "
                    "(nothing was written)",
                ) from error
            detail = str(original).strip().splitlines()
            raise StorageError(
                f"database error: {detail[0] if detail else type(context.original_exception).__name__}",
                hint="check that the database is reachable and not locked by another program, then retry",
            ) from error


def _no_space_beside(database: str | None) -> bool:
    """True when the folder of a SQLite file is on a disk with no block left to write.

    SQLite reports a full disk while opening as a bare "disk I/O error" (it cannot make
    its WAL index), so a failed open looks at the disk before naming the cause.
    """
    if not database or database == ":memory:":
        return False
    try:
        usage = os.statvfs(Path(database).resolve().parent)
    except OSError:
        return False
    return usage.f_bavail == 0 or usage.f_favail == 0


def _where(engine: Engine) -> str:
    """The database file (SQLite) or the URL without its password (PostgreSQL)."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def _read_only_sqlite(database: str, *, immutable: bool) -> Engine:
    import sqlite3
    from urllib.parse import quote

    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    uri = f"file:{quote(str(Path(database).resolve()))}?{flags}"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(
            uri, uri=True, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
        )

    engine = create_engine("sqlite://", creator=connect)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # explicit BEGIN, as for the writable engine

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def _configure_sqlite(engine: Engine) -> None:
    """WAL, NORMAL sync (durable against a killed process), and explicit transactions.

    pysqlite's own transaction handling is switched off so that writers can take the
    lock up front with BEGIN IMMEDIATE: two processes then queue for the log head
    instead of both reading one tree size and failing to upgrade their locks.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: leaf-hash index inserts are random
        cursor.execute("PRAGMA wal_autocheckpoint=16384")  # 64 MiB of WAL between checkpoints
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("quotepart_writer", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def writer(engine: Engine) -> Iterator[Connection]:
    """One write transaction that holds the log's write lock from its first statement.

    SQLite: BEGIN IMMEDIATE. PostgreSQL: the caller locks the log head row FOR UPDATE.
    Commits on success, rolls back on any exception.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(quotepart_writer=True)
        with connection.begin():
            yield connection


def bulk_insert(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert many rows (tuples in `columns` order) with the driver's own executemany.

    SQLAlchemy's per-row parameter processing costs more than SQLite's insert itself on
    the append path; our values are already plain ints, strings and bytes, so they go
    to the driver as they are.
    """
    if not rows:
        return
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    preparer = conn.dialect.identifier_preparer
    statement = (
        f"INSERT INTO {preparer.format_table(table)} "
        f"({', '.join(preparer.quote(column) for column in columns)}) "
        f"VALUES ({', '.join(marker for _ in columns)})"
    )
    conn.exec_driver_sql(statement, list(rows))


def select_where_in(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    key_column: str,
    keys: Sequence[Any],
    *,
    chunk: int = 500,
) -> list[tuple[Any, ...]]:
    """`SELECT columns FROM table WHERE key_column IN (keys)`, in chunks, through the driver.

    The append path asks this for every key of a batch; building the same query with
    SQLAlchemy's expression language costs twice as much as running it.
    """
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    preparer = conn.dialect.identifier_preparer
    head = (
        f"SELECT {', '.join(preparer.quote(column) for column in columns)} "
        f"FROM {preparer.format_table(table)} WHERE {preparer.quote(key_column)} IN "
    )
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), chunk):
        part = tuple(keys[start : start + chunk])
        result = conn.exec_driver_sql(head + f"({', '.join(marker for _ in part)})", part)
        rows.extend(tuple(row) for row in result)
    return rows


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "quotepart.store:migrations")
    config.attributes["connection"] = connection
    return config


def _read_revision(connection: Connection) -> str | None:
    """The revision stamped in `alembic_version` (None before the first migration).

    The same row Alembic's `MigrationContext.get_current_revision()` reads, read with plain
    SQLAlchemy so that a current schema costs no Alembic import.
    """
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    if len(rows) > 1:
        raise StorageError(
            f"the database is stamped with {len(rows)} schema revisions",
            hint="quotepart's migrations form one line; repair the alembic_version table",
        )
    return str(rows[0][0]) if rows else None


def migrate(engine: Engine, *, read_only: bool = False) -> None:
    """Bring the schema to the newest revision (Alembic owns it on every backend).

    A schema already at `head_revision()` is left alone without importing Alembic; any other
    revision, or none, goes to Alembic's upgrade, which checks again under the write lock.

    Raises:
        ReadOnlyWorkspaceError: `read_only`, and the schema is behind (it cannot be migrated).
    """
    with engine.connect() as connection:
        revision = _read_revision(connection)
    if revision == head_revision():
        return
    if read_only:
        raise ReadOnlyWorkspaceError(
            f"the workspace is read-only and its database is at schema {revision}, older than "
            f"this quotepart's {head_revision()}",
            hint="open it once where it can be written (a copy will do) to migrate it, or "
            "read it with the quotepart version that wrote it",
        )
    from alembic import command

    with engine.connect() as connection:
        connection = connection.execution_options(quotepart_writer=True)
        with connection.begin():
            command.upgrade(_alembic_config(connection), "head")


def schema_is_current(engine: Engine) -> bool:
    return schema_revision(engine) == head_revision()


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _read_revision(connection)
