"""Tenants (`bastion.services.tenant_directory`) and principals (users, service accounts,
agents): create, list, show, update, disable and delete, each change audited in its own
transaction.

Names are canonicalised once (NFKC + casefold, `bastion.core.names`), so look-alike spellings
of a login meet the same account. Disabling or deleting anything that can hold a credential
advances the revocation epoch, so cached credentials stop working on the next request, and
disabling a principal ends its sessions (`Sessions.end_all`): enabled again, it logs in anew. A
principal's stored role bindings go with it, and a user's name leaves the stored resource
rules, so a later principal of the same name starts with neither
(`bastion.services.subject_bindings`).
"""

from __future__ import annotations

import builtins
from dataclasses import replace
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.ids import new_id
from bastion.core.model import Principal, PrincipalKind, SubjectType, Tenant
from bastion.services.changes import record, toggle_action, unique, valid_name
from bastion.services.clock import Clock
from bastion.services.lookups import get_principal, get_tenant
from bastion.services.revocation import Revoker
from bastion.services.sessions import Sessions
from bastion.services.subject_bindings import delete_bindings_of, forget_stale, remove_from_rules
from bastion.services.tenant_directory import TenantDirectory, TenantView

# Re-exported: the rest of bastion records identity changes and names tenants through here.
__all__ = [
    "DirectoryService",
    "TenantView",
    "get_principal",
    "record",
    "valid_name",
]

ID_PREFIX = {
    PrincipalKind.USER: "usr",
    PrincipalKind.SERVICE_ACCOUNT: "sa",
    PrincipalKind.AGENT: "agt",
}
# The principal of each kind, as a message says "… named x already exists".
A_PRINCIPAL = {
    PrincipalKind.USER: "a user",
    PrincipalKind.SERVICE_ACCOUNT: "a service account",
    PrincipalKind.AGENT: "an agent",
}
RESOURCE = {
    PrincipalKind.USER: "user",
    PrincipalKind.SERVICE_ACCOUNT: "serviceaccount",
    PrincipalKind.AGENT: "agent",
}


class DirectoryService(TenantDirectory):
    """Tenants (`TenantDirectory`) and the principals that live in them."""

    def __init__(
        self, *, storage: Storage, clock: Clock, revoker: Revoker, sessions: Sessions
    ) -> None:
        super().__init__(storage=storage, clock=clock, revoker=revoker)
        self._sessions = sessions

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
        """Create a principal inside the caller's transaction, with its ``<kind>.create`` event.

        Stored bindings and rule entries left under its name by an older bastion (which kept
        them when a principal was deleted) are deleted, not inherited; the event lists them."""
        now = self._clock.now()
        principal = Principal(
            id=principal_id or new_id(ID_PREFIX[kind]),
            tenant_id=tenant.id,
            kind=kind,
            name=valid_name(name, RESOURCE[kind]),
            created_at=now,
            display_name=display_name.strip(),
        )
        with unique(f"{A_PRINCIPAL[kind]} named {principal.name} already exists"):
            tx.principals.create(principal)
        if stale := forget_stale(tx, tenant.id, SubjectType(kind.value), principal.name):
            details = {**(details or {}), **stale}
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
            tenant = get_tenant(tx, tenant_name)
            return self.create_principal(
                tx, tenant=tenant, kind=kind, name=name, display_name=display_name, actor=actor
            )

    def list(
        self,
        *,
        tenant_name: str,
        kind: PrincipalKind,
        after: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[tuple[Principal, builtins.list[str]]]:
        """The principals of one kind by name, each with the names of its groups: those named
        after ``after``, at most ``limit`` (a page of the admin API), else all of them."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            found = tx.principals.page(tenant.id, kind=kind, after=after, limit=limit)
            ids = None if limit is None else [p.id for p in found]
            memberships = tx.groups.memberships(tenant.id, ids)
            return [(p, memberships.get(p.id, [])) for p in found]

    def show(
        self, *, tenant_name: str, kind: PrincipalKind, name: str
    ) -> tuple[Principal, builtins.list[str]]:
        """The principal and the names of its groups."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
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
    ) -> tuple[Principal, builtins.list[str]]:
        """The changed principal and the names of its groups."""
        now = self._clock.now()
        epoch = None
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            current = get_principal(tx, tenant, kind, name)
            changed = replace(
                current,
                display_name=current.display_name if display_name is None else display_name.strip(),
                disabled=current.disabled if disabled is None else disabled,
            )
            tx.principals.update(changed)
            details: dict[str, Any] = {
                "displayName": changed.display_name,
                "disabled": changed.disabled,
            }
            if changed.disabled and not current.disabled:
                # For good: a session (and the access tokens issued from it) does not come
                # back when the principal is enabled again. The password row is locked first,
                # as a login starting a session locks it: that login commits first (and its
                # session is ended here) or sees the principal disabled.
                tx.passwords.lock(tenant.id, current.id)
                ended = self._sessions.end_all(tx, changed, now=now)
                epoch = ended.epoch if ended.epoch is not None else self._revoker.bump(tx)
                details |= ended.details()
            action = toggle_action(RESOURCE[kind], current.disabled, changed.disabled)
            resource = {"type": RESOURCE[kind], "id": current.name}
            record(
                tx,
                action=action,
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource=resource,
                details=details,
            )
            groups = tx.groups.groups_of(tenant.id, changed.id)
        if epoch is not None:
            self._revoker.announce(epoch)
        return changed, groups

    def delete(
        self, *, tenant_name: str, kind: PrincipalKind, name: str, actor: dict[str, Any]
    ) -> Principal:
        """Delete a principal with every credential, group membership and stored role binding
        it has, and (a user) take its name out of the stored resource rules: bindings and rules
        name it, and would pass to the next principal of its name."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            principal = get_principal(tx, tenant, kind, name)
            keys = tx.api_keys.delete_owned(tenant.id, principal.id)
            tx.refresh_tokens.delete_owned(tenant.id, principal.id)
            tx.passwords.delete(tenant.id, principal.id)
            tx.groups.forget_principal(tenant.id, principal.id)
            subject = SubjectType(kind.value)
            bindings = delete_bindings_of(tx, tenant.id, subject, principal.name)
            details: dict[str, Any] = {"apiKeysDeleted": keys, "bindingsDeleted": bindings}
            if kind is PrincipalKind.USER:
                details["rulesUpdated"] = remove_from_rules(tx, tenant.id, user=principal.name)
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
                details=details,
            )
        self._revoker.announce(epoch)
        return principal
