"""Storage backends behind the protocols in `bastion.backends.protocols`, and `open_storage`."""

from __future__ import annotations

from bastion.backends.protocols import Storage
from bastion.errors import StorageError

__all__ = ["open_storage"]

MEMORY_URL = "memory://"
_SQL_PREFIXES = ("sqlite:///", "postgresql+psycopg://")
_DRIVER_HINT = " (PostgreSQL needs the psycopg driver: postgresql+psycopg://)"


def open_storage(url: str, *, one_thread: bool = False) -> Storage:
    """The storage named by ``url``: ``sqlite:///…``, ``postgresql+psycopg://…`` or ``memory://``.

    ``one_thread``: the caller writes from one thread only (the audit writer process), so a
    SQLite storage may keep that thread's connection between units of work (`SQLStorage`).

    Does not touch the database (call `Storage.migrate` / `Storage.check` for that), except that
    a SQLite file's directory must exist. `StorageError` for anything else; the message never
    repeats the URL, which may carry a password.
    """
    if url == MEMORY_URL:
        from bastion.backends.memory import MemoryStorage

        return MemoryStorage()
    if url.startswith(_SQL_PREFIXES):
        # Imported here so that code paths without a database never load sqlalchemy.
        from bastion.backends.sql import SQLStorage

        return SQLStorage(url, one_thread=one_thread)
    scheme = url.partition("://")[0] if "://" in url else ""
    hint = _DRIVER_HINT if scheme in ("postgresql", "postgres") else ""
    raise StorageError(
        f"unsupported storage URL scheme {scheme!r}{hint}:"
        " use sqlite:///, postgresql+psycopg:// or memory://"
    )
