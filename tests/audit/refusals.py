"""Audit inserts the database itself refuses (a trigger), for the tests of what bastion does
then: on SQLite (a file URL) and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def refused_by_the_database(url: str, condition: str) -> Iterator[None]:
    """Inserts into audit_events whose row meets the SQL ``condition`` (on ``NEW``) fail."""
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
        with db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_events"
                f" WHEN {condition} BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        try:
            yield
        finally:
            with db:
                db.execute("DROP TRIGGER refuse")
            db.close()
        return
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN"
            f" IF {condition} THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW;"
            " END $$ LANGUAGE plpgsql"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_events"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        try:
            yield
        finally:
            conn.execute("DROP TRIGGER refuse ON audit_events")
            conn.execute("DROP FUNCTION refuse()")
