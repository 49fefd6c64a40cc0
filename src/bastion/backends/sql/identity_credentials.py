"""SQL stores of password hashes and login throttle counters."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningInsert

from bastion.backends.sql.errors import translated
from bastion.backends.sql.forgetting import forget, forgetting
from bastion.backends.sql.identity_tables import login_throttles, password_credentials
from bastion.core.credentials import PasswordCredential, ThrottleState


class SQLPasswordStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, tenant_id: str, principal_id: str) -> PasswordCredential | None:
        return self._read(tenant_id, principal_id, lock=False)

    def lock(self, tenant_id: str, principal_id: str) -> PasswordCredential | None:
        # On SQLite the unit of work's BEGIN IMMEDIATE already holds the write lock.
        return self._read(tenant_id, principal_id, lock=True)

    def _read(self, tenant_id: str, principal_id: str, *, lock: bool) -> PasswordCredential | None:
        c = password_credentials.c
        query = select(password_credentials).where(
            c.tenant_id == tenant_id, c.principal_id == principal_id
        )
        if lock:
            query = query.with_for_update()
        with translated("get password"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            return None
        return PasswordCredential(
            tenant_id=row.tenant_id,
            principal_id=row.principal_id,
            hash=row.hash,
            changed_at=row.changed_at,
            history=tuple(json.loads(row.history)),
        )

    def put(self, credential: PasswordCredential) -> None:
        c = password_credentials.c
        values = {
            "hash": credential.hash,
            "changed_at": credential.changed_at,
            "history": json.dumps(list(credential.history)),
        }
        where = (c.tenant_id == credential.tenant_id, c.principal_id == credential.principal_id)
        with translated("set password"):
            if self._conn.execute(
                update(password_credentials).where(*where).values(values)
            ).rowcount:
                return
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(password_credentials).values(
                        tenant_id=credential.tenant_id,
                        principal_id=credential.principal_id,
                        **values,
                    )
                )

    def delete(self, tenant_id: str, principal_id: str) -> None:
        c = password_credentials.c
        query = delete(password_credentials).where(
            c.tenant_id == tenant_id, c.principal_id == principal_id
        )
        with translated("delete password"):
            self._conn.execute(query)


def _upsert_throttle(dialect: str) -> ReturningInsert[Any]:
    """Create the counter if absent and return it, locked, in one statement: on PostgreSQL
    ``ON CONFLICT DO UPDATE`` takes the row lock (concurrent failures queue as with
    ``FOR UPDATE``); SQLite's BEGIN IMMEDIATE already serialises every writer."""
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = make(login_throttles).values(
        key=bindparam("b_key"),
        failures=0,
        window_start=bindparam("b_at"),
        lockouts=0,
        forget_at=bindparam("b_at"),
    )
    return statement.on_conflict_do_update(
        index_elements=[login_throttles.c.key], set_={"key": statement.excluded.key}
    ).returning(*login_throttles.c)


# Built once: a login runs these on every attempt, and building a statement costs more
# than executing it.
_UPSERT = {dialect: _upsert_throttle(dialect) for dialect in ("postgresql", "sqlite")}
_PUT = (
    update(login_throttles)
    .where(login_throttles.c.key == bindparam("b_key"))
    .values(
        failures=bindparam("b_failures"),
        window_start=bindparam("b_window_start"),
        locked_until=bindparam("b_locked_until"),
        lockouts=bindparam("b_lockouts"),
        forget_at=bindparam("b_forget_at"),
    )
)


# From forget_at on a counter acts as a new one: due at that moment already.
_FORGET = forgetting(
    login_throttles, login_throttles.c.key, login_throttles.c.forget_at, at_too=True
)


class SQLThrottleStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, key: str, *, at: datetime) -> ThrottleState:
        with translated("lock login throttle"):
            row = self._conn.execute(
                _UPSERT[self._conn.dialect.name], {"b_key": key, "b_at": at}
            ).one()
        return ThrottleState(
            key=row.key,
            failures=int(row.failures),
            window_start=row.window_start,
            locked_until=row.locked_until,
            lockouts=int(row.lockouts),
            forget_at=row.forget_at,
        )

    def put(self, state: ThrottleState) -> None:
        values = {
            "b_key": state.key,
            "b_failures": state.failures,
            "b_window_start": state.window_start,
            "b_locked_until": state.locked_until,
            "b_lockouts": state.lockouts,
            "b_forget_at": state.forget_at,
        }
        with translated("store login throttle"):
            self._conn.execute(_PUT, values)

    def forget(self, *, now: datetime, limit: int) -> int:
        return forget(self._conn, _FORGET, before=now, limit=limit, what="login throttles")
