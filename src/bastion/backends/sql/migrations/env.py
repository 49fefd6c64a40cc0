"""Alembic environment: migrates the connection that `bastion.backends.sql.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bastion.backends.sql.tables import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    # The caller's transaction is already open, so this joins it rather than starting one:
    # the whole upgrade commits or rolls back as one, under the caller's lock.
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    # `alembic upgrade --sql`: render the DDL for a DBA to review and apply by hand.
    url = context.config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("bastion migrations run through bastion.backends.sql.migrate only")
    run_migrations(connection)
