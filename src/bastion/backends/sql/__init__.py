"""The SQL backend (SQLite and PostgreSQL): the only package that imports sqlalchemy and alembic."""

from __future__ import annotations

from bastion.backends.sql.storage import SQLStorage, SQLUnitOfWork

__all__ = ["SQLStorage", "SQLUnitOfWork"]
