"""Driver-level bulk insert of chained audit rows (``executemany`` on sqlite3, ``COPY`` on
psycopg) and the read of the chain head. The per-row cost of SQLAlchemy's insert path is most
of an audit append, and its per-statement cost (about 30 µs) a tenth of a small batch's; this
is the hot path of every request. Other reads stay on SQLAlchemy.

Rows are written exactly as `bastion.backends.sql.tables.UtcDateTime` would write them, so
SQLAlchemy reads and range filters see no difference: on SQLite a naive UTC text
``YYYY-MM-DD HH:MM:SS.ffffff`` (fixed width, so text order is time order), on PostgreSQL a
``timestamptz``. Driver errors are translated here, without their messages (row values).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Connection

from bastion.backends.audit_rows import actor_id, encode_body, resource_key, sqlite_timestamp
from bastion.core.model import AuditEvent
from bastion.errors import ConflictError, StorageError

COLUMNS = (
    "seq",
    "event_id",
    "timestamp",
    "tenant",
    "action",
    "outcome",
    "actor_id",
    "resource_key",
    "body",
    "prev_hash",
    "hash",
)
# Built from the constant column list above, never from input.
_SQLITE_INSERT = (
    f"INSERT INTO audit_events ({', '.join(COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_PG_COPY = f"COPY audit_events ({', '.join(COLUMNS)}) FROM STDIN"
_HEAD = "SELECT seq, hash, timestamp FROM audit_events ORDER BY seq DESC LIMIT 1"
_OPERATION = "insert audit events"
_SQLITE_UNIQUE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise StorageError(f"{_OPERATION} failed (naive datetime)")
    return moment


def rows_of(
    events: Sequence[AuditEvent], bodies: Sequence[str] | None, *, sqlite: bool
) -> list[tuple[Any, ...]]:
    if bodies is not None and len(bodies) != len(events):
        raise StorageError(f"{_OPERATION} failed (one body per event)")
    when = sqlite_timestamp if sqlite else _aware
    return [
        (
            event.seq,
            event.event_id,
            when(event.timestamp),
            event.tenant,
            event.action,
            event.outcome,
            actor_id(event),
            resource_key(event),
            encode_body(event) if bodies is None else bodies[index],
            event.prev_hash,
            event.hash,
        )
        for index, event in enumerate(events)
    ]


@contextmanager
def _driver_errors(operation: str) -> Iterator[None]:
    taken = f"{operation}: a value that must be unique is already taken"
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if getattr(exc, "sqlite_errorname", "") in _SQLITE_UNIQUE:
            raise ConflictError(taken) from None
        raise StorageError(f"{operation} failed ({type(exc).__name__})") from None
    except psycopg.errors.UniqueViolation:
        raise ConflictError(taken) from None
    except (sqlite3.Error, psycopg.Error) as exc:
        state = getattr(exc, "sqlstate", None)
        cause = f"{type(exc).__name__}, SQLSTATE {state}" if state else type(exc).__name__
        raise StorageError(f"{operation} failed ({cause})") from None


def insert_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert prepared rows on the unit of work's own connection (same transaction)."""
    raw = conn.connection.driver_connection
    with _driver_errors(_OPERATION):
        if conn.dialect.name == "sqlite":
            assert isinstance(raw, sqlite3.Connection)
            raw.executemany(_SQLITE_INSERT, rows)
        else:
            assert isinstance(raw, psycopg.Connection)
            with raw.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
                for row in rows:
                    copy.write_row(row)


def read_head(conn: Connection) -> tuple[int, str, datetime] | None:
    """The newest event's (seq, hash, timestamp) on the unit of work's own connection (same
    transaction), or None for an empty trail. The timestamp comes back as
    `bastion.backends.sql.tables.UtcDateTime` gives it: aware, in UTC."""
    operation = "read the audit chain head"
    raw = conn.connection.driver_connection
    with _driver_errors(operation):
        row = raw.execute(_HEAD).fetchone()  # type: ignore[union-attr]
    if row is None:
        return None
    seq, digest, moment = row
    if not isinstance(moment, str):  # PostgreSQL: a timestamptz
        return int(seq), str(digest), moment.astimezone(UTC)
    try:  # SQLite: the naive UTC text `sqlite_timestamp` writes
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        raise StorageError(f"{operation} failed (a stored timestamp is not a date)") from None
    return int(seq), str(digest), parsed.replace(tzinfo=UTC)
