"""SQL stores of groups with their memberships, and of tenant state."""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, select, update

from bastion.backends.sql.errors import translated
from bastion.backends.sql.identity_tables import group_members, groups, tenant_states
from bastion.backends.sql.stores import id_chunks, text_order
from bastion.core.credentials import TenantState
from bastion.core.model import Group
from bastion.errors import ConflictError, NotFoundError


def _group(row: Row[Any]) -> Group:
    return Group(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        created_at=row.created_at,
        display_name=row.display_name,
    )


class SQLGroupStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, group: Group) -> None:
        values = {
            "id": group.id,
            "tenant_id": group.tenant_id,
            "name": group.name,
            "display_name": group.display_name,
            "created_at": group.created_at,
        }
        with translated("create group"), self._conn.begin_nested():
            self._conn.execute(insert(groups).values(values))

    def get_by_name(self, tenant_id: str, name: str) -> Group:
        query = select(groups).where(groups.c.tenant_id == tenant_id, groups.c.name == name)
        with translated("get group by name"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError("get group by name: no such group in this tenant")
        return _group(row)

    def list(self, tenant_id: str) -> builtins.list[Group]:
        query = (
            select(groups)
            .where(groups.c.tenant_id == tenant_id)
            .order_by(text_order(self._conn, groups.c.name))
        )
        with translated("list groups"):
            return [_group(row) for row in self._conn.execute(query)]

    def page(self, tenant_id: str, *, after: str | None, limit: int | None) -> builtins.list[Group]:
        name = text_order(self._conn, groups.c.name)
        query = select(groups).where(groups.c.tenant_id == tenant_id).order_by(name).limit(limit)
        if after is not None:
            query = query.where(name > after)
        with translated("list groups"):
            return [_group(row) for row in self._conn.execute(query)]

    def update(self, group: Group) -> None:
        query = (
            update(groups)
            .where(groups.c.tenant_id == group.tenant_id, groups.c.id == group.id)
            .values(display_name=group.display_name)
        )
        with translated("update group"):
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("update group: no such group in this tenant")

    def delete(self, tenant_id: str, group_id: str) -> None:
        with translated("delete group"):
            self._conn.execute(
                delete(group_members).where(
                    group_members.c.tenant_id == tenant_id, group_members.c.group_id == group_id
                )
            )
            gone = self._conn.execute(
                delete(groups).where(groups.c.tenant_id == tenant_id, groups.c.id == group_id)
            )
        if gone.rowcount != 1:
            raise NotFoundError("delete group: no such group in this tenant")

    def add_member(self, tenant_id: str, group_id: str, principal_id: str, *, at: datetime) -> bool:
        values = {
            "tenant_id": tenant_id,
            "group_id": group_id,
            "principal_id": principal_id,
            "created_at": at,
        }
        try:
            with translated("add group member"), self._conn.begin_nested():
                self._conn.execute(insert(group_members).values(values))
        except ConflictError:
            return False
        return True

    def remove_member(self, tenant_id: str, group_id: str, principal_id: str) -> bool:
        query = delete(group_members).where(
            group_members.c.tenant_id == tenant_id,
            group_members.c.group_id == group_id,
            group_members.c.principal_id == principal_id,
        )
        with translated("remove group member"):
            return bool(self._conn.execute(query).rowcount)

    def members(self, tenant_id: str, group_ids: Collection[str]) -> dict[str, builtins.list[str]]:
        found: dict[str, builtins.list[str]] = {}
        for chunk in id_chunks(group_ids):
            query = (
                select(group_members.c.group_id, group_members.c.principal_id)
                .where(group_members.c.tenant_id == tenant_id, group_members.c.group_id.in_(chunk))
                .order_by(text_order(self._conn, group_members.c.principal_id))
            )
            with translated("list group members"):
                for row in self._conn.execute(query):
                    found.setdefault(row.group_id, []).append(row.principal_id)
        return found

    def groups_of(self, tenant_id: str, principal_id: str) -> builtins.list[str]:
        query = (
            select(groups.c.name)
            .join(
                group_members,
                and_(
                    group_members.c.tenant_id == groups.c.tenant_id,
                    group_members.c.group_id == groups.c.id,
                ),
            )
            .where(
                group_members.c.tenant_id == tenant_id,
                group_members.c.principal_id == principal_id,
            )
            .order_by(text_order(self._conn, groups.c.name))
        )
        with translated("list the groups of a principal"):
            return [row.name for row in self._conn.execute(query)]

    def memberships(
        self, tenant_id: str, principal_ids: Collection[str] | None = None
    ) -> dict[str, builtins.list[str]]:
        query = (
            select(group_members.c.principal_id, groups.c.name)
            .join(
                groups,
                and_(
                    groups.c.tenant_id == group_members.c.tenant_id,
                    groups.c.id == group_members.c.group_id,
                ),
            )
            .where(group_members.c.tenant_id == tenant_id)
            .order_by(text_order(self._conn, groups.c.name))
        )
        if principal_ids is not None:
            query = query.where(group_members.c.principal_id.in_(list(principal_ids)))
        found: dict[str, builtins.list[str]] = {}
        with translated("list group memberships"):
            for row in self._conn.execute(query):
                found.setdefault(row.principal_id, []).append(row.name)
        return found

    def forget_principal(self, tenant_id: str, principal_id: str) -> None:
        query = delete(group_members).where(
            group_members.c.tenant_id == tenant_id, group_members.c.principal_id == principal_id
        )
        with translated("remove a principal from its groups"):
            self._conn.execute(query)


class SQLTenantStateStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, tenant_id: str) -> TenantState:
        query = select(tenant_states).where(tenant_states.c.tenant_id == tenant_id)
        with translated("get tenant state"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            return TenantState(tenant_id)
        return TenantState(tenant_id, row.display_name, bool(row.disabled))

    def put(self, state: TenantState) -> None:
        values = {"display_name": state.display_name, "disabled": state.disabled}
        where = tenant_states.c.tenant_id == state.tenant_id
        with translated("store tenant state"):
            if self._conn.execute(update(tenant_states).where(where).values(values)).rowcount:
                return
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(tenant_states).values(tenant_id=state.tenant_id, **values)
                )

    def delete(self, tenant_id: str) -> None:
        with translated("delete tenant state"):
            self._conn.execute(delete(tenant_states).where(tenant_states.c.tenant_id == tenant_id))
