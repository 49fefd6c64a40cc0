"""MemoryStorage: the storage protocols over dicts, with the SQL backends' exact semantics.

A unit of work holds the storage's one lock for its whole life and works on a copy of the
tables, swapped in on commit, so a rollback leaves nothing behind and `lock_head` serialises
chaining as BEGIN IMMEDIATE and the advisory lock do for SQL.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from bastion.backends.memory.audit import AuditLog, MemoryAuditStore, utc
from bastion.backends.memory.authz_stores import (
    AuthzTables,
    MemoryAuthzVersionStore,
    MemoryBindingStore,
    MemoryResourceRuleStore,
    MemoryRoleStore,
)
from bastion.backends.memory.identity import (
    IdentityTables,
    MemoryGroupStore,
    MemoryPasswordStore,
    MemoryTenantStateStore,
    MemoryThrottleStore,
)
from bastion.backends.memory.identity_tokens import (
    MemoryRefreshTokenStore,
    MemoryRegistrationTokenStore,
    MemoryRevocationStore,
    MemorySigningKeyStore,
)
from bastion.backends.protocols import (
    ApiKeyStore,
    AuditStore,
    AuthzVersionStore,
    BindingStore,
    ChangeCounters,
    GroupStore,
    PasswordStore,
    PrincipalStore,
    RefreshTokenStore,
    RegistrationTokenStore,
    ResourceRuleStore,
    RevocationStore,
    RoleStore,
    SigningKeyStore,
    TenantStateStore,
    TenantStore,
    ThrottleStore,
)
from bastion.core.model import ApiKey, Principal, PrincipalKind, RoleBinding, Tenant
from bastion.errors import ConflictError, NotFoundError, SpoiledUnitError, StorageError

# As long as SQLite's busy_timeout: a transaction opened inside another one fails, not hangs.
LOCK_TIMEOUT_SECONDS = 5.0


def _conflict(operation: str) -> ConflictError:
    return ConflictError(f"{operation}: a value that must be unique is already taken")


def _missing_reference(operation: str) -> NotFoundError:
    return NotFoundError(f"{operation}: a row it refers to does not exist")


def _utc_or_none(value: datetime | None, operation: str) -> datetime | None:
    return None if value is None else utc(value, operation)


@dataclass
class _Tables:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    bindings: dict[str, RoleBinding] = field(default_factory=dict)
    identity: IdentityTables = field(default_factory=IdentityTables)
    authz: AuthzTables = field(default_factory=AuthzTables)

    def copy(self) -> _Tables:
        # The values are frozen dataclasses, so copying the dicts is a full snapshot.
        return _Tables(
            dict(self.tenants),
            dict(self.principals),
            dict(self.api_keys),
            dict(self.bindings),
            self.identity.copy(),
            self.authz.copy(),
        )


class MemoryTenantStore:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def create(self, tenant: Tenant) -> None:
        if tenant.id in self._t.tenants or any(
            t.name == tenant.name for t in self._t.tenants.values()
        ):
            raise _conflict("create tenant")
        self._t.tenants[tenant.id] = replace(
            tenant, created_at=utc(tenant.created_at, "create tenant")
        )

    def get_by_name(self, name: str) -> Tenant:
        for tenant in self._t.tenants.values():
            if tenant.name == name:
                return tenant
        raise NotFoundError("get tenant by name: no such tenant")

    def get(self, tenant_id: str) -> Tenant:
        if tenant_id not in self._t.tenants:
            raise NotFoundError("get tenant: no such tenant")
        return self._t.tenants[tenant_id]

    def list(self) -> builtins.list[Tenant]:
        return sorted(self._t.tenants.values(), key=lambda t: (t.created_at, t.id))

    def delete(self, tenant_id: str) -> None:
        self.get(tenant_id)
        rows = (self._t.principals, self._t.api_keys, self._t.bindings, self._t.identity.groups)
        if any(row.tenant_id == tenant_id for table in rows for row in table.values()):
            raise ConflictError("delete tenant: it still has principals, keys or bindings")
        self._t.identity.tenant_states.pop(tenant_id, None)
        del self._t.tenants[tenant_id]


class MemoryPrincipalStore:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def create(self, principal: Principal) -> None:
        operation = "create principal"
        stored = replace(
            principal,
            kind=PrincipalKind(principal.kind),
            created_at=utc(principal.created_at, operation),
        )
        if stored.id in self._t.principals or any(
            p.tenant_id == stored.tenant_id and p.name == stored.name
            for p in self._t.principals.values()
        ):
            raise _conflict(operation)
        if stored.tenant_id not in self._t.tenants:
            raise _missing_reference(operation)
        self._t.principals[stored.id] = stored

    def get(self, tenant_id: str, principal_id: str) -> Principal:
        principal = self._t.principals.get(principal_id)
        if principal is None or principal.tenant_id != tenant_id:
            raise NotFoundError("get principal: no such principal in this tenant")
        return principal

    def get_by_name(self, tenant_id: str, name: str) -> Principal:
        for principal in self._t.principals.values():
            if principal.tenant_id == tenant_id and principal.name == name:
                return principal
        raise NotFoundError("get principal by name: no such principal in this tenant")

    def list(self, tenant_id: str) -> builtins.list[Principal]:
        found = [p for p in self._t.principals.values() if p.tenant_id == tenant_id]
        return sorted(found, key=lambda p: p.name)

    def page(
        self, tenant_id: str, *, kind: PrincipalKind, after: str | None, limit: int | None
    ) -> builtins.list[Principal]:
        found = [
            p for p in self.list(tenant_id) if p.kind is kind and (after is None or p.name > after)
        ]
        return found if limit is None else found[:limit]

    def count(self, tenant_id: str) -> int:
        return sum(1 for p in self._t.principals.values() if p.tenant_id == tenant_id)

    def by_ids(self, tenant_id: str, principal_ids: Collection[str]) -> dict[str, Principal]:
        found = (self._t.principals.get(i) for i in principal_ids)
        return {p.id: p for p in found if p is not None and p.tenant_id == tenant_id}

    def update(self, principal: Principal) -> None:
        current = self.get(principal.tenant_id, principal.id)
        self._t.principals[principal.id] = replace(
            current, display_name=principal.display_name, disabled=principal.disabled
        )

    def delete(self, tenant_id: str, principal_id: str) -> None:
        self.get(tenant_id, principal_id)
        if any(k.principal_id == principal_id for k in self._t.api_keys.values()):
            raise _missing_reference("delete principal")
        del self._t.principals[principal_id]


class MemoryApiKeyStore:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def create(self, key: ApiKey) -> None:
        operation = "create API key"
        stored = replace(
            key,
            key_hash=bytes(key.key_hash),
            scopes=tuple(key.scopes),
            created_at=utc(key.created_at, operation),
            expires_at=_utc_or_none(key.expires_at, operation),
            last_used_at=_utc_or_none(key.last_used_at, operation),
            revoked_at=_utc_or_none(key.revoked_at, operation),
        )
        if stored.id in self._t.api_keys or any(
            k.key_hash == stored.key_hash
            or (k.tenant_id == stored.tenant_id and k.name == key.name)
            for k in self._t.api_keys.values()
        ):
            raise _conflict(operation)
        owner = self._t.principals.get(stored.principal_id)
        if owner is None or owner.tenant_id != stored.tenant_id:
            raise _missing_reference(operation)
        self._t.api_keys[stored.id] = stored

    def find_by_hash(self, key_hash: bytes) -> ApiKey | None:
        for key in self._t.api_keys.values():
            if key.key_hash == key_hash:
                return key
        return None

    def get(self, tenant_id: str, key_id: str) -> ApiKey:
        key = self._t.api_keys.get(key_id)
        if key is None or key.tenant_id != tenant_id:
            raise NotFoundError("get API key: no such key in this tenant")
        return key

    def page(
        self, tenant_id: str, *, after: str | None, limit: int | None
    ) -> builtins.list[ApiKey]:
        found = sorted(
            (
                k
                for k in self._t.api_keys.values()
                if k.tenant_id == tenant_id and (after is None or k.name > after)
            ),
            key=lambda k: k.name,
        )
        return found if limit is None else found[:limit]

    def referenced(self, tenant_id: str, reference: str) -> builtins.list[ApiKey]:
        return [
            k
            for k in self._t.api_keys.values()
            if k.tenant_id == tenant_id and reference in (k.id, k.prefix, k.name)
        ]

    def revoke(self, tenant_id: str, key_id: str, *, at: datetime) -> ApiKey:
        at = utc(at, "revoke API key")
        key = self.get(tenant_id, key_id)
        if key.revoked_at is None:
            key = replace(key, revoked_at=at)
            self._t.api_keys[key_id] = key
        return key

    def touch(self, key_id: str, *, at: datetime) -> None:
        at = utc(at, "record API key use")
        key = self._t.api_keys.get(key_id)
        if key is not None and (key.last_used_at is None or key.last_used_at < at):
            self._t.api_keys[key_id] = replace(key, last_used_at=at)

    def retire(self, tenant_id: str, key_id: str, *, expires_at: datetime, name: str) -> ApiKey:
        expires_at = utc(expires_at, "retire API key")
        key = self.get(tenant_id, key_id)
        if any(
            k.tenant_id == tenant_id and k.name == name and k.id != key_id
            for k in self._t.api_keys.values()
        ):
            raise _conflict("retire API key")
        if key.expires_at is not None and key.expires_at <= expires_at:
            expires_at = key.expires_at
        key = replace(key, name=name, expires_at=expires_at)
        self._t.api_keys[key_id] = key
        return key

    def delete_owned(self, tenant_id: str, principal_id: str) -> int:
        owned = [
            k.id
            for k in self._t.api_keys.values()
            if k.tenant_id == tenant_id and k.principal_id == principal_id
        ]
        for key_id in owned:
            del self._t.api_keys[key_id]
        return len(owned)


class MemoryUnitOfWork:
    """The stores of one in-memory transaction; valid only inside `MemoryStorage.transaction`."""

    def __init__(self, tables: _Tables, log: AuditLog) -> None:
        self.tables = tables
        self._audit = MemoryAuditStore(log)
        self.tenants: TenantStore = MemoryTenantStore(tables)
        self.principals: PrincipalStore = MemoryPrincipalStore(tables)
        self.api_keys: ApiKeyStore = MemoryApiKeyStore(tables)
        self.bindings: BindingStore = MemoryBindingStore(tables)
        self.audit: AuditStore = self._audit
        ident, principals, tenants = tables.identity, tables.principals, tables.tenants
        self.groups: GroupStore = MemoryGroupStore(ident, principals, tenants)
        self.tenant_states: TenantStateStore = MemoryTenantStateStore(ident, tenants)
        self.passwords: PasswordStore = MemoryPasswordStore(ident, principals)
        self.throttles: ThrottleStore = MemoryThrottleStore(ident)
        self.refresh_tokens: RefreshTokenStore = MemoryRefreshTokenStore(ident, principals)
        self.registration_tokens: RegistrationTokenStore = MemoryRegistrationTokenStore(
            ident, tenants
        )
        self.signing_keys: SigningKeyStore = MemorySigningKeyStore(ident)
        self.revocations: RevocationStore = MemoryRevocationStore(ident)
        self.roles: RoleStore = MemoryRoleStore(tables)
        self.resource_rules: ResourceRuleStore = MemoryResourceRuleStore(tables)
        self.authz_versions: AuthzVersionStore = MemoryAuthzVersionStore(tables)

    def pending_events(self) -> AuditLog:
        return self._audit.pending

    @property
    def spoiled(self) -> str | None:
        """What failed in this unit of work (it must not commit); None if nothing."""
        return self._audit.spoiled


class MemoryStorage:
    """Storage in process memory, for tests and single-process trials; nothing survives exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables = _Tables()
        self._log = AuditLog()

    @contextmanager
    def transaction(self) -> Iterator[MemoryUnitOfWork]:
        """A unit of work on a copy of the tables, swapped in only if the block succeeds."""
        if not self._lock.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            raise StorageError("begin a transaction failed: the memory storage stayed locked")
        try:
            uow = MemoryUnitOfWork(self._tables.copy(), self._log)
            yield uow
            if uow.spoiled is not None:
                raise SpoiledUnitError(uow.spoiled)
            self._tables = uow.tables
            uow.pending_events().commit_into(self._log)
        finally:
            self._lock.release()

    @contextmanager
    def read_only(self) -> Iterator[MemoryUnitOfWork]:
        """A unit of work on a copy of the tables as committed now, without the lock (a
        commit swaps whole tables in), and never swapped in: whatever it writes is dropped."""
        yield MemoryUnitOfWork(self._tables.copy(), AuditLog())

    def migrate(self) -> None:
        """Nothing to migrate: the schema is the code."""

    def check(self) -> None:
        """Always answers."""

    def change_counters(self) -> ChangeCounters:
        tables = self._tables
        return ChangeCounters(tables.identity.epoch[0], tables.authz.version[0])

    def close(self) -> None:
        """Nothing to release."""
