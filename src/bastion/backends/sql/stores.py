"""SQL implementations of the tenant, principal, API-key and role-binding stores."""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union,
    update,
)

from bastion.backends.protocols import BindingKey
from bastion.backends.sql.errors import translated
from bastion.backends.sql.tables import api_keys, principals, role_bindings, tenants
from bastion.core.model import ApiKey, Principal, PrincipalKind, RoleBinding, SubjectType, Tenant
from bastion.errors import ConflictError, NotFoundError


def text_order(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``column`` for ORDER BY in code-point order, as SQLite's BINARY and Python sort."""
    return column.collate("C") if conn.dialect.name == "postgresql" else column


# Ids bound into one IN (...): far below SQLite's and PostgreSQL's limits on parameters.
_IDS_A_QUERY = 1000


def id_chunks(ids: Collection[str]) -> Iterator[builtins.list[str]]:
    """``ids`` in lists short enough for one ``IN (...)`` each."""
    wanted = list(ids)
    for start in range(0, len(wanted), _IDS_A_QUERY):
        yield wanted[start : start + _IDS_A_QUERY]


# Look-ups that run in nearly every unit of work, built once (building a statement costs
# more than executing it).
_TENANT_BY_NAME = select(tenants).where(tenants.c.name == bindparam("b_name"))
_TENANT_BY_ID = select(tenants).where(tenants.c.id == bindparam("b_id"))
_PRINCIPAL_BY_NAME = select(principals).where(
    principals.c.tenant_id == bindparam("b_tenant"), principals.c.name == bindparam("b_name")
)
_PRINCIPAL_BY_ID = select(principals).where(
    principals.c.tenant_id == bindparam("b_tenant"), principals.c.id == bindparam("b_id")
)


class SQLTenantStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, tenant: Tenant) -> None:
        values = {"id": tenant.id, "name": tenant.name, "created_at": tenant.created_at}
        # A savepoint keeps a conflict from aborting the whole unit of work on PostgreSQL.
        with translated("create tenant"), self._conn.begin_nested():
            self._conn.execute(insert(tenants).values(values))

    def get_by_name(self, name: str) -> Tenant:
        return self._one(_TENANT_BY_NAME, {"b_name": name}, "get tenant by name")

    def get(self, tenant_id: str) -> Tenant:
        return self._one(_TENANT_BY_ID, {"b_id": tenant_id}, "get tenant")

    def _one(self, query: Select[Any], params: dict[str, str], operation: str) -> Tenant:
        with translated(operation):
            row = self._conn.execute(query, params).one_or_none()
        if row is None:
            raise NotFoundError(f"{operation}: no such tenant")
        return Tenant(id=row.id, name=row.name, created_at=row.created_at)

    def list(self) -> builtins.list[Tenant]:
        order = (tenants.c.created_at, text_order(self._conn, tenants.c.id))
        with translated("list tenants"):
            rows = self._conn.execute(select(tenants).order_by(*order)).all()
        return [Tenant(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    def delete(self, tenant_id: str) -> None:
        # Rows that still refer to the tenant make this a foreign-key failure: ConflictError.
        try:
            with translated("delete tenant"), self._conn.begin_nested():
                gone = self._conn.execute(delete(tenants).where(tenants.c.id == tenant_id))
        except NotFoundError:
            message = "delete tenant: it still has principals, keys or bindings"
            raise ConflictError(message) from None
        if gone.rowcount != 1:
            raise NotFoundError("delete tenant: no such tenant")


def _principal(row: Row[Any]) -> Principal:
    return Principal(
        id=row.id,
        tenant_id=row.tenant_id,
        kind=PrincipalKind(row.kind),
        name=row.name,
        created_at=row.created_at,
        display_name=row.display_name,
        disabled=bool(row.disabled),
    )


class SQLPrincipalStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, principal: Principal) -> None:
        values = {
            "id": principal.id,
            "tenant_id": principal.tenant_id,
            "kind": str(principal.kind),
            "name": principal.name,
            "display_name": principal.display_name,
            "disabled": principal.disabled,
            "created_at": principal.created_at,
        }
        with translated("create principal"), self._conn.begin_nested():
            self._conn.execute(insert(principals).values(values))

    def get(self, tenant_id: str, principal_id: str) -> Principal:
        params = {"b_tenant": tenant_id, "b_id": principal_id}
        return self._one(_PRINCIPAL_BY_ID, params, "get principal")

    def get_by_name(self, tenant_id: str, name: str) -> Principal:
        params = {"b_tenant": tenant_id, "b_name": name}
        return self._one(_PRINCIPAL_BY_NAME, params, "get principal by name")

    def _one(self, query: Select[Any], params: dict[str, str], operation: str) -> Principal:
        with translated(operation):
            row = self._conn.execute(query, params).one_or_none()
        if row is None:
            raise NotFoundError(f"{operation}: no such principal in this tenant")
        return _principal(row)

    def list(self, tenant_id: str) -> builtins.list[Principal]:
        query = (
            select(principals)
            .where(principals.c.tenant_id == tenant_id)
            .order_by(text_order(self._conn, principals.c.name))
        )
        with translated("list principals"):
            return [_principal(row) for row in self._conn.execute(query)]

    def page(
        self, tenant_id: str, *, kind: PrincipalKind, after: str | None, limit: int | None
    ) -> builtins.list[Principal]:
        name = text_order(self._conn, principals.c.name)
        query = (
            select(principals)
            .where(principals.c.tenant_id == tenant_id, principals.c.kind == kind.value)
            .order_by(name)
            .limit(limit)
        )
        if after is not None:
            query = query.where(name > after)
        with translated("list principals"):
            return [_principal(row) for row in self._conn.execute(query)]

    def count(self, tenant_id: str) -> int:
        query = select(func.count()).where(principals.c.tenant_id == tenant_id)
        with translated("count principals"):
            return int(self._conn.execute(query).scalar_one())

    def by_ids(self, tenant_id: str, principal_ids: Collection[str]) -> dict[str, Principal]:
        found = {}
        for chunk in id_chunks(principal_ids):
            query = select(principals).where(
                principals.c.tenant_id == tenant_id, principals.c.id.in_(chunk)
            )
            with translated("get principals by id"):
                found.update({row.id: _principal(row) for row in self._conn.execute(query)})
        return found

    def update(self, principal: Principal) -> None:
        query = (
            update(principals)
            .where(principals.c.tenant_id == principal.tenant_id, principals.c.id == principal.id)
            .values(display_name=principal.display_name, disabled=principal.disabled)
        )
        with translated("update principal"):
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("update principal: no such principal in this tenant")

    def delete(self, tenant_id: str, principal_id: str) -> None:
        query = delete(principals).where(
            principals.c.tenant_id == tenant_id, principals.c.id == principal_id
        )
        with translated("delete principal"), self._conn.begin_nested():
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("delete principal: no such principal in this tenant")


def _api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        principal_id=row.principal_id,
        name=row.name,
        prefix=row.prefix,
        key_hash=bytes(row.key_hash),
        scopes=tuple(json.loads(row.scopes)),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SQLApiKeyStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, key: ApiKey) -> None:
        values = {
            "id": key.id,
            "tenant_id": key.tenant_id,
            "principal_id": key.principal_id,
            "name": key.name,
            "prefix": key.prefix,
            "key_hash": key.key_hash,
            "scopes": json.dumps(list(key.scopes)),
            "created_at": key.created_at,
            "expires_at": key.expires_at,
            "last_used_at": key.last_used_at,
            "revoked_at": key.revoked_at,
        }
        with translated("create API key"), self._conn.begin_nested():
            self._conn.execute(insert(api_keys).values(values))

    def find_by_hash(self, key_hash: bytes) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.key_hash == key_hash)
        with translated("find API key"):
            row = self._conn.execute(query).one_or_none()
        return None if row is None else _api_key(row)

    def get(self, tenant_id: str, key_id: str) -> ApiKey:
        query = select(api_keys).where(api_keys.c.tenant_id == tenant_id, api_keys.c.id == key_id)
        with translated("get API key"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError("get API key: no such key in this tenant")
        return _api_key(row)

    def page(
        self, tenant_id: str, *, after: str | None, limit: int | None
    ) -> builtins.list[ApiKey]:
        name = text_order(self._conn, api_keys.c.name)
        query = select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(name)
        if after is not None:
            query = query.where(name > after)
        with translated("list API keys"):
            return [_api_key(row) for row in self._conn.execute(query.limit(limit))]

    def referenced(self, tenant_id: str, reference: str) -> builtins.list[ApiKey]:
        # One indexed look-up a field: an OR of the three would read every key of the tenant.
        c = api_keys.c
        query = union(
            *(
                select(api_keys).where(c.tenant_id == tenant_id, column == reference)
                for column in (c.id, c.prefix, c.name)
            )
        )
        with translated("find API key"):
            return [_api_key(row) for row in self._conn.execute(query)]

    def revoke(self, tenant_id: str, key_id: str, *, at: datetime) -> ApiKey:
        # The first revocation wins: a repeated revoke never moves revoked_at.
        query = (
            update(api_keys)
            .where(
                api_keys.c.tenant_id == tenant_id,
                api_keys.c.id == key_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )
        with translated("revoke API key"):
            self._conn.execute(query)
        return self.get(tenant_id, key_id)

    def touch(self, key_id: str, *, at: datetime) -> None:
        # Only forwards: a late, out-of-order touch must not hide a more recent use.
        query = (
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < at),
            )
            .values(last_used_at=at)
        )
        with translated("record API key use"):
            self._conn.execute(query)

    def retire(self, tenant_id: str, key_id: str, *, expires_at: datetime, name: str) -> ApiKey:
        c = api_keys.c
        where = (c.tenant_id == tenant_id, c.id == key_id)
        with translated("retire API key"), self._conn.begin_nested():
            self._conn.execute(update(api_keys).where(*where).values(name=name))
            self._conn.execute(
                update(api_keys)
                .where(*where, or_(c.expires_at.is_(None), c.expires_at > expires_at))
                .values(expires_at=expires_at)
            )
        return self.get(tenant_id, key_id)

    def delete_owned(self, tenant_id: str, principal_id: str) -> int:
        query = delete(api_keys).where(
            api_keys.c.tenant_id == tenant_id, api_keys.c.principal_id == principal_id
        )
        with translated("delete API keys"):
            return int(self._conn.execute(query).rowcount)


def _binding(row: Row[Any]) -> RoleBinding:
    return RoleBinding(
        id=row.id,
        tenant_id=row.tenant_id,
        subject_type=SubjectType(row.subject_type),
        subject_name=row.subject_name,
        role=row.role,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class SQLBindingStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, binding: RoleBinding) -> None:
        values = {
            "id": binding.id,
            "tenant_id": binding.tenant_id,
            "subject_type": str(binding.subject_type),
            "subject_name": binding.subject_name,
            "role": binding.role,
            "created_at": binding.created_at,
            "expires_at": binding.expires_at,
        }
        with translated("create role binding"), self._conn.begin_nested():
            self._conn.execute(insert(role_bindings).values(values))

    def for_subject(
        self, tenant_id: str, subject_type: SubjectType, subject_name: str
    ) -> builtins.list[RoleBinding]:
        query = self._ordered(
            role_bindings.c.tenant_id == tenant_id,
            role_bindings.c.subject_type == str(subject_type),
            role_bindings.c.subject_name == subject_name,
        )
        with translated("list role bindings of a subject"):
            return [_binding(row) for row in self._conn.execute(query)]

    def list(self, tenant_id: str) -> builtins.list[RoleBinding]:
        return self.page(tenant_id, after=None, limit=None)

    def page(
        self, tenant_id: str, *, after: BindingKey | None, limit: int | None
    ) -> builtins.list[RoleBinding]:
        where = [role_bindings.c.tenant_id == tenant_id]
        if after is not None:  # a row value: SQLite and PostgreSQL compare it left to right
            where.append(tuple_(*self._order()) > tuple_(*(literal(part) for part in after)))
        query = self._ordered(*where).limit(limit)
        with translated("list role bindings"):
            return [_binding(row) for row in self._conn.execute(query)]

    def _order(self) -> builtins.list[ColumnElement[Any]]:
        c = role_bindings.c
        return [
            text_order(self._conn, column) for column in (c.subject_type, c.subject_name, c.role)
        ]

    def _ordered(self, *where: ColumnElement[bool]) -> Any:
        return select(role_bindings).where(*where).order_by(*self._order())
