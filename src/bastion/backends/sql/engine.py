"""Engine creation: URL checks, SQLite pragmas and the BEGIN IMMEDIATE recipe."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

from bastion.errors import StorageError

SUPPORTED_DRIVERS = ("sqlite", "postgresql+psycopg")

# A unit of work sets this execution option to False to begin a plain deferred transaction.
BEGIN_IMMEDIATE = "bastion_begin_immediate"

_SQLITE_PRAGMAS = (
    # Wait for another writer instead of failing at once with "database is locked".
    "PRAGMA busy_timeout = 15000",
    "PRAGMA journal_mode = WAL",
    # Security data: fsync the WAL at every commit, so a committed audit record survives power loss.
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
)


def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take BEGIN away from the sqlite3 driver (it would skip it for SELECT and DDL) so that
    # _sqlite_begin decides how every transaction starts. Pragmas must run outside one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            _execute_pragma(cursor, pragma)
    finally:
        cursor.close()


def _execute_pragma(cursor: Any, pragma: str, *, attempts: int = 50) -> None:
    # Two connections switching a brand-new file to WAL at once: the loser gets "database is
    # locked" at once (SQLite does not use the busy handler there), so it waits and retries.
    for attempt in range(attempts):
        try:
            cursor.execute(pragma)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock at BEGIN, so two processes chaining audit events
    # serialise on it instead of both reading the same head and one failing at COMMIT.
    immediate = conn.get_execution_options().get(BEGIN_IMMEDIATE, True)
    statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    # On the driver connection: SQLAlchemy's statement machinery (exec_driver_sql) cost a
    # tenth of a one-event audit batch's CPU here. SQLAlchemy does not wrap what a begin
    # listener raises, so a driver error is wrapped as its own would be.
    try:
        conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from None


def _prepare_sqlite_file(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        raise StorageError(
            "a SQLite database must be a file (sqlite:///./bastion.db or sqlite:////abs/path.db);"
            " use memory:// for an in-memory store"
        )
    parent = Path(database).parent
    if not parent.is_dir():
        raise StorageError(f"the directory for the SQLite database does not exist: {parent}")
    _create_private(Path(database))


def _create_private(path: Path) -> None:
    """Create a new database file 0600 before SQLite does (it would follow the umask, often
    0644): it holds password hashes and the audit trail. SQLite gives its -wal and -shm files
    the database file's mode. An existing file keeps the mode its operator chose."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageError(f"cannot create the SQLite database {path}: {exc.strerror}") from None


def build_engine(url: str) -> Engine:
    """An engine for ``url``; `StorageError` for an unsupported or unusable URL.

    Messages never repeat the URL, which may carry a password.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError("the database URL cannot be parsed") from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise StorageError(
            f"unsupported database driver {parsed.drivername!r}:"
            " use sqlite:/// or postgresql+psycopg://"
        )
    if parsed.drivername == "sqlite":
        _prepare_sqlite_file(parsed.database)
    try:
        # A pooled SQLite connection is an open file: nothing can drop it, so a ping at every
        # checkout (every unit of work, every audit batch) would only cost time.
        engine = create_engine(parsed, pool_pre_ping=parsed.drivername != "sqlite")
    except (ArgumentError, ImportError) as exc:
        raise StorageError(f"cannot create a database engine ({exc.__class__.__name__})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine
