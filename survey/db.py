"""Database engine and per-request sessions (plain SQLAlchemy 2.x, no Flask extension)."""
from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, current_app, g
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_SIZE, MAX_OVERFLOW = 10, 20


def database_url(app: Flask) -> str:
    """Return the configured URL, or the embedded SQLite file in the instance folder."""
    url = app.config.get("DATABASE_URL") or f"sqlite:///{Path(app.instance_path) / 'survey.sqlite'}"
    if url.startswith("postgres://"):  # the form many hosts hand out
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, foreign keys and explicit BEGINs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # No pre-ping: it costs a round trip on every checkout, the hot path of every answer. A
        # connection that died (database restarted) fails once with an OperationalError, which
        # answers 503 with the answers kept; SQLAlchemy then drops every pooled connection made
        # before, so the phone's retry and the following requests get fresh ones.
        return create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_recycle=1800)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # A write transaction takes the write lock up front (BEGIN IMMEDIATE), so it waits for
        # the busy timeout instead of failing when a reader would have to upgrade its lock.
        immediate = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def init_app(app: Flask) -> None:
    """Create the engine for ``app`` and close each request's session when it ends."""
    engine = make_engine(database_url(app))
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["db_engine"]


def session() -> Session:
    """Return this request's session (made on first use)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_sessionmaker"]()
    return g.db_session


def has_session() -> bool:
    """Return whether this request has made its session (a view that may not need one asks)."""
    return "db_session" in g


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


@contextmanager
def write_transaction(existing: Session | None = None) -> Iterator[Session]:
    """Run a block in a write transaction: commit, or roll back on error.

    With ``existing`` (a request's session) its read transaction is ended first, so the
    request holds one connection at a time; otherwise a fresh session is used.
    """
    if existing is not None:
        existing.commit()
        s, owned = existing, False
    else:
        s, owned = current_app.extensions["db_sessionmaker"](), True
    try:
        s.connection(execution_options={"write": True})
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
    finally:
        if owned:
            s.close()


class WriterConnections:
    """Driver connections in autocommit mode for one-statement writes (a resident's answers), LIFO.

    Storing a questionnaire is one statement, so it needs no transaction around it: these
    connections stay in autocommit mode, and taking one is a ``list.pop`` instead of a checkout
    from SQLAlchemy's pool (events, reset on return and two switches of autocommit mode, about a
    tenth of a POST's CPU). At most ``keep`` idle ones are kept (the busiest moment's count, up
    to the pool's size); a connection that failed is closed, and a lost server closes them all
    (see :func:`survey.submissions.store_response`). They are closed with the engine's dispose.
    """

    def __init__(self, engine: Engine, keep: int) -> None:
        # The engine's connection arguments, not the engine: the engine's registry below holds
        # these weakly keyed by the engine, which must be free to go.
        self._connect = engine.dialect.loaded_dbapi.connect
        self._args = engine.dialect.create_connect_args(engine.url)
        self.keep = keep
        self._idle: list = []

    def take(self):
        try:
            return self._idle.pop()  # atomic under the GIL
        except IndexError:
            cargs, cparams = self._args
            connection = self._connect(*cargs, **cparams)
            connection.autocommit = True
            return connection

    def give_back(self, connection) -> None:
        if connection.closed or connection.pgconn.transaction_status != 0 or len(self._idle) >= self.keep:
            connection.close()  # failed, left in a transaction (never by design), or one too many
        else:
            self._idle.append(connection)

    def close_all(self) -> None:
        while True:
            try:
                self._idle.pop().close()
            except IndexError:
                return


_writers: weakref.WeakKeyDictionary[Engine, WriterConnections] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer_connections(engine: Engine) -> WriterConnections:
    """Return the engine's :class:`WriterConnections` (PostgreSQL only), made on first use."""
    writers = _writers.get(engine)
    if writers is None:
        with _writers_lock:
            writers = _writers.get(engine)
            if writers is None:
                writers = _writers[engine] = WriterConnections(engine, keep=POOL_SIZE + MAX_OVERFLOW)
                event.listen(engine, "engine_disposed", lambda _engine: writers.close_all())
    return writers


def driver_connection(session: Session) -> psycopg.Connection[TupleRow]:
    """Return the driver's own connection under the session's, in its transaction (PostgreSQL: COPY, plain cursors)."""
    driver = session.connection().connection.driver_connection
    if driver is None:  # only a pool connection invalidated since has none, never the one just checked out
        raise RuntimeError("the session's connection has no driver connection")
    return driver


def rows_changed(result: Result[Any]) -> int:
    """Return how many rows an UPDATE or DELETE without RETURNING changed (0 when the driver does not say).

    Session.execute is typed as returning a Result; for such a statement it is a CursorResult
    (SQLAlchemy's changelog for 2.0.44 says to cast it for ``rowcount``).
    """
    return cast("CursorResult[Any]", result).rowcount or 0


# --- watermarks: which ids no open transaction can still add below --------------------------------


def oldest_open_transaction(session: Session) -> datetime | None:
    """Return when the oldest open transaction of another connection to the database started (PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    session.execute(text("SELECT pg_stat_clear_snapshot()"))  # the activity is read once per transaction otherwise
    return session.execute(text(
        "SELECT min(xact_start) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
        "AND backend_type = 'client backend'"  # not autovacuum, which inserts no response
    )).scalar()


def settled_at(session: Session, read_at: datetime, oldest_open: datetime | None) -> bool:
    """Return whether a watermark read at ``read_at`` is settled: no other transaction that started
    by then is still open (always on SQLite, where one writer at a time takes the next id)."""
    return oldest_open is None or oldest_open > read_at
