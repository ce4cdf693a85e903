"""Opening ctpipe's database: one engine per process and URL, migrated to head once, under a lock.

SQLite (the default, a file under ``CTPIPE_HOME``) and PostgreSQL through psycopg 3
(``postgresql+psycopg://…``) are supported. Several ctpipe processes may start at once against a
fresh database: the first to take the lock migrates, the others wait and find it done.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url

from ctpipe import locks, settings

MIGRATIONS = Path(__file__).with_name("migrations")
# Our own name, not Alembic's default: an operator may point ctpipe at the database MLflow
# migrates with Alembic too, and the two histories must not share one version table.
VERSION_TABLE = "ctpipe_alembic_version"
# pg_advisory_xact_lock key for migrations (any constant; ctpipe's own).
_PG_MIGRATION_LOCK = 0x63747069_7065_01  # "ctpipe", 1
# How long a SQLite writer waits for another before giving up (it queues, it does not fail).
SQLITE_BUSY_TIMEOUT_MS = 60_000
# An unreachable server fails in seconds, not after the OS's TCP timeout of minutes.
PG_CONNECT_TIMEOUT_S = 10
# Between two tries at switching a new SQLite database to WAL (see _use_wal).
_WAL_RETRY_S = 0.02


class DatabaseUnavailable(ValueError):
    """The database cannot be reached or used; the message is one line naming it (no password)."""


@dataclass(frozen=True, eq=False)
class Database:
    """An open, migrated database. ``name`` is the URL with its password redacted."""

    url: str = field(repr=False)
    engine: Engine = field(repr=False)
    name: str

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that writes; committed at the end of the block, else rolled back.

        On SQLite it starts with ``BEGIN IMMEDIATE``: a second writer then waits for the first
        (busy timeout) instead of failing with "database is locked" when it tries to upgrade a
        read transaction to a write one.
        """
        with self.unavailable_as_error(), \
                self.engine.execution_options(ctpipe_write=True).begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.unavailable_as_error(), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def unavailable_as_error(self) -> Iterator[None]:
        """Turn a lost or refused connection into ``DatabaseUnavailable`` (one line)."""
        try:
            yield
        except _connection_errors() as error:
            raise DatabaseUnavailable(f"{self.name}: {_reason(error, self.url)}") from error


def _connection_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [exc.OperationalError, exc.InterfaceError,
                                         sqlite3.OperationalError]
    with contextlib.suppress(ImportError):  # the raw COPY path raises psycopg's own errors
        import psycopg
        errors += [psycopg.OperationalError, psycopg.InterfaceError]
    return tuple(errors)


def _reason(error: BaseException, url: str) -> str:
    """The driver's reason on one line, e.g. ``Connection refused``."""
    orig = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    reason = lines[0] if lines else type(orig).__name__
    # psycopg: 'connection failed: connection to server at "127.0.0.1", port 1 failed:
    # Connection refused'; the URL already names the server, the tail is the reason.
    if "failed: " in reason:
        reason = reason.rsplit("failed: ", 1)[1]
    reason = re.sub(r"\s+", " ", reason)
    password = make_url(url).password if "://" in url else None
    return reason.replace(password, "***") if password else reason


_CACHE: dict[tuple[int, str], Database] = {}
_CACHE_LOCK = threading.Lock()


def open_database(url: str | None = None) -> Database:
    """The database at ``url`` (default ``settings.database_url()``), migrated to head.

    Engines are cached per process and URL, so migrations run once per process; a forked child
    opens its own (pooled connections must not cross a fork).
    Raises ``DatabaseUnavailable`` when the database cannot be reached; nothing is written then.
    """
    url = url or settings.database_url()
    key = (os.getpid(), url)
    with _CACHE_LOCK:
        db = _CACHE.get(key)
        if db is None:
            db = _open(url)
            _CACHE[key] = db
        return db


def dispose_databases() -> None:
    """Close every pooled connection this process holds (before dropping a test database)."""
    with _CACHE_LOCK:
        for db in _CACHE.values():
            db.engine.dispose()
        _CACHE.clear()


def _open(url: str) -> Database:
    name = settings.redact_uri(url)
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise DatabaseUnavailable(f"{name}: not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine, lock = _sqlite_engine(parsed, name)
    elif backend == "postgresql":
        engine, lock = _postgres_engine(parsed, name), contextlib.nullcontext()
    else:
        raise DatabaseUnavailable(
            f"{name}: ctpipe's database is SQLite (sqlite:///path) or PostgreSQL "
            "(postgresql+psycopg://user:password@host:port/database)")
    db = Database(url=url, engine=engine, name=name)
    try:
        with db.unavailable_as_error():
            _migrate(db, lock)
    except BaseException:
        engine.dispose()
        raise
    return db


def _sqlite_engine(parsed: URL, name: str) -> tuple[Engine, contextlib.AbstractContextManager]:
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise DatabaseUnavailable(
            f"{name}: give SQLite a file (sqlite:///path/ctpipe.db); an in-memory database "
            "would be a different one on every connection")
    path = Path(database).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseUnavailable(f"{name}: cannot create {path.parent} ({error})") from None
    engine = create_engine(parsed.set(database=str(path)))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # We issue BEGIN ourselves (below): the sqlite3 module's implicit transactions would
        # start a deferred one that fails instead of waiting when two writers meet.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer (monitoring reads while scoring logs); NORMAL
        # sync is durable across a process crash and only risks the last commits on power
        # loss, and makes a commit one write instead of two fsyncs.
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("ctpipe_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine, locks.held(path.with_name(path.name + ".migrate.lock"))


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode, waiting out another process that is switching it too.

    The first switch writes the file's header, in a write transaction of the rollback journal.
    SQLite does not call the busy handler for a connection that meets that write (waiting could
    deadlock), so two processes starting on a new database at once would see "database is
    locked" at once despite busy_timeout. We retry, within the same timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            # The low byte: extended codes (SQLITE_BUSY_RECOVERY, ...) are busy too.
            busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(_WAL_RETRY_S)


def _postgres_engine(parsed: URL, name: str) -> Engine:
    driver = parsed.get_driver_name()
    if driver == "psycopg2" and parsed.drivername == "postgresql":
        # A bare postgresql:// means psycopg2 to SQLAlchemy; ctpipe ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif driver != "psycopg":
        raise DatabaseUnavailable(
            f"{name}: ctpipe talks to PostgreSQL through psycopg 3; use postgresql+psycopg://")
    connect_args = {} if "connect_timeout" in parsed.query else {
        "connect_timeout": PG_CONNECT_TIMEOUT_S}
    # pre_ping: a connection the server dropped (restart, idle timeout) is replaced, not used.
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["version_table"] = VERSION_TABLE
    return config


def _current_revision(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _migrate(db: Database, lock: contextlib.AbstractContextManager) -> None:
    config = _alembic_config()
    scripts = ScriptDirectory.from_config(config)
    head = scripts.get_current_head()
    # Most starts find the database at head: no lock, no write.
    with db.engine.connect() as conn:
        current = _current_revision(conn)
    if current == head:
        return
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        raise DatabaseUnavailable(
            f"{db.name}: the database is at revision {current}, which this ctpipe does not know "
            "(a newer ctpipe migrated it); upgrade ctpipe")
    # SQLite: the file lock, then BEGIN IMMEDIATE. PostgreSQL: an advisory lock held until the
    # migration's transaction ends (DDL is transactional there, so a crash leaves nothing half
    # done). Whoever waited finds the database at head and Alembic does nothing.
    with lock, db.write() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
