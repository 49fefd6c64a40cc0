"""The authorization model: what configuration declares, and one tenant's compiled view of it.

`AuthzSettings` holds the parts of bastion.yaml (custom roles, bindings, platform bindings,
resource rules, the default role). `TenantModel` is one tenant's role catalog, resource rules
and configured bindings, compiled from the settings plus the tenant's stored roles and rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bastion.backends.protocols import UnitOfWork
from bastion.core.engine import check_tenant
from bastion.core.grants import BindingGrant
from bastion.core.model import CustomRole, ResourceRuleRecord, SubjectType, Tenant
from bastion.core.rbac import Permission, RoleCatalog, RoleDefinition, compile_roles
from bastion.core.resource_rules import ResourceRule, RuleIndex

log = logging.getLogger("bastion.authz")

ALL_TENANTS = "*"


@dataclass(frozen=True, slots=True)
class StaticBinding:
    """A binding declared in bastion.yaml (``security.rbac.bindings``).

    ``tenant`` None means the default tenant (``security.defaultTenant``).
    """

    subject_type: SubjectType
    subject_name: str
    role: str
    tenant: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlatformBinding:
    """A cross-tenant binding (``security.rbac.platformBindings``): a subject of ``home``
    acts with ``role`` in each tenant of ``targets`` (``*`` for every tenant)."""

    subject_type: SubjectType
    subject_name: str
    role: str
    home: str
    targets: frozenset[str]
    via: str
    expires_at: datetime | None = None

    def reaches(self, target: str) -> bool:
        return ALL_TENANTS in self.targets or target in self.targets


@dataclass(frozen=True, slots=True)
class ConfiguredRule:
    """A resource rule from ``security.rbac.resourceRules``, in tenant ``tenant``."""

    tenant: str
    rule: ResourceRule


@dataclass(frozen=True)
class AuthzSettings:
    """Everything bastion.yaml says about authorization."""

    roles: Sequence[RoleDefinition] = ()
    bindings: Sequence[StaticBinding] = ()
    platform_bindings: Sequence[PlatformBinding] = ()
    rules: Sequence[ConfiguredRule] = ()
    default_role: str | None = None
    default_tenant: str = "default"


def bindings_naming(
    settings: AuthzSettings, *, tenant: str, subject_type: SubjectType, name: str
) -> tuple[BindingGrant, ...]:
    """The bindings bastion.yaml gives to whoever holds ``name`` (canonical) in ``tenant``: its
    ``security.rbac.bindings`` there, and the ``platformBindings`` whose home it is (those act
    in other tenants). Expired ones too: they still name the subject."""
    found = [
        BindingGrant(b.role, f"security.rbac.bindings[{index}]", b.expires_at)
        for index, b in enumerate(settings.bindings)
        if (b.tenant or settings.default_tenant) == tenant
        and b.subject_type is subject_type
        and b.subject_name == name
    ]
    found.extend(
        BindingGrant(b.role, b.via, b.expires_at)
        for b in settings.platform_bindings
        if b.home == tenant and b.subject_type is subject_type and b.subject_name == name
    )
    return tuple(found)


def role_definition(role: CustomRole) -> RoleDefinition:
    permissions = tuple(Permission.parse(text) for text in role.permissions)
    return RoleDefinition(role.name, permissions, tuple(role.inherits))


def rule_from_record(record: ResourceRuleRecord) -> ResourceRule:
    return ResourceRule(
        resource_type=record.resource_type,
        resource_id=record.resource_id,
        allowed_users=frozenset(record.allowed_users),
        allowed_roles=frozenset(record.allowed_roles),
        actions=frozenset(record.actions) or None,
        via=f"rule {record.id}",
    )


class TenantModel:
    """One tenant's roles, rules and configured bindings, compiled for look-ups."""

    __slots__ = ("catalog", "own", "rules", "static", "tenant")

    def __init__(
        self,
        tenant: Tenant,
        catalog: RoleCatalog,
        rules: RuleIndex,
        static: dict[tuple[SubjectType, str], tuple[BindingGrant, ...]],
    ) -> None:
        self.tenant = tenant
        self.catalog = catalog
        self.rules = rules
        self.static = static
        self.own = check_tenant(home=tenant.name, target=tenant.name, platform_via=None)

    def configured(self, subject_type: SubjectType, name: str) -> tuple[BindingGrant, ...]:
        return self.static.get((subject_type, name), ())


def compile_catalog(settings: AuthzSettings, stored: Sequence[CustomRole]) -> RoleCatalog:
    """Configured roles plus a tenant's stored roles. A stored role that clashes with a
    configured one, or that no longer compiles, is left out (it grants nothing) and logged."""
    configured = {role.name for role in settings.roles}
    extra = [role_definition(r) for r in stored if r.name not in configured]
    try:
        return compile_roles([*settings.roles, *extra])
    except ValueError as exc:
        log.error("stored custom roles left out: %s", exc)
        return compile_roles(settings.roles)


def load_tenant(tx: UnitOfWork, settings: AuthzSettings, tenant: Tenant) -> TenantModel:
    """Read a tenant's stored roles and rules and compile them with the configuration."""
    catalog = compile_catalog(settings, tx.roles.list(tenant.id))
    rules = [c.rule for c in settings.rules if c.tenant == tenant.name]
    rules.extend(rule_from_record(r) for r in tx.resource_rules.list(tenant.id))
    static: dict[tuple[SubjectType, str], list[BindingGrant]] = {}
    for index, binding in enumerate(settings.bindings):
        if (binding.tenant or settings.default_tenant) != tenant.name:
            continue
        grant = BindingGrant(binding.role, f"security.rbac.bindings[{index}]", binding.expires_at)
        static.setdefault((binding.subject_type, binding.subject_name), []).append(grant)
    frozen = {key: tuple(value) for key, value in static.items()}
    return TenantModel(tenant, catalog, RuleIndex(rules), frozen)
