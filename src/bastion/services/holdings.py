"""What a principal, a group or a set of roles holds, as permissions: what the admin API's
escalation guard (gateway/api/authz_guard.py) compares with what the caller holds, so that
nobody hands out more than they hold, whether by a binding, a group membership, a credential
or another principal's password, or the choice of a name that bastion.yaml binds roles to.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.model import Principal, PrincipalKind, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.core.rbac import Permission, RoleCatalog
from bastion.errors import RequestRejectedError
from bastion.services.authz import Authorizer
from bastion.services.authz_model import bindings_naming
from bastion.services.clock import Clock
from bastion.services.lookups import get_group, get_principal, get_tenant


class Holdings:
    def __init__(self, *, storage: Storage, authorizer: Authorizer, clock: Clock) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._clock = clock

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
        """`of_principal` inside the caller's transaction (for a principal it just created)."""
        subject = self._authorizer.subject(tx, principal, tenant=tenant, now=self._clock.now())
        return _permissions(subject.tenant.catalog, subject.access.roles)

    def of_group(self, *, tenant_name: str, name: str) -> tuple[Permission, ...]:
        """Every permission a member gains from the group: its stored and configured bindings
        that have not expired."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            group = get_group(tx, tenant, name)
            model = self._authorizer.tenant_model(tx, tenant)
            stored = tx.bindings.for_subject(tenant.id, SubjectType.GROUP, group.name)
            configured = model.configured(SubjectType.GROUP, group.name)
            roles = {b.role for b in stored if b.is_active(now)}
            roles |= {g.role for g in configured if g.active(now)}
            return _permissions(model.catalog, roles)

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
            catalog = self._authorizer.tenant_model(tx, tenant).catalog
        grants = bindings_naming(
            self._authorizer.settings,
            tenant=tenant.name,
            subject_type=SubjectType(kind.value),
            name=canonical_name(name),
        )
        return _permissions(catalog, {g.role for g in grants if g.active(now)})

    def of_roles(self, *, tenant_name: str, roles: Iterable[str]) -> tuple[Permission, ...]:
        """Every permission the named roles give (inherited ones included)."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            catalog = self._authorizer.tenant_model(tx, tenant).catalog
        wanted = set(roles)
        unknown = sorted(wanted - set(catalog))
        if unknown:
            raise RequestRejectedError(f"unknown role {unknown[0]}")
        return _permissions(catalog, wanted)


def _permissions(catalog: RoleCatalog, roles: Iterable[str]) -> tuple[Permission, ...]:
    found: dict[Permission, None] = {}
    for role in sorted(roles):
        if role in catalog:
            found.update(dict.fromkeys(catalog[role]))
    return tuple(found)
