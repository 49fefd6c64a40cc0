"""SQL stores for authorization: custom roles, resource rules, the model version, and the
binding store's removals (every change of a binding also advances the version)."""

from __future__ import annotations

import builtins
import json
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, literal, or_, select, tuple_, update

from bastion.backends.sql.authz_tables import authz_resource_rules, authz_roles, authz_state
from bastion.backends.sql.errors import translated
from bastion.backends.sql.stores import SQLBindingStore, _binding, text_order
from bastion.backends.sql.tables import role_bindings
from bastion.core.model import CustomRole, ResourceRuleRecord, RoleBinding
from bastion.errors import NotFoundError


class SQLAuthzVersionStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def current(self) -> int:
        with translated("read the authorization version"):
            value = self._conn.execute(
                select(authz_state.c.version).where(authz_state.c.id == 1)
            ).scalar_one_or_none()
        return int(value or 0)

    def bump(self) -> int:
        # An UPDATE takes the row lock, so concurrent changes get distinct versions.
        query = (
            update(authz_state)
            .where(authz_state.c.id == 1)
            .values(version=authz_state.c.version + 1)
            .returning(authz_state.c.version)
        )
        with translated("advance the authorization version"):
            value = self._conn.execute(query).scalar_one_or_none()
            if value is None:
                self._conn.execute(insert(authz_state).values(id=1, version=1))
                return 1
        return int(value)


class SQLAuthzBindingStore(SQLBindingStore):
    """`SQLBindingStore` plus get / delete; every change advances the authorization version."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._sql = conn
        self._version = SQLAuthzVersionStore(conn)

    def create(self, binding: RoleBinding) -> None:
        super().create(binding)
        self._version.bump()

    def get(self, tenant_id: str, binding_id: str) -> RoleBinding:
        c = role_bindings.c
        query = select(role_bindings).where(c.tenant_id == tenant_id, c.id == binding_id)
        with translated("get role binding"):
            row = self._sql.execute(query).one_or_none()
        if row is None:
            raise NotFoundError("get role binding: no such binding in this tenant")
        return _binding(row)

    def delete(self, tenant_id: str, binding_id: str) -> RoleBinding:
        binding = self.get(tenant_id, binding_id)
        c = role_bindings.c
        with translated("delete role binding"):
            self._sql.execute(
                delete(role_bindings).where(c.tenant_id == tenant_id, c.id == binding_id)
            )
        self._version.bump()
        return binding


def _role(row: Row[Any]) -> CustomRole:
    return CustomRole(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        permissions=tuple(json.loads(row.permissions)),
        inherits=tuple(json.loads(row.inherits)),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SQLRoleStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._version = SQLAuthzVersionStore(conn)

    def create(self, role: CustomRole) -> None:
        values = {
            "id": role.id,
            "tenant_id": role.tenant_id,
            "name": role.name,
            "permissions": json.dumps(list(role.permissions)),
            "inherits": json.dumps(list(role.inherits)),
            "created_at": role.created_at,
            "updated_at": role.updated_at,
        }
        with translated("create role"), self._conn.begin_nested():
            self._conn.execute(insert(authz_roles).values(values))
        self._version.bump()

    def update(self, role: CustomRole) -> None:
        c = authz_roles.c
        query = (
            update(authz_roles)
            .where(c.tenant_id == role.tenant_id, c.name == role.name)
            .values(
                permissions=json.dumps(list(role.permissions)),
                inherits=json.dumps(list(role.inherits)),
                updated_at=role.updated_at,
            )
        )
        with translated("update role"):
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("update role: no such role in this tenant")
        self._version.bump()

    def get(self, tenant_id: str, name: str) -> CustomRole:
        c = authz_roles.c
        query = select(authz_roles).where(c.tenant_id == tenant_id, c.name == name)
        with translated("get role"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError("get role: no such role in this tenant")
        return _role(row)

    def list(self, tenant_id: str) -> builtins.list[CustomRole]:
        c = authz_roles.c
        query = (
            select(authz_roles)
            .where(c.tenant_id == tenant_id)
            .order_by(text_order(self._conn, c.name))
        )
        with translated("list roles"):
            return [_role(row) for row in self._conn.execute(query)]

    def delete(self, tenant_id: str, name: str) -> None:
        c = authz_roles.c
        query = delete(authz_roles).where(c.tenant_id == tenant_id, c.name == name)
        with translated("delete role"):
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("delete role: no such role in this tenant")
        self._version.bump()


def _rule(row: Row[Any]) -> ResourceRuleRecord:
    return ResourceRuleRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        allowed_users=tuple(json.loads(row.allowed_users)),
        allowed_roles=tuple(json.loads(row.allowed_roles)),
        actions=tuple(json.loads(row.actions)),
        created_at=row.created_at,
    )


class SQLResourceRuleStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._version = SQLAuthzVersionStore(conn)

    def create(self, rule: ResourceRuleRecord) -> None:
        values = {
            "id": rule.id,
            "tenant_id": rule.tenant_id,
            "resource_type": rule.resource_type,
            "resource_id": rule.resource_id,
            "allowed_users": json.dumps(list(rule.allowed_users)),
            "allowed_roles": json.dumps(list(rule.allowed_roles)),
            "actions": json.dumps(list(rule.actions)),
            "created_at": rule.created_at,
        }
        with translated("create resource rule"), self._conn.begin_nested():
            self._conn.execute(insert(authz_resource_rules).values(values))
        self._version.bump()

    def get(self, tenant_id: str, rule_id: str) -> ResourceRuleRecord:
        c = authz_resource_rules.c
        query = select(authz_resource_rules).where(c.tenant_id == tenant_id, c.id == rule_id)
        with translated("get resource rule"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError("get resource rule: no such rule in this tenant")
        return _rule(row)

    def list(self, tenant_id: str) -> builtins.list[ResourceRuleRecord]:
        return self.page(tenant_id, after=None, limit=None)

    def page(
        self, tenant_id: str, *, after: tuple[str, str] | None, limit: int | None
    ) -> builtins.list[ResourceRuleRecord]:
        c = authz_resource_rules.c
        order = [text_order(self._conn, c.resource_type), text_order(self._conn, c.resource_id)]
        query = select(authz_resource_rules).where(c.tenant_id == tenant_id)
        if after is not None:  # a row value: SQLite and PostgreSQL compare it left to right
            query = query.where(tuple_(*order) > tuple_(*(literal(part) for part in after)))
        with translated("list resource rules"):
            rows = self._conn.execute(query.order_by(*order).limit(limit))
            return [_rule(row) for row in rows]

    def naming(
        self, tenant_id: str, *, user: str | None = None, role: str | None = None
    ) -> builtins.list[ResourceRuleRecord]:
        """The rules are found by their JSON text first (``LIKE '%"name"%'``, each list
        encoded as `create` encodes it), so only those rows are decoded; the exact test
        follows, SQLite's LIKE ignoring ASCII case."""
        c = authz_resource_rules.c
        near = [
            column.like(f"%{_like_escaped(json.dumps(name))}%", escape="\\")
            for column, name in ((c.allowed_users, user), (c.allowed_roles, role))
            if name is not None
        ]
        if not near:
            return []
        query = (
            select(authz_resource_rules)
            .where(c.tenant_id == tenant_id, or_(*near))
            .order_by(
                text_order(self._conn, c.resource_type), text_order(self._conn, c.resource_id)
            )
        )
        with translated("find resource rules naming a user or role"):
            found = [_rule(row) for row in self._conn.execute(query)]
        return [r for r in found if user in r.allowed_users or role in r.allowed_roles]

    def update(self, rule: ResourceRuleRecord) -> None:
        c = authz_resource_rules.c
        query = (
            update(authz_resource_rules)
            .where(c.tenant_id == rule.tenant_id, c.id == rule.id)
            .values(
                allowed_users=json.dumps(list(rule.allowed_users)),
                allowed_roles=json.dumps(list(rule.allowed_roles)),
                actions=json.dumps(list(rule.actions)),
            )
        )
        with translated("update resource rule"):
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("update resource rule: no such rule in this tenant")
        self._version.bump()

    def delete(self, tenant_id: str, rule_id: str) -> None:
        c = authz_resource_rules.c
        query = delete(authz_resource_rules).where(c.tenant_id == tenant_id, c.id == rule_id)
        with translated("delete resource rule"):
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("delete resource rule: no such rule in this tenant")
        self._version.bump()


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE with the escape character ``\\``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
