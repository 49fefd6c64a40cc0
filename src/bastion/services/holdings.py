"""What a principal, a group or a set of roles holds, as permissions: what the admin API's
escalation guard (gateway/api/authz_guard.py) compares with what the caller holds, so that
nobody hands out more than they hold, whether by a binding, a group membership, a credential
or another principal's password, or the choice of a name that bastion.yaml binds roles to.

Resource rules admit by name too: a user named in ``allowedUsers``, or a holder of a role in
``allowedRoles`` (inherited ones included). So whatever makes someone a holder of a role, or
gives control of a principal, also hands out the admission of every rule of the tenant that
admits it (`RuleAdmission`): the caller must be admitted by the rule itself, or hold `*:*`.
Deleting a rule hands its admission to everyone, and is held to the same.

Cedar policies grant by name too, and their names carry no tenant: a permit naming
``Group::"contractors"`` applies to a group of that name in every tenant, and may give anything
anywhere its members act. So whatever makes someone one of a name a loaded policy names, or
stops them being one (a forbid may name it), is held to the most there is: `*:*`, in the
platform tenant only (`PolicyReach`; `AuthorizationError` naming the policy elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.cedar_schema import PRINCIPAL_TYPES
from bastion.core.model import Principal, PrincipalKind, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.core.rbac import WILDCARD, Permission, RoleCatalog
from bastion.core.resource_rules import ResourceRule
from bastion.errors import AuthorizationError, RequestRejectedError
from bastion.services.authz import Authorizer, Subject
from bastion.services.authz_model import TenantModel, bindings_naming
from bastion.services.clock import Clock
from bastion.services.lookups import get_group, get_principal, get_tenant
from bastion.services.policies import PolicyEngine


@dataclass(frozen=True, slots=True)
class PolicyReach(Permission):
    """`*:*`, for what Cedar policy ``policy`` may give through a name it names; the guard
    compares it as any permission, and its refusal then names the policy."""

    policy: str = ""

    def __str__(self) -> str:
        return f"{self.resource}:{self.action} (Cedar policy {self.policy} names it)"


@dataclass(frozen=True, slots=True)
class RuleAdmission(Permission):
    """The admission resource rule ``rule`` gives whoever it admits. The guard lets a caller
    the rule admits itself hand it out (`admits`); anyone else must hold it as the permission
    `*:*`, for whoever holds that may change the stored rules anyway."""

    rule: ResourceRule

    def admits(self, subject: Subject) -> bool:
        principal = subject.principal
        is_user = principal.kind is PrincipalKind.USER
        return self.rule.admits(principal.name, subject.access.roles, is_user=is_user)

    def __str__(self) -> str:
        return f"admission by {self.rule.via} on {self.rule.resource}"


class Holdings:
    def __init__(
        self,
        *,
        storage: Storage,
        authorizer: Authorizer,
        clock: Clock,
        policies: PolicyEngine | None,
        platform_tenant: str,
    ) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._clock = clock
        self._policies = policies
        self._platform_tenant = platform_tenant

    def of_principal(
        self, *, tenant_name: str, kind: PrincipalKind, name: str
    ) -> tuple[Permission, ...]:
        """Every permission the roles reaching the principal now give it."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            return self.of_principal_in(tx, tenant, get_principal(tx, tenant, kind, name))

    def of_principal_in(
        self, tx: UnitOfWork, tenant: Tenant, principal: Principal
    ) -> tuple[Permission, ...]:
        """`of_principal` inside the caller's transaction (for a principal it just created).
        Whoever controls the principal also gets what it is given by name (`by_name_in`)."""
        subject = self._authorizer.subject(tx, principal, tenant=tenant, now=self._clock.now())
        granted = _permissions(subject.tenant.catalog, subject.access.roles)
        return granted + self._by_name(subject)

    def by_name_in(
        self, tx: UnitOfWork, tenant: Tenant, principal: Principal
    ) -> tuple[Permission, ...]:
        """What the principal is given by name rather than by its roles' permissions, which a
        credential of it carries whatever its scopes: the admission of every resource rule that
        admits it by its name (a user) or its roles (`RuleAdmission`), and what policies give
        it by its own name, its groups' and its roles' (`PolicyReach`)."""
        subject = self._authorizer.subject(tx, principal, tenant=tenant, now=self._clock.now())
        return self._by_name(subject)

    def _by_name(self, subject: Subject) -> tuple[Permission, ...]:
        principal = subject.principal
        user = principal.name if principal.kind is PrincipalKind.USER else None
        admitted = _admissions(subject.tenant, subject.access.roles, user=user)
        named = [(PRINCIPAL_TYPES[principal.kind.value], principal.name)]
        named += [("Group", g) for g in subject.groups]
        named += [("Role", r) for r in sorted(subject.access.roles)]
        return admitted + self._reach(subject.tenant.tenant.name, named)

    def of_group(self, *, tenant_name: str, name: str) -> tuple[Permission, ...]:
        """Every permission a member gains from the group: its stored and configured bindings
        that have not expired (with the admissions of their roles)."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            group = get_group(tx, tenant, name)
            model = self._authorizer.tenant_model(tx, tenant)
            stored = tx.bindings.for_subject(tenant.id, SubjectType.GROUP, group.name)
            configured = model.configured(SubjectType.GROUP, group.name)
            roles = {b.role for b in stored if b.is_active(now)}
            roles |= {g.role for g in configured if g.active(now)}
        granted = _permissions(model.catalog, roles) + _admissions(model, roles)
        return granted + self._reach(tenant.name, [("Group", group.name)])

    def of_configured_name(
        self, *, tenant_name: str, kind: PrincipalKind, name: str
    ) -> tuple[Permission, ...]:
        """Every permission bastion.yaml's bindings give now to whoever holds ``name`` as a
        ``kind`` in the tenant, whether or not it exists yet: they grant by name, so choosing
        the name hands them out. Platform bindings homed in the tenant count with their roles
        as this tenant defines them (the caller is compared at home; they act elsewhere)."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            model = self._authorizer.tenant_model(tx, tenant)
        grants = bindings_naming(
            self._authorizer.settings,
            tenant=tenant.name,
            subject_type=SubjectType(kind.value),
            name=canonical_name(name),
        )
        roles = {g.role for g in grants if g.active(now)}
        granted = _permissions(model.catalog, roles) + _admissions(model, roles)
        return granted + self._reach(tenant.name, [(PRINCIPAL_TYPES[kind.value], name)])

    def of_roles(self, *, tenant_name: str, roles: Iterable[str]) -> tuple[Permission, ...]:
        """Every permission the named roles give (inherited ones included), and the admission
        of every rule that admits their holders."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            model = self._authorizer.tenant_model(tx, tenant)
        catalog = model.catalog
        wanted = set(roles)
        unknown = sorted(wanted - set(catalog))
        if unknown:
            raise RequestRejectedError(f"unknown role {unknown[0]}")
        reach = self._reach(tenant.name, _role_names(catalog, wanted))
        return _permissions(catalog, wanted) + _admissions(model, wanted) + reach

    def of_default_role(self, *, tenant_name: str) -> tuple[Permission, ...]:
        """What `security.rbac.defaultRole` gives (`of_roles`), which a principal holds while
        no binding of it is in force; nothing when none is configured."""
        default = self._authorizer.settings.default_role
        if default is None:
            return ()
        return self.of_roles(tenant_name=tenant_name, roles=[default])

    def admitting(self, *, tenant_name: str, roles: Iterable[str]) -> tuple[Permission, ...]:
        """The admission of every rule that admits a holder of ``roles`` or of a role they
        inherit (`RuleAdmission`); a role not defined yet counts by its name alone."""
        with self._storage.transaction() as tx:
            model = self._authorizer.tenant_model(tx, get_tenant(tx, tenant_name))
        return _admissions(model, roles)

    def of_names(
        self, *, tenant_name: str, groups: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> tuple[Permission, ...]:
        """What policies may give or take through making someone a member of ``groups``, or a
        holder of ``roles`` and every role they inherit, or the reverse: `*:*` when one names
        any of them (`PolicyReach`), else nothing; `AuthorizationError` outside the platform
        tenant. A role not defined yet counts by its name alone."""
        named = [("Group", g) for g in groups]
        if roles:
            with self._storage.transaction() as tx:
                catalog = self._authorizer.tenant_model(tx, get_tenant(tx, tenant_name)).catalog
            named += _role_names(catalog, roles)
        return self._reach(tenant_name, named)

    def _reach(self, tenant: str, named: Iterable[tuple[str, str]]) -> tuple[Permission, ...]:
        """`PolicyReach` for the first of ``named`` (Cedar type, id) a loaded policy names.

        Outside the platform tenant nobody may: a policy there is the operators' and applies
        to every tenant's namesakes, which a tenant's own holdings can never cover."""
        if self._policies is None:
            return ()
        for kind, name in named:
            policies = self._policies.naming(kind, name)
            if not policies:
                continue
            if tenant != self._platform_tenant:
                raise AuthorizationError(
                    (
                        f'{kind}::"{name}" is named by Cedar policy {policies[0]}, which holds in'
                        " every tenant: only the platform tenant's admins may make or unmake it",
                    )
                )
            return (PolicyReach(WILDCARD, WILDCARD, policies[0]),)
        return ()


def _held(catalog: RoleCatalog, roles: Iterable[str]) -> list[str]:
    """The roles a holder of ``roles`` is in: each with everything it inherits (a role not
    defined yet, by its name alone)."""
    return [r for role in sorted(roles) for r in catalog.ancestors(role) or (role,)]


def _role_names(catalog: RoleCatalog, roles: Iterable[str]) -> list[tuple[str, str]]:
    """The Cedar roles of a holder of ``roles`` (`_held`)."""
    return [("Role", r) for r in _held(catalog, roles)]


def _admissions(
    model: TenantModel, roles: Iterable[str], *, user: str | None = None
) -> tuple[Permission, ...]:
    """`RuleAdmission` for every rule of the tenant (configured or stored) that admits a
    holder of ``roles`` (`_held`), or the user named ``user``."""
    held = frozenset(_held(model.catalog, roles))
    return tuple(
        RuleAdmission(WILDCARD, WILDCARD, rule) for rule in model.rules.admitting(held, user=user)
    )


def _permissions(catalog: RoleCatalog, roles: Iterable[str]) -> tuple[Permission, ...]:
    found: dict[Permission, None] = {}
    for role in sorted(roles):
        if role in catalog:
            found.update(dict.fromkeys(catalog[role]))
    return tuple(found)
