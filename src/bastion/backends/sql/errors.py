"""Translation of sqlalchemy and DB-API errors into `bastion.errors` at the backend boundary.

SQLAlchemy renders bound parameters (key hashes, names) into ``str(exc)`` and drivers put row
values into their messages ("Key (name)=(acme) already exists"), so no message built here
reads either: it names the operation and the driver's exception class, nothing else, and the
original exception is not chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from bastion.errors import ConflictError, NotFoundError, StorageError

_UNIQUE = ("23505", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
_FOREIGN_KEY = ("23503", "SQLITE_CONSTRAINT_FOREIGNKEY")


def _constraint_kind(exc: IntegrityError) -> str | None:
    # psycopg names the violation by SQLSTATE; sqlite3 (Python 3.11+) by extended error name.
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)


def _cause(exc: SQLAlchemyError) -> str:
    if isinstance(exc, StatementError) and exc.orig is not None:
        name = exc.orig.__class__.__name__
    else:
        name = exc.__class__.__name__
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return f"{name}, SQLSTATE {sqlstate}" if sqlstate else name


def _binds_nul(params: object) -> bool:
    """Whether a bound text (of one row or many) holds U+0000, which PostgreSQL can neither
    store nor compare."""
    if isinstance(params, str):
        return "\x00" in params
    if isinstance(params, dict):
        return any(_binds_nul(value) for value in params.values())
    if isinstance(params, list | tuple):
        return any(_binds_nul(value) for value in params)
    return False


def translate(exc: SQLAlchemyError, operation: str) -> StorageError:
    """The `bastion.errors` exception that stands for ``exc`` raised during ``operation``.

    Text with a NUL character (U+0000) is what no row holds: PostgreSQL refuses to bind it, so
    a look-up by such a name is "not found" there as it is on SQLite, never an outage. The
    edges refuse or replace NUL first (`bastion.core.names.storable`); this is the backstop."""
    if _binds_nul(getattr(exc, "params", None)):
        return NotFoundError(f"{operation}: no stored text holds a NUL character")
    if isinstance(exc, IntegrityError):
        kind = _constraint_kind(exc)
        if kind in _FOREIGN_KEY:
            return NotFoundError(f"{operation}: a row it refers to does not exist")
        if kind in _UNIQUE:
            return ConflictError(f"{operation}: a value that must be unique is already taken")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StorageError(f"{operation} failed: the database connection was lost")
    return StorageError(f"{operation} failed ({_cause(exc)})")


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Re-raise any sqlalchemy error inside the block as a `StorageError` naming ``operation``."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise translate(exc, operation) from None
