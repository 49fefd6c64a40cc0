"""The ``security.rbac`` and ``security.policies`` sections: roles, bindings, rules, Cedar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from bastion.config.models_base import (
    ConfigModel,
    KeyPath,
    Name,
    NestedValueError,
    NonEmptyStr,
    UtcDatetime,
)
from bastion.config.units import Duration
from bastion.core.rbac import BUILTIN_ROLES
from bastion.core.resource_rules import parse_resource

SubjectKind = Literal["user", "group", "serviceAccount", "agent"]


class PermissionRuleConfig(ConfigModel):
    """Actions a role may perform on one resource type (``*`` matches any)."""

    resource: Name
    actions: Annotated[tuple[Name, ...], Field(min_length=1)]


class RoleConfig(ConfigModel):
    """A custom role: its own permissions plus those of the roles it inherits."""

    name: NonEmptyStr
    permissions: tuple[PermissionRuleConfig, ...] = ()
    inherits: tuple[NonEmptyStr, ...] = ()


class SubjectConfig(ConfigModel):
    """Who a binding gives a role to."""

    type: SubjectKind
    name: NonEmptyStr


class BindingConfig(ConfigModel):
    """Gives ``role`` to ``subject`` in ``tenant`` (or the default tenant) until ``expires``."""

    subject: SubjectConfig
    role: NonEmptyStr
    tenant: NonEmptyStr | None = None
    expires: UtcDatetime | None = None


class PlatformBindingConfig(ConfigModel):
    """Gives ``role`` to ``subject`` of ``tenant`` in other tenants: the only way across."""

    subject: SubjectConfig
    role: NonEmptyStr
    tenant: NonEmptyStr | None = None
    target_tenants: Annotated[tuple[NonEmptyStr, ...], Field(min_length=1)]
    expires: UtcDatetime | None = None


class ResourceRuleConfig(ConfigModel):
    """Who may act on one resource instance (``patterns/sensitive-analysis``)."""

    resource: NonEmptyStr
    allowed_users: tuple[NonEmptyStr, ...] = ()
    allowed_roles: tuple[NonEmptyStr, ...] = ()
    actions: tuple[Name, ...] = ()
    tenant: NonEmptyStr | None = None

    @field_validator("resource")
    @classmethod
    def _type_and_id(cls, value: str) -> str:
        parse_resource(value)
        return value


class PoliciesConfig(ConfigModel):
    """Cedar policies evaluated after RBAC: any matching forbid denies, a permit allows."""

    files: tuple[NonEmptyStr, ...] = ()
    schema_file: NonEmptyStr | None = Field(default=None, alias="schema")
    reload_interval: Duration = timedelta(seconds=2)


class RbacConfig(ConfigModel):
    """Role-based access control: built-in roles, custom roles and bindings."""

    enabled: bool = True
    default_role: NonEmptyStr | None = None
    roles: tuple[RoleConfig, ...] = ()
    bindings: tuple[BindingConfig, ...] = ()
    platform_bindings: tuple[PlatformBindingConfig, ...] = ()
    resource_rules: tuple[ResourceRuleConfig, ...] = ()

    @model_validator(mode="after")
    def _check_role_references(self) -> RbacConfig:
        issues = _role_name_issues(self.roles)
        known = set(BUILTIN_ROLES) | {role.name for role in self.roles}
        for index, role in enumerate(self.roles):
            for parent_index, parent in enumerate(role.inherits):
                if parent not in known:
                    path: KeyPath = ("roles", index, "inherits", parent_index)
                    issues.append((path, f"unknown role {parent}"))
        issues.extend(_cycle_issues(self.roles))
        for index, binding in enumerate(self.bindings):
            if binding.role not in known:
                issues.append((("bindings", index, "role"), f"unknown role {binding.role}"))
        for index, platform in enumerate(self.platform_bindings):
            if platform.role not in known:
                path = ("platformBindings", index, "role")
                issues.append((path, f"unknown role {platform.role}"))
        if self.default_role is not None and self.default_role not in known:
            issues.append((("defaultRole",), f"unknown role {self.default_role}"))
        if issues:
            raise NestedValueError(issues)
        return self


def _role_name_issues(roles: Sequence[RoleConfig]) -> list[tuple[KeyPath, str]]:
    issues: list[tuple[KeyPath, str]] = []
    seen: set[str] = set()
    for index, role in enumerate(roles):
        if role.name in BUILTIN_ROLES:
            message = f"{role.name} is a built-in role; give the custom role another name"
            issues.append((("roles", index, "name"), message))
        elif role.name in seen:
            issues.append((("roles", index, "name"), f"role {role.name} is defined twice"))
        seen.add(role.name)
    return issues


def _cycle_issues(roles: Sequence[RoleConfig]) -> list[tuple[KeyPath, str]]:
    """One issue per inheritance cycle, placed on the role whose ``inherits`` closes it."""
    index_of = {role.name: index for index, role in enumerate(roles)}
    parents: Mapping[str, tuple[str, ...]] = {role.name: role.inherits for role in roles}
    issues: list[tuple[KeyPath, str]] = []
    finished: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        stack = (*trail, name)
        for parent in parents.get(name, ()):
            if parent in stack:
                cycle = (*stack[stack.index(parent) :], parent)
                path: KeyPath = ("roles", index_of[name], "inherits")
                issues.append((path, "inheritance cycle " + " -> ".join(cycle)))
            elif parent in parents and parent not in finished:
                visit(parent, stack)
        finished.add(name)

    for role in roles:
        if role.name not in finished:
            visit(role.name, ())
    return issues
