"""The rules a custom role is held to, and how roles are shown: read by `authz_admin.AuthzAdmin`
when roles change, and by the admin API and the CLI when they are listed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bastion.core.model import CustomRole
from bastion.core.names import canonical_name
from bastion.core.rbac import (
    BUILTIN_ROLES,
    ROLE_NAME_RULE,
    RoleCatalog,
    compile_roles,
    role_name_breaks_rule,
)
from bastion.errors import ConflictError, RequestRejectedError
from bastion.services.authz_model import AuthzSettings, compile_catalog, role_definition
from bastion.services.changes import plain_name, valid_name


def role_name(raw: str) -> str:
    """A new custom role's name: trimmed, and held to the rules of every other name (1 to 254
    characters, no control characters or slashes; `valid_name` checks its canonical form, this
    the name as it will be stored) and to `ROLE_NAME_RULE` (no comma or white space). Unlike
    other names it keeps its case: roles are matched exactly where bastion.yaml, bindings,
    resource rules and Cedar policies name them."""
    name = raw.strip()
    valid_name(name, "role")
    if role_name_breaks_rule(name):
        raise RequestRejectedError(ROLE_NAME_RULE)
    return plain_name(name, "role")


@dataclass(frozen=True, slots=True)
class RoleView:
    name: str
    source: str  # builtin | config | custom
    permissions: tuple[str, ...]
    inherits: tuple[str, ...]
    effective: tuple[str, ...]


def role_views(settings: AuthzSettings, stored: Sequence[CustomRole]) -> list[RoleView]:
    """Every role a tenant has (built in, from bastion.yaml, stored), by name, with the
    permissions it grants through inheritance."""
    catalog = compile_catalog(settings, stored)
    configured = {r.name for r in settings.roles}
    views = []
    for name, definition in sorted(catalog.definitions.items()):
        source = (
            "builtin" if name in BUILTIN_ROLES else ("config" if name in configured else "custom")
        )
        views.append(
            RoleView(
                name=name,
                source=source,
                permissions=tuple(str(p) for p in definition.permissions),
                inherits=definition.inherits,
                effective=tuple(str(p) for p in catalog[name]),
            )
        )
    return views


def catalog_with(
    settings: AuthzSettings, stored: Sequence[CustomRole], role: CustomRole, *, new: bool
) -> RoleCatalog:
    """The tenant's catalog with ``role`` in it (``stored``: the tenant's custom roles):
    refuses clashes, unknown roles, cycles, and a ``new`` role named like another but for case
    or width (as for every name)."""
    fixed = [*BUILTIN_ROLES, *(r.name for r in settings.roles)]
    if role.name in fixed:
        raise ConflictError(f"role {role.name} is defined by bastion or its configuration")
    others = [r for r in stored if r.name != role.name]
    if new and (taken := _look_alike(role.name, [*fixed, *(r.name for r in others)])):
        raise ConflictError(f"a role named {taken} already exists")
    try:
        definitions = [role_definition(r) for r in others]
        return compile_roles([*settings.roles, *definitions, role_definition(role)])
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None


def _look_alike(name: str, names: Sequence[str]) -> str | None:
    """Another role's name that is ``name`` but for case or Unicode width (``Admin``)."""
    canonical = canonical_name(name)
    return next((n for n in names if n != name and canonical_name(n) == canonical), None)
