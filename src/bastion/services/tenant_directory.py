"""Tenants: create, list, show, update (display name, disabled) and delete, each change audited
in its own transaction; disabling one advances the revocation epoch, so its principals'
cached credentials stop working on the next request."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.credentials import RegistrationToken, TenantState
from bastion.core.ids import new_id
from bastion.core.model import Tenant
from bastion.errors import ConflictError
from bastion.services.changes import record, toggle_action, unique, valid_name
from bastion.services.clock import Clock
from bastion.services.lookups import get_tenant
from bastion.services.revocation import Revoker


@dataclass(frozen=True, slots=True)
class TenantView:
    tenant: Tenant
    state: TenantState
    principals: int


class TenantDirectory:
    """The tenant half of `bastion.services.directory.DirectoryService`."""

    def __init__(self, *, storage: Storage, clock: Clock, revoker: Revoker) -> None:
        self._storage = storage
        self._clock = clock
        self._revoker = revoker

    def create_tenant(self, *, name: str, display_name: str, actor: dict[str, Any]) -> Tenant:
        now = self._clock.now()
        tenant = Tenant(id=new_id("ten"), name=valid_name(name, "tenant"), created_at=now)
        with self._storage.transaction() as tx:
            with unique(f"a tenant named {tenant.name} already exists"):
                tx.tenants.create(tenant)
            if display_name:
                tx.tenant_states.put(TenantState(tenant.id, display_name))
            _record(tx, "tenant.create", tenant, now, actor)
        return tenant

    def list_tenants(self) -> builtins.list[TenantView]:
        with self._storage.transaction() as tx:
            return [
                TenantView(t, tx.tenant_states.get(t.id), tx.principals.count(t.id))
                for t in tx.tenants.list()
            ]

    def show_tenant(self, name: str) -> TenantView:
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, name)
            return TenantView(
                tenant, tx.tenant_states.get(tenant.id), tx.principals.count(tenant.id)
            )

    def update_tenant(
        self,
        name: str,
        *,
        display_name: str | None = None,
        disabled: bool | None = None,
        actor: dict[str, Any],
    ) -> TenantView:
        now = self._clock.now()
        epoch = None
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, name)
            state = tx.tenant_states.get(tenant.id)
            changed = replace(
                state,
                display_name=state.display_name if display_name is None else display_name,
                disabled=state.disabled if disabled is None else disabled,
            )
            tx.tenant_states.put(changed)
            if changed.disabled and not state.disabled:
                epoch = self._revoker.bump(tx)
            action = toggle_action("tenant", state.disabled, changed.disabled)
            details = {"displayName": changed.display_name, "disabled": changed.disabled}
            _record(tx, action, tenant, now, actor, details)
            view = TenantView(tenant, changed, tx.principals.count(tenant.id))
        if epoch is not None:
            self._revoker.announce(epoch)
        return view

    def delete_tenant(self, name: str, *, actor: dict[str, Any]) -> Tenant:
        """Delete a tenant that has no principals or groups left, nor a registration token
        that could still register an agent. What only configured it goes with it (custom
        roles, resource rules, stored bindings, spent registration tokens), counted in the
        ``tenant.delete`` event."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, name)
            if tx.principals.count(tenant.id) or tx.groups.page(tenant.id, after=None, limit=1):
                raise ConflictError(f"tenant {tenant.name!r} still has principals or groups")
            tokens = tx.registration_tokens.list(tenant.id)
            for token in tokens:
                if token.used_at is None and token.revoked_at is None and token.expires_at > now:
                    raise ConflictError(
                        f"tenant {tenant.name!r} still has registration token {token.id}, "
                        "which could register an agent; revoke it first"
                    )
            deleted = _delete_configuration(tx, tenant, tokens)
            tx.tenant_states.delete(tenant.id)
            tx.tenants.delete(tenant.id)
            _record(
                tx, "tenant.delete", tenant, now, actor, {"deleted": deleted} if deleted else None
            )
        return tenant


def _delete_configuration(
    tx: UnitOfWork, tenant: Tenant, tokens: builtins.list[RegistrationToken]
) -> dict[str, int]:
    """Remove the tenant's roles, rules, bindings and (spent) tokens; how many of each kind
    went, for the kinds it had. A change to roles, rules or bindings moves the authorization
    version, so no replica keeps a compiled model of the tenant (one of the same name made
    later starts with none)."""
    roles, rules = tx.roles.list(tenant.id), tx.resource_rules.list(tenant.id)
    bindings = tx.bindings.list(tenant.id)
    for binding in bindings:
        tx.bindings.delete(tenant.id, binding.id)
    for rule in rules:
        tx.resource_rules.delete(tenant.id, rule.id)
    for role in roles:
        tx.roles.delete(tenant.id, role.name)
    for token in tokens:
        tx.registration_tokens.delete(tenant.id, token.id)
    if roles or rules or bindings:
        tx.authz_versions.bump()
    counts = {
        "roles": len(roles),
        "resourceRules": len(rules),
        "bindings": len(bindings),
        "agentRegistrations": len(tokens),
    }
    return {key: count for key, count in counts.items() if count}


def _record(
    tx: UnitOfWork,
    action: str,
    tenant: Tenant,
    now: datetime,
    actor: dict[str, Any],
    details: dict[str, Any] | None = None,
) -> None:
    """The audit event of a change to ``tenant``, in the change's transaction."""
    resource = {"type": "tenant", "id": tenant.name}
    record(
        tx,
        action=action,
        tenant=tenant.name,
        now=now,
        actor=actor,
        resource=resource,
        details=details,
    )
