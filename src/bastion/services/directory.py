"""Tenants and principals (users, service accounts, agents): create, list, show, update,
disable and delete, each change audited in its own transaction.

Names are canonicalised once (NFKC + casefold, `bastion.core.names`), so look-alike spellings
of a login meet the same account. Disabling or deleting anything that can hold a credential
advances the revocation epoch, so cached credentials stop working on the next request.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, replace
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.credentials import TenantState
from bastion.core.ids import new_id
from bastion.core.model import Principal, PrincipalKind, Tenant
from bastion.core.names import canonical_name
from bastion.errors import ConflictError, NotFoundError, RequestRejectedError
from bastion.services.audit import append_events, build_event
from bastion.services.clock import Clock
from bastion.services.revocation import Revoker

MAX_NAME_LENGTH = 254
ID_PREFIX = {
    PrincipalKind.USER: "usr",
    PrincipalKind.SERVICE_ACCOUNT: "sa",
    PrincipalKind.AGENT: "agt",
}
RESOURCE = {
    PrincipalKind.USER: "user",
    PrincipalKind.SERVICE_ACCOUNT: "serviceaccount",
    PrincipalKind.AGENT: "agent",
}


def valid_name(raw: str, what: str) -> str:
    """The canonical form of a name a person typed; `RequestRejectedError` if unusable."""
    name = canonical_name(raw)
    if not name or len(name) > MAX_NAME_LENGTH:
        raise RequestRejectedError(f"a {what} name must be 1 to {MAX_NAME_LENGTH} characters")
    if any(not ch.isprintable() or ch in "/\\" for ch in name) or name != name.strip():
        raise RequestRejectedError(f"a {what} name must not contain control characters or slashes")
    return name


@dataclass(frozen=True, slots=True)
class TenantView:
    tenant: Tenant
    state: TenantState
    principals: int


def record(
    tx: UnitOfWork,
    *,
    action: str,
    tenant: str,
    now: Any,
    actor: dict[str, Any],
    resource: dict[str, Any],
    details: dict[str, Any] | None = None,
    outcome: str = "success",
) -> None:
    """Append one audit event in the caller's transaction."""
    event = build_event(
        action=action,
        outcome=outcome,
        tenant=tenant,
        now=now,
        actor=actor,
        resource=resource,
        details=details,
    )
    append_events(tx, [event])


class DirectoryService:
    def __init__(self, *, storage: Storage, clock: Clock, revoker: Revoker) -> None:
        self._storage = storage
        self._clock = clock
        self._revoker = revoker

    # -- tenants ---------------------------------------------------------------------------

    def create_tenant(self, *, name: str, display_name: str, actor: dict[str, Any]) -> Tenant:
        now = self._clock.now()
        tenant = Tenant(id=new_id("ten"), name=valid_name(name, "tenant"), created_at=now)
        with self._storage.transaction() as tx:
            tx.tenants.create(tenant)
            if display_name:
                tx.tenant_states.put(TenantState(tenant.id, display_name))
            resource = {"type": "tenant", "id": tenant.name}
            record(
                tx,
                action="tenant.create",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource=resource,
            )
        return tenant

    def list_tenants(self) -> builtins.list[TenantView]:
        with self._storage.transaction() as tx:
            return [
                TenantView(t, tx.tenant_states.get(t.id), len(tx.principals.list(t.id)))
                for t in tx.tenants.list()
            ]

    def show_tenant(self, name: str) -> TenantView:
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(canonical_name(name))
            return TenantView(
                tenant, tx.tenant_states.get(tenant.id), len(tx.principals.list(tenant.id))
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
            tenant = tx.tenants.get_by_name(canonical_name(name))
            state = tx.tenant_states.get(tenant.id)
            changed = replace(
                state,
                display_name=state.display_name if display_name is None else display_name,
                disabled=state.disabled if disabled is None else disabled,
            )
            tx.tenant_states.put(changed)
            if changed.disabled and not state.disabled:
                epoch = self._revoker.bump(tx)
            action = _toggle_action("tenant", state.disabled, changed.disabled)
            details = {"displayName": changed.display_name, "disabled": changed.disabled}
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
            view = TenantView(tenant, changed, len(tx.principals.list(tenant.id)))
        if epoch is not None:
            self._revoker.announce(epoch)
        return view

    def delete_tenant(self, name: str, *, actor: dict[str, Any]) -> Tenant:
        """Delete a tenant that has no principals, groups or bindings left."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(canonical_name(name))
            if tx.principals.list(tenant.id) or tx.groups.list(tenant.id):
                raise ConflictError(f"tenant {tenant.name!r} still has principals or groups")
            for token in tx.registration_tokens.list(tenant.id):
                raise ConflictError(
                    f"tenant {tenant.name!r} still has registration token {token.id}"
                )
            tx.tenant_states.delete(tenant.id)
            tx.tenants.delete(tenant.id)
            resource = {"type": "tenant", "id": tenant.name}
            record(
                tx,
                action="tenant.delete",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource=resource,
            )
        return tenant

    # -- principals ------------------------------------------------------------------------

    def create_principal(
        self,
        tx: UnitOfWork,
        *,
        tenant: Tenant,
        kind: PrincipalKind,
        name: str,
        display_name: str,
        actor: dict[str, Any],
        details: dict[str, Any] | None = None,
        principal_id: str | None = None,
    ) -> Principal:
        """Create a principal inside the caller's transaction, with its ``<kind>.create`` event."""
        now = self._clock.now()
        principal = Principal(
            id=principal_id or new_id(ID_PREFIX[kind]),
            tenant_id=tenant.id,
            kind=kind,
            name=valid_name(name, RESOURCE[kind]),
            created_at=now,
            display_name=display_name.strip(),
        )
        tx.principals.create(principal)
        resource = {"type": RESOURCE[kind], "id": principal.name}
        record(
            tx,
            action=f"{RESOURCE[kind]}.create",
            tenant=tenant.name,
            now=now,
            actor=actor,
            resource=resource,
            details=details,
        )
        return principal

    def create(
        self,
        *,
        tenant_name: str,
        kind: PrincipalKind,
        name: str,
        display_name: str = "",
        actor: dict[str, Any],
    ) -> Principal:
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(canonical_name(tenant_name))
            return self.create_principal(
                tx, tenant=tenant, kind=kind, name=name, display_name=display_name, actor=actor
            )

    def list(self, *, tenant_name: str, kind: PrincipalKind) -> builtins.list[Principal]:
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(canonical_name(tenant_name))
            return [p for p in tx.principals.list(tenant.id) if p.kind is kind]

    def show(
        self, *, tenant_name: str, kind: PrincipalKind, name: str
    ) -> tuple[Principal, builtins.list[str]]:
        """The principal and the names of its groups."""
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(canonical_name(tenant_name))
            principal = get_principal(tx, tenant, kind, name)
            return principal, tx.groups.groups_of(tenant.id, principal.id)

    def update(
        self,
        *,
        tenant_name: str,
        kind: PrincipalKind,
        name: str,
        display_name: str | None = None,
        disabled: bool | None = None,
        actor: dict[str, Any],
    ) -> Principal:
        now = self._clock.now()
        epoch = None
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(canonical_name(tenant_name))
            current = get_principal(tx, tenant, kind, name)
            changed = replace(
                current,
                display_name=current.display_name if display_name is None else display_name.strip(),
                disabled=current.disabled if disabled is None else disabled,
            )
            tx.principals.update(changed)
            if changed.disabled and not current.disabled:
                tx.refresh_tokens.revoke_for_principal(tenant.id, current.id, at=now)
                epoch = self._revoker.bump(tx)
            action = _toggle_action(RESOURCE[kind], current.disabled, changed.disabled)
            resource = {"type": RESOURCE[kind], "id": current.name}
            details = {"displayName": changed.display_name, "disabled": changed.disabled}
            record(
                tx,
                action=action,
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource=resource,
                details=details,
            )
        if epoch is not None:
            self._revoker.announce(epoch)
        return changed

    def delete(
        self, *, tenant_name: str, kind: PrincipalKind, name: str, actor: dict[str, Any]
    ) -> Principal:
        """Delete a principal with every credential and group membership it has."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(canonical_name(tenant_name))
            principal = get_principal(tx, tenant, kind, name)
            keys = tx.api_keys.delete_owned(tenant.id, principal.id)
            tx.refresh_tokens.delete_owned(tenant.id, principal.id)
            tx.passwords.delete(tenant.id, principal.id)
            tx.groups.forget_principal(tenant.id, principal.id)
            tx.principals.delete(tenant.id, principal.id)
            epoch = self._revoker.bump(tx)
            resource = {"type": RESOURCE[kind], "id": principal.name}
            record(
                tx,
                action=f"{RESOURCE[kind]}.delete",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource=resource,
                details={"apiKeysDeleted": keys},
            )
        self._revoker.announce(epoch)
        return principal


def get_principal(tx: UnitOfWork, tenant: Tenant, kind: PrincipalKind, name: str) -> Principal:
    """The principal of ``kind`` called ``name`` (any spelling) in the tenant."""
    principal = tx.principals.get_by_name(tenant.id, canonical_name(name))
    if principal.kind is not kind:
        raise NotFoundError(f"no {RESOURCE[kind]} {principal.name!r} in tenant {tenant.name!r}")
    return principal


def _toggle_action(resource: str, before: bool, after: bool) -> str:
    if after and not before:
        return f"{resource}.disable"
    if before and not after:
        return f"{resource}.enable"
    return f"{resource}.update"
