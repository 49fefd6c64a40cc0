"""SQL stores of password hashes and login throttle counters."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from bastion.backends.sql.errors import translated
from bastion.backends.sql.identity_tables import login_throttles, password_credentials
from bastion.core.credentials import PasswordCredential, ThrottleState
from bastion.errors import ConflictError, NotFoundError


class SQLPasswordStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, tenant_id: str, principal_id: str) -> PasswordCredential | None:
        c = password_credentials.c
        query = select(password_credentials).where(
            c.tenant_id == tenant_id, c.principal_id == principal_id
        )
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


class SQLThrottleStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, key: str, *, at: datetime) -> ThrottleState:
        # Create the row if absent (a concurrent creator wins harmlessly), then lock it: on
        # PostgreSQL FOR UPDATE makes concurrent failures queue; SQLite's BEGIN IMMEDIATE
        # already serialises every writer.
        values = {"key": key, "failures": 0, "window_start": at, "lockouts": 0}
        try:
            with translated("create login throttle"), self._conn.begin_nested():
                self._conn.execute(insert(login_throttles).values(values))
        except ConflictError:
            pass
        query = select(login_throttles).where(login_throttles.c.key == key)
        if self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        with translated("lock login throttle"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError("lock login throttle: the counter vanished")
        return ThrottleState(
            key=row.key,
            failures=int(row.failures),
            window_start=row.window_start,
            locked_until=row.locked_until,
            lockouts=int(row.lockouts),
        )

    def put(self, state: ThrottleState) -> None:
        query = (
            update(login_throttles)
            .where(login_throttles.c.key == state.key)
            .values(
                failures=state.failures,
                window_start=state.window_start,
                locked_until=state.locked_until,
                lockouts=state.lockouts,
            )
        )
        with translated("store login throttle"):
            self._conn.execute(query)
