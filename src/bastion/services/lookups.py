"""Finding what a person named: a tenant, a principal, a group, a custom role, a role binding
a resource rule or an agent registration token, by the name or id they typed.

A miss is a `NotFoundError` that names the thing and the tenant searched ("no group 'ops' in
tenant 'default'"), not the storage layer's "get group by name: no such group in this tenant".
Every look-up but the tenant's own is confined to one tenant, so the message is built from the
caller's words and tenant alone: an object of another tenant is as absent, in the same words,
as one that never existed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bastion.backends.protocols import UnitOfWork
from bastion.core.credentials import RegistrationToken
from bastion.core.model import (
    CustomRole,
    Group,
    Principal,
    PrincipalKind,
    ResourceRuleRecord,
    RoleBinding,
    Tenant,
)
from bastion.core.names import canonical_name
from bastion.errors import NotFoundError

# What each kind of principal is called in messages.
NOUNS = {
    PrincipalKind.USER: "user",
    PrincipalKind.SERVICE_ACCOUNT: "service account",
    PrincipalKind.AGENT: "agent",
}


@contextmanager
def _missing(message: str) -> Iterator[None]:
    """Inside, a `NotFoundError` from storage says ``message`` instead."""
    try:
        yield
    except NotFoundError:
        raise NotFoundError(message) from None


def get_tenant(tx: UnitOfWork, name: str) -> Tenant:
    """The tenant called ``name`` (any spelling)."""
    canonical = canonical_name(name)
    with _missing(f"no tenant {canonical!r}"):
        return tx.tenants.get_by_name(canonical)


def get_principal(tx: UnitOfWork, tenant: Tenant, kind: PrincipalKind, name: str) -> Principal:
    """The principal of ``kind`` called ``name`` (any spelling) in the tenant."""
    canonical = canonical_name(name)
    missing = f"no {NOUNS[kind]} {canonical!r} in tenant {tenant.name!r}"
    with _missing(missing):
        principal = tx.principals.get_by_name(tenant.id, canonical)
    if principal.kind is not kind:
        raise NotFoundError(missing)
    return principal


def get_any_principal(tx: UnitOfWork, tenant: Tenant, name: str) -> Principal:
    """The user, service account or agent called ``name`` (any spelling) in the tenant."""
    canonical = canonical_name(name)
    with _missing(f"no principal {canonical!r} in tenant {tenant.name!r}"):
        return tx.principals.get_by_name(tenant.id, canonical)


def get_group(tx: UnitOfWork, tenant: Tenant, name: str) -> Group:
    """The group called ``name`` (any spelling) in the tenant."""
    canonical = canonical_name(name)
    with _missing(f"no group {canonical!r} in tenant {tenant.name!r}"):
        return tx.groups.get_by_name(tenant.id, canonical)


def get_custom_role(tx: UnitOfWork, tenant: Tenant, name: str) -> CustomRole:
    """The tenant's stored role ``name``; built-in and configured roles are not stored."""
    with _missing(f"no custom role {name!r} in tenant {tenant.name!r}"):
        return tx.roles.get(tenant.id, name)


def get_binding(tx: UnitOfWork, tenant: Tenant, binding_id: str) -> RoleBinding:
    """The tenant's stored role binding with this id."""
    with _missing(f"no binding {binding_id!r} in tenant {tenant.name!r}"):
        return tx.bindings.get(tenant.id, binding_id)


def get_registration_token(tx: UnitOfWork, tenant: Tenant, token_id: str) -> RegistrationToken:
    """The tenant's agent registration token with this id."""
    with _missing(f"no registration token {token_id!r} in tenant {tenant.name!r}"):
        return tx.registration_tokens.get(tenant.id, token_id)


def get_rule(tx: UnitOfWork, tenant: Tenant, rule_id: str) -> ResourceRuleRecord:
    """The tenant's stored resource rule with this id."""
    with _missing(f"no rule {rule_id!r} in tenant {tenant.name!r}"):
        return tx.resource_rules.get(tenant.id, rule_id)
