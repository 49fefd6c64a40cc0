"""Groups: create, list, show (with members), update, delete, add and remove members.

Role bindings can name a group (subject type ``group``); the authorizer reads memberships
through ``tx.groups.groups_of``. Membership changes are audited with the change and advance
the authorization version, so cached decisions that depended on the membership are dropped.
A group's stored bindings go with it, so a later group of the same name starts with none
(`bastion.services.subject_bindings`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.ids import new_id
from bastion.core.model import Group, Principal, SubjectType, Tenant
from bastion.services.changes import record, unique, valid_name
from bastion.services.clock import Clock
from bastion.services.lookups import get_any_principal, get_group, get_tenant
from bastion.services.subject_bindings import delete_bindings_of, forget_stale


@dataclass(frozen=True, slots=True)
class GroupView:
    group: Group
    members: tuple[Principal, ...]


class GroupService:
    def __init__(self, *, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock

    def create(
        self, *, tenant_name: str, name: str, display_name: str = "", actor: dict[str, Any]
    ) -> Group:
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            group = Group(
                id=new_id("grp"),
                tenant_id=tenant.id,
                name=valid_name(name, "group"),
                created_at=now,
                display_name=display_name.strip(),
            )
            with unique(f"a group named {group.name} already exists"):
                tx.groups.create(group)
            # Only a database written before bindings went with their group can hold these.
            stale = forget_stale(tx, tenant.id, SubjectType.GROUP, group.name)
            details = stale or None
            self._record(tx, "group.create", tenant, group, actor, details)
        return group

    def list(
        self, *, tenant_name: str, after: str | None = None, limit: int | None = None
    ) -> list[GroupView]:
        """The groups by name with their members: those named after ``after``, at most
        ``limit`` (a page of the admin API), else all of them."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            return _views(tx, tenant, tx.groups.page(tenant.id, after=after, limit=limit))

    def show(self, *, tenant_name: str, name: str) -> GroupView:
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            [view] = _views(tx, tenant, [get_group(tx, tenant, name)])
            return view

    def update(
        self, *, tenant_name: str, name: str, display_name: str, actor: dict[str, Any]
    ) -> Group:
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            group = get_group(tx, tenant, name)
            changed = replace(group, display_name=display_name.strip())
            tx.groups.update(changed)
            self._record(tx, "group.update", tenant, group, actor, {"displayName": display_name})
        return changed

    def delete(self, *, tenant_name: str, name: str, actor: dict[str, Any]) -> Group:
        """Delete a group with its memberships and the stored role bindings that name it."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            group = get_group(tx, tenant, name)
            bindings = delete_bindings_of(tx, tenant.id, SubjectType.GROUP, group.name)
            tx.groups.delete(tenant.id, group.id)
            tx.authz_versions.bump()
            details = {"bindingsDeleted": bindings}
            self._record(tx, "group.delete", tenant, group, actor, details)
        return group

    def add_member(
        self, *, tenant_name: str, name: str, member: str, actor: dict[str, Any]
    ) -> bool:
        """Add a principal (by name, any kind) to a group; False if it already was a member."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            group = get_group(tx, tenant, name)
            principal = get_any_principal(tx, tenant, member)
            added = tx.groups.add_member(tenant.id, group.id, principal.id, at=now)
            if added:
                tx.authz_versions.bump()
                details = {"member": principal.name, "memberType": principal.kind.value}
                self._record(tx, "group.member.add", tenant, group, actor, details)
        return added

    def remove_member(
        self, *, tenant_name: str, name: str, member: str, actor: dict[str, Any]
    ) -> bool:
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            group = get_group(tx, tenant, name)
            principal = get_any_principal(tx, tenant, member)
            removed = tx.groups.remove_member(tenant.id, group.id, principal.id)
            if removed:
                tx.authz_versions.bump()
                details = {"member": principal.name, "memberType": principal.kind.value}
                self._record(tx, "group.member.remove", tenant, group, actor, details)
        return removed

    def _record(
        self,
        tx: UnitOfWork,
        action: str,
        tenant: Tenant,
        group: Group,
        actor: dict[str, Any],
        details: dict[str, Any] | None = None,
    ) -> None:
        resource = {"type": "group", "id": group.name}
        now = self._clock.now()
        record(
            tx,
            action=action,
            tenant=tenant.name,
            now=now,
            actor=actor,
            resource=resource,
            details=details,
        )


def _views(tx: UnitOfWork, tenant: Tenant, groups: list[Group]) -> list[GroupView]:
    """The groups with their members, read in two queries whatever their number."""
    members = tx.groups.members(tenant.id, [g.id for g in groups])
    principals = tx.principals.by_ids(tenant.id, {i for ids in members.values() for i in ids})
    views = []
    for group in groups:
        found = (principals[i] for i in members.get(group.id, ()) if i in principals)
        views.append(GroupView(group, tuple(sorted(found, key=lambda p: p.name))))
    return views
