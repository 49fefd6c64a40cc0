"""Bounded removal of rows whose time has passed, for the stores that forget as they go:
login throttle counters, refresh tokens and revocations. Each call removes a few rows, soonest
first, through an index on the time column, so the work per call stays small however large
the table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BindParameter, Column, Connection, Table, bindparam, delete, select
from sqlalchemy.sql.dml import Delete

from bastion.backends.sql.errors import translated

Forgetting = dict[str, Delete]


def forgetting(
    table: Table, key: Column[str], moment: Column[datetime], *, at_too: bool = False
) -> Forgetting:
    """Per dialect, a DELETE of at most ``b_limit`` rows whose ``moment`` is before
    ``b_before`` (or at it, with ``at_too``), soonest first; built once, since logins and
    token issues run it. On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``:
    forgetting never waits for, or deadlocks with, a unit of work holding one, and a row
    changed since the statement began is tested again on its new version. SQLite has one
    writer at a time. The delete repeats the test, so that it alone says which rows may go."""
    before: BindParameter[datetime] = bindparam("b_before")
    passed = moment <= before if at_too else moment < before

    def build(dialect: str) -> Delete:
        due = select(key).where(passed).order_by(moment).limit(bindparam("b_limit"))
        if dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        return delete(table).where(key.in_(due), passed)

    return {dialect: build(dialect) for dialect in ("postgresql", "sqlite")}


def forget(
    conn: Connection, statements: Forgetting, *, before: datetime, limit: int, what: str
) -> int:
    """Run the dialect's statement of ``statements``; how many rows went."""
    if limit <= 0:
        return 0
    with translated(f"forget {what}"):
        result = conn.execute(statements[conn.dialect.name], {"b_before": before, "b_limit": limit})
    return int(result.rowcount or 0)
