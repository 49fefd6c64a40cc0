"""In-memory stores for authorization, with the SQL stores' semantics: custom roles, resource
rules, role bindings and the model version."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from typing import Protocol

from bastion.backends.memory.audit import utc
from bastion.backends.protocols import BindingKey, binding_key
from bastion.core.model import CustomRole, ResourceRuleRecord, RoleBinding, SubjectType, Tenant
from bastion.errors import ConflictError, NotFoundError


@dataclass
class AuthzTables:
    roles: dict[str, CustomRole] = field(default_factory=dict)
    rules: dict[str, ResourceRuleRecord] = field(default_factory=dict)
    version: list[int] = field(default_factory=lambda: [0])

    def copy(self) -> AuthzTables:
        return AuthzTables(dict(self.roles), dict(self.rules), list(self.version))


class _SharedTables(Protocol):
    tenants: dict[str, Tenant]
    bindings: dict[str, RoleBinding]
    authz: AuthzTables


class MemoryAuthzVersionStore:
    def __init__(self, tables: _SharedTables) -> None:
        self._t = tables

    def current(self) -> int:
        return self._t.authz.version[0]

    def bump(self) -> int:
        self._t.authz.version[0] += 1
        return self._t.authz.version[0]


def binding_get(tables: _SharedTables, tenant_id: str, binding_id: str) -> RoleBinding:
    binding = tables.bindings.get(binding_id)
    if binding is None or binding.tenant_id != tenant_id:
        raise NotFoundError("get role binding: no such binding in this tenant")
    return binding


def binding_delete(tables: _SharedTables, tenant_id: str, binding_id: str) -> RoleBinding:
    binding = binding_get(tables, tenant_id, binding_id)
    del tables.bindings[binding_id]
    tables.authz.version[0] += 1
    return binding


class MemoryRoleStore:
    def __init__(self, tables: _SharedTables) -> None:
        self._t = tables

    def create(self, role: CustomRole) -> None:
        operation = "create role"
        if role.tenant_id not in self._t.tenants:
            raise NotFoundError(f"{operation}: a row it refers to does not exist")
        if role.id in self._t.authz.roles or any(
            r.tenant_id == role.tenant_id and r.name == role.name
            for r in self._t.authz.roles.values()
        ):
            raise ConflictError(f"{operation}: a value that must be unique is already taken")
        self._t.authz.roles[role.id] = replace(
            role,
            created_at=utc(role.created_at, operation),
            updated_at=utc(role.updated_at, operation),
        )
        self._t.authz.version[0] += 1

    def update(self, role: CustomRole) -> None:
        current = self.get(role.tenant_id, role.name)
        self._t.authz.roles[current.id] = replace(
            current,
            permissions=tuple(role.permissions),
            inherits=tuple(role.inherits),
            updated_at=utc(role.updated_at, "update role"),
        )
        self._t.authz.version[0] += 1

    def get(self, tenant_id: str, name: str) -> CustomRole:
        for role in self._t.authz.roles.values():
            if role.tenant_id == tenant_id and role.name == name:
                return role
        raise NotFoundError("get role: no such role in this tenant")

    def list(self, tenant_id: str) -> builtins.list[CustomRole]:
        found = [r for r in self._t.authz.roles.values() if r.tenant_id == tenant_id]
        return sorted(found, key=lambda r: r.name)

    def delete(self, tenant_id: str, name: str) -> None:
        role = self.get(tenant_id, name)
        del self._t.authz.roles[role.id]
        self._t.authz.version[0] += 1


class MemoryResourceRuleStore:
    def __init__(self, tables: _SharedTables) -> None:
        self._t = tables

    def create(self, rule: ResourceRuleRecord) -> None:
        operation = "create resource rule"
        if rule.tenant_id not in self._t.tenants:
            raise NotFoundError(f"{operation}: a row it refers to does not exist")
        same = (rule.tenant_id, rule.resource_type, rule.resource_id)
        if rule.id in self._t.authz.rules or any(
            (r.tenant_id, r.resource_type, r.resource_id) == same
            for r in self._t.authz.rules.values()
        ):
            raise ConflictError(f"{operation}: a value that must be unique is already taken")
        self._t.authz.rules[rule.id] = replace(rule, created_at=utc(rule.created_at, operation))
        self._t.authz.version[0] += 1

    def get(self, tenant_id: str, rule_id: str) -> ResourceRuleRecord:
        rule = self._t.authz.rules.get(rule_id)
        if rule is None or rule.tenant_id != tenant_id:
            raise NotFoundError("get resource rule: no such rule in this tenant")
        return rule

    def list(self, tenant_id: str) -> builtins.list[ResourceRuleRecord]:
        return self.page(tenant_id, after=None, limit=None)

    def page(
        self, tenant_id: str, *, after: tuple[str, str] | None, limit: int | None
    ) -> builtins.list[ResourceRuleRecord]:
        found = sorted(
            (r for r in self._t.authz.rules.values() if r.tenant_id == tenant_id),
            key=lambda r: (r.resource_type, r.resource_id),
        )
        if after is not None:
            found = [r for r in found if (r.resource_type, r.resource_id) > after]
        return found[:limit]

    def naming(
        self, tenant_id: str, *, user: str | None = None, role: str | None = None
    ) -> builtins.list[ResourceRuleRecord]:
        return [
            r for r in self.list(tenant_id) if user in r.allowed_users or role in r.allowed_roles
        ]

    def update(self, rule: ResourceRuleRecord) -> None:
        current = self.get(rule.tenant_id, rule.id)
        self._t.authz.rules[rule.id] = replace(
            current,
            allowed_users=rule.allowed_users,
            allowed_roles=rule.allowed_roles,
            actions=rule.actions,
        )
        self._t.authz.version[0] += 1

    def delete(self, tenant_id: str, rule_id: str) -> None:
        self.get(tenant_id, rule_id)
        del self._t.authz.rules[rule_id]
        self._t.authz.version[0] += 1


class MemoryBindingStore:
    """Role bindings, with the SQL store's constraints; every change advances the version."""

    def __init__(self, tables: _SharedTables) -> None:
        self._t = tables

    def create(self, binding: RoleBinding) -> None:
        operation = "create role binding"
        expires = binding.expires_at
        stored = replace(
            binding,
            subject_type=SubjectType(binding.subject_type),
            created_at=utc(binding.created_at, operation),
            expires_at=None if expires is None else utc(expires, operation),
        )
        same = (stored.tenant_id, stored.subject_type, stored.subject_name, stored.role)
        if stored.id in self._t.bindings or any(
            (b.tenant_id, b.subject_type, b.subject_name, b.role) == same
            for b in self._t.bindings.values()
        ):
            raise ConflictError(f"{operation}: a value that must be unique is already taken")
        if stored.tenant_id not in self._t.tenants:
            raise NotFoundError(f"{operation}: a row it refers to does not exist")
        self._t.bindings[stored.id] = stored
        self._t.authz.version[0] += 1

    def for_subject(
        self, tenant_id: str, subject_type: SubjectType, subject_name: str
    ) -> builtins.list[RoleBinding]:
        return [
            b
            for b in self.list(tenant_id)
            if b.subject_type == subject_type and b.subject_name == subject_name
        ]

    def list(self, tenant_id: str) -> builtins.list[RoleBinding]:
        return self.page(tenant_id, after=None, limit=None)

    def page(
        self, tenant_id: str, *, after: BindingKey | None, limit: int | None
    ) -> builtins.list[RoleBinding]:
        found = sorted(
            (b for b in self._t.bindings.values() if b.tenant_id == tenant_id),
            key=binding_key,
        )
        found = [b for b in found if after is None or binding_key(b) > after]
        return found if limit is None else found[:limit]

    def get(self, tenant_id: str, binding_id: str) -> RoleBinding:
        return binding_get(self._t, tenant_id, binding_id)

    def delete(self, tenant_id: str, binding_id: str) -> RoleBinding:
        return binding_delete(self._t, tenant_id, binding_id)
