"""The ``security.rbac`` and ``security.policies`` sections: roles, bindings, rules, Cedar."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Literal, NamedTuple, Self

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)

from bastion.config.issues import validation_issues
from bastion.config.models_base import (
    Bool,
    ConfigModel,
    KeyPath,
    Name,
    NestedValueError,
    NonEmptyStr,
    UtcDatetime,
)
from bastion.config.units import Duration
from bastion.core.rbac import BUILTIN_ROLES, ROLE_NAME_RULE, role_name_breaks_rule
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

    enabled: Bool = True
    default_role: NonEmptyStr | None = None
    roles: tuple[RoleConfig, ...] = ()
    bindings: tuple[BindingConfig, ...] = ()
    platform_bindings: tuple[PlatformBindingConfig, ...] = ()
    resource_rules: tuple[ResourceRuleConfig, ...] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _check_role_references(cls, data: object, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # Read from the input, not the model, so that a binding whose subject or expiry is
        # wrong still has its unknown role reported in the same run.
        if isinstance(data, RbacConfig):
            return handler(data)
        issues = _role_reference_issues(data) if isinstance(data, Mapping) else []
        try:
            rbac = handler(data)
        except ValidationError as exc:
            if not issues:
                raise
            raise NestedValueError([*validation_issues(exc), *issues]) from None
        if issues:
            raise NestedValueError(issues)
        return rbac


class _RoleEntry(NamedTuple):
    position: int
    name: str
    inherits: tuple[tuple[int, str], ...]


def _role_reference_issues(data: Mapping[str, object]) -> list[tuple[KeyPath, str]]:
    """Custom role names, inheritance cycles and every reference to a role that does not exist.

    Works on the input as written: items and values of the wrong type are skipped (their own
    validation reports them), so nothing here is a consequence of another error.
    """
    written = _field(data, "roles")
    items = list(_items(written))
    roles = [
        _RoleEntry(index, name, tuple(_texts(item.get("inherits"))))
        for index, item in items
        if isinstance(name := item.get("name"), str)
    ]
    issues = _role_name_issues(roles)
    issues.extend(_cycle_issues(roles))
    # With a role that has no readable name, any reference might be to it: say nothing.
    if written is not None and (not isinstance(written, list | tuple) or len(roles) < len(written)):
        return issues
    known = set(BUILTIN_ROLES) | {role.name for role in roles}
    for role in roles:
        for parent_index, parent in role.inherits:
            if parent not in known:
                path: KeyPath = ("roles", role.position, "inherits", parent_index)
                issues.append((path, f"unknown role {parent}"))
    for key in ("bindings", "platformBindings"):
        for index, item in _items(_field(data, key)):
            role_name = item.get("role")
            if isinstance(role_name, str) and role_name_breaks_rule(role_name):
                issues.append(((key, index, "role"), ROLE_NAME_RULE))
            elif isinstance(role_name, str) and role_name not in known:
                issues.append(((key, index, "role"), f"unknown role {role_name}"))
    default_role = _field(data, "defaultRole")
    if isinstance(default_role, str) and default_role not in known:
        issues.append((("defaultRole",), f"unknown role {default_role}"))
    return issues


def _field(data: Mapping[str, object], alias: str) -> object:
    """A key of ``security.rbac`` as written, by its alias or (``populate_by_name``) its name."""
    name = next(n for n, f in RbacConfig.model_fields.items() if (f.alias or n) == alias)
    return data.get(alias, data.get(name))


def _items(value: object) -> Iterator[tuple[int, Mapping[str, object]]]:
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if isinstance(item, ConfigModel):  # built in code: RbacConfig(roles=(RoleConfig(…),))
                yield index, item.model_dump(by_alias=True)
            elif isinstance(item, Mapping):
                yield index, item


def _texts(value: object) -> Iterator[tuple[int, str]]:
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield index, item


def _role_name_issues(roles: Sequence[_RoleEntry]) -> list[tuple[KeyPath, str]]:
    issues: list[tuple[KeyPath, str]] = []
    seen: set[str] = set()
    for role in roles:
        if role_name_breaks_rule(role.name):
            issues.append((("roles", role.position, "name"), ROLE_NAME_RULE))
        elif role.name in BUILTIN_ROLES:
            message = f"{role.name} is a built-in role; give the custom role another name"
            issues.append((("roles", role.position, "name"), message))
        elif role.name in seen:
            issues.append((("roles", role.position, "name"), f"role {role.name} is defined twice"))
        seen.add(role.name)
    return issues


def _cycle_issues(roles: Sequence[_RoleEntry]) -> list[tuple[KeyPath, str]]:
    """One issue per inheritance cycle, placed on the role whose ``inherits`` closes it."""
    index_of = {role.name: role.position for role in roles}
    parents: Mapping[str, tuple[str, ...]] = {
        role.name: tuple(parent for _, parent in role.inherits) for role in roles
    }
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
