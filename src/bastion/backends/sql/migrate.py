"""Programmatic Alembic upgrades from the migrations shipped inside this package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text

from bastion.backends.sql.errors import translated
from bastion.errors import StorageError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock key serialising concurrent upgrades (the bytes b"bastmig1" as a bigint).
MIGRATION_LOCK = int.from_bytes(b"bastmig1", "big")


def alembic_config() -> Config:
    """An Alembic config built in code: no alembic.ini, independent of the current directory."""
    config = Config()
    # ConfigParser interpolation would read a "%" in the install path as a placeholder.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` in one transaction.

    Idempotent. Concurrent callers serialise: on PostgreSQL on an advisory lock, on SQLite on
    the BEGIN IMMEDIATE every transaction starts with. The second caller then finds the schema
    already current and does nothing.
    """
    config = alembic_config()
    with translated("migrate the database schema"), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            # Alembic's own messages name revisions and files only, never row values.
            raise StorageError(f"migrate the database schema: {exc}") from None
