"""In-memory identity tables and the stores of groups, tenant state, passwords and throttles.

Same semantics as `bastion.backends.sql.identity_groups` and `identity_credentials`; the
contract suite runs both.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from bastion.backends.memory.audit import utc
from bastion.core.credentials import (
    PasswordCredential,
    RefreshToken,
    RegistrationToken,
    RevokedToken,
    SigningKey,
    TenantState,
    ThrottleState,
)
from bastion.core.model import Group, Principal, Tenant
from bastion.errors import ConflictError, NotFoundError

K = TypeVar("K")


def forget_soonest(rows: dict[K, Any], due: Iterable[tuple[datetime, K]], limit: int) -> int:
    """Remove from ``rows`` at most ``limit`` of the ``(moment, key)`` pairs ``due``, soonest
    first; how many (the memory side of `bastion.backends.sql.forgetting`)."""
    gone = sorted(due)[: max(limit, 0)]
    for _, key in gone:
        del rows[key]
    return len(gone)


@dataclass
class IdentityTables:
    """The identity rows of one snapshot; values are frozen, so copying the dicts is enough."""

    groups: dict[str, Group] = field(default_factory=dict)
    members: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    tenant_states: dict[str, TenantState] = field(default_factory=dict)
    passwords: dict[str, PasswordCredential] = field(default_factory=dict)
    throttles: dict[str, ThrottleState] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    registration_tokens: dict[str, RegistrationToken] = field(default_factory=dict)
    signing_keys: dict[str, SigningKey] = field(default_factory=dict)
    revoked_tokens: dict[str, RevokedToken] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=lambda: [0])

    def copy(self) -> IdentityTables:
        return IdentityTables(
            dict(self.groups),
            dict(self.members),
            dict(self.tenant_states),
            dict(self.passwords),
            dict(self.throttles),
            dict(self.refresh_tokens),
            dict(self.registration_tokens),
            dict(self.signing_keys),
            dict(self.revoked_tokens),
            list(self.epoch),
        )


def _owned(principals: Mapping[str, Principal], tenant_id: str, principal_id: str) -> bool:
    owner = principals.get(principal_id)
    return owner is not None and owner.tenant_id == tenant_id


class MemoryGroupStore:
    def __init__(
        self,
        tables: IdentityTables,
        principals: Mapping[str, Principal],
        tenants: Mapping[str, Tenant],
    ) -> None:
        self._t = tables
        self._principals = principals
        self._tenants = tenants

    def create(self, group: Group) -> None:
        stored = replace(group, created_at=utc(group.created_at, "create group"))
        if stored.id in self._t.groups or any(
            g.tenant_id == stored.tenant_id and g.name == stored.name
            for g in self._t.groups.values()
        ):
            raise ConflictError("create group: a value that must be unique is already taken")
        if stored.tenant_id not in self._tenants:
            raise NotFoundError("create group: a row it refers to does not exist")
        self._t.groups[stored.id] = stored

    def _get(self, tenant_id: str, group_id: str, operation: str) -> Group:
        group = self._t.groups.get(group_id)
        if group is None or group.tenant_id != tenant_id:
            raise NotFoundError(f"{operation}: no such group in this tenant")
        return group

    def get_by_name(self, tenant_id: str, name: str) -> Group:
        for group in self._t.groups.values():
            if group.tenant_id == tenant_id and group.name == name:
                return group
        raise NotFoundError("get group by name: no such group in this tenant")

    def list(self, tenant_id: str) -> builtins.list[Group]:
        found = [g for g in self._t.groups.values() if g.tenant_id == tenant_id]
        return sorted(found, key=lambda g: g.name)

    def page(self, tenant_id: str, *, after: str | None, limit: int | None) -> builtins.list[Group]:
        found = [g for g in self.list(tenant_id) if after is None or g.name > after]
        return found if limit is None else found[:limit]

    def update(self, group: Group) -> None:
        current = self._get(group.tenant_id, group.id, "update group")
        self._t.groups[group.id] = replace(current, display_name=group.display_name)

    def delete(self, tenant_id: str, group_id: str) -> None:
        self._get(tenant_id, group_id, "delete group")
        del self._t.groups[group_id]
        for key in [k for k in self._t.members if k[0] == group_id]:
            del self._t.members[key]

    def add_member(self, tenant_id: str, group_id: str, principal_id: str, *, at: datetime) -> bool:
        at = utc(at, "add group member")
        self._get(tenant_id, group_id, "add group member")
        if not _owned(self._principals, tenant_id, principal_id):
            raise NotFoundError("add group member: a row it refers to does not exist")
        if (group_id, principal_id) in self._t.members:
            return False
        self._t.members[(group_id, principal_id)] = (tenant_id, at)
        return True

    def remove_member(self, tenant_id: str, group_id: str, principal_id: str) -> bool:
        entry = self._t.members.get((group_id, principal_id))
        if entry is None or entry[0] != tenant_id:
            return False
        del self._t.members[(group_id, principal_id)]
        return True

    def members(self, tenant_id: str, group_ids: Collection[str]) -> dict[str, builtins.list[str]]:
        wanted = set(group_ids)
        found: dict[str, builtins.list[str]] = {}
        for (g, p), (t, _) in self._t.members.items():
            if t == tenant_id and g in wanted:
                found.setdefault(g, []).append(p)
        return {g: sorted(ids) for g, ids in found.items()}

    def groups_of(self, tenant_id: str, principal_id: str) -> builtins.list[str]:
        return sorted(
            self._t.groups[g].name
            for (g, p), (t, _) in self._t.members.items()
            if p == principal_id and t == tenant_id
        )

    def memberships(
        self, tenant_id: str, principal_ids: Collection[str] | None = None
    ) -> dict[str, builtins.list[str]]:
        wanted = None if principal_ids is None else set(principal_ids)
        found: dict[str, builtins.list[str]] = {}
        for (g, p), (t, _) in self._t.members.items():
            if t == tenant_id and (wanted is None or p in wanted):
                found.setdefault(p, []).append(self._t.groups[g].name)
        return {p: sorted(names) for p, names in found.items()}

    def forget_principal(self, tenant_id: str, principal_id: str) -> None:
        for key in [k for k, v in self._t.members.items() if k[1] == principal_id]:
            if self._t.members[key][0] == tenant_id:
                del self._t.members[key]


class MemoryTenantStateStore:
    def __init__(self, tables: IdentityTables, tenants: Mapping[str, Tenant]) -> None:
        self._t = tables
        self._tenants = tenants

    def get(self, tenant_id: str) -> TenantState:
        return self._t.tenant_states.get(tenant_id, TenantState(tenant_id))

    def put(self, state: TenantState) -> None:
        if state.tenant_id not in self._tenants:
            raise NotFoundError("store tenant state: a row it refers to does not exist")
        self._t.tenant_states[state.tenant_id] = state

    def delete(self, tenant_id: str) -> None:
        self._t.tenant_states.pop(tenant_id, None)


class MemoryPasswordStore:
    def __init__(self, tables: IdentityTables, principals: Mapping[str, Principal]) -> None:
        self._t = tables
        self._principals = principals

    def get(self, tenant_id: str, principal_id: str) -> PasswordCredential | None:
        found = self._t.passwords.get(principal_id)
        return found if found is not None and found.tenant_id == tenant_id else None

    def lock(self, tenant_id: str, principal_id: str) -> PasswordCredential | None:
        return self.get(tenant_id, principal_id)  # units of work already take turns here

    def put(self, credential: PasswordCredential) -> None:
        if not _owned(self._principals, credential.tenant_id, credential.principal_id):
            raise NotFoundError("set password: a row it refers to does not exist")
        stored = replace(credential, changed_at=utc(credential.changed_at, "set password"))
        self._t.passwords[credential.principal_id] = stored

    def delete(self, tenant_id: str, principal_id: str) -> None:
        if self.get(tenant_id, principal_id) is not None:
            del self._t.passwords[principal_id]


class MemoryThrottleStore:
    """The storage lock held by the unit of work already serialises every caller."""

    def __init__(self, tables: IdentityTables) -> None:
        self._t = tables

    def lock(self, key: str, *, at: datetime) -> ThrottleState:
        at = utc(at, "lock login throttle")
        if key not in self._t.throttles:
            self._t.throttles[key] = ThrottleState(
                key=key, failures=0, window_start=at, forget_at=at
            )
        return self._t.throttles[key]

    def put(self, state: ThrottleState) -> None:
        if state.key in self._t.throttles:
            self._t.throttles[state.key] = state

    def forget(self, *, now: datetime, limit: int) -> int:
        now = utc(now, "forget login throttles")
        throttles = self._t.throttles
        due = (
            (state.forget_at, key)
            for key, state in throttles.items()
            if state.forget_at is not None and state.forget_at <= now
        )
        return forget_soonest(throttles, due, limit)
