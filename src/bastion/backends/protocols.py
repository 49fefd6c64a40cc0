"""The storage protocols services depend on; `sql` and `memory` implement them.

A `Storage` hands out a `UnitOfWork` per transaction. Everything written through one unit of
work commits together or not at all, which is how a security-relevant change and its audit
record land atomically (DESIGN.md section 6). Every read of a tenant-owned row takes the tenant
id as a required argument. Implementations raise only `bastion.errors` exceptions. The stores of
credentials (passwords, throttles, tokens, signing keys, revocations) are in
`protocols_credentials`, those of the authorization model (bindings, custom roles, resource
rules, its version) in `protocols_authz`; both are imported here, so every protocol can be
named from this module.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from bastion.backends.protocols_authz import (
    AuthzVersionStore,
    BindingKey,
    BindingStore,
    ResourceRuleStore,
    RoleStore,
    binding_key,
)
from bastion.backends.protocols_credentials import (
    PasswordStore,
    RefreshTokenStore,
    RegistrationTokenStore,
    RevocationStore,
    SigningKeyStore,
    ThrottleStore,
)
from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.credentials import TenantState
from bastion.core.model import (
    ApiKey,
    AuditEvent,
    AuditQuery,
    Group,
    Principal,
    PrincipalKind,
    Tenant,
)

__all__ = [
    "ApiKeyStore",
    "AuditStore",
    "AuthzVersionStore",
    "BindingKey",
    "BindingStore",
    "ChangeCounters",
    "GroupStore",
    "PasswordStore",
    "PrincipalStore",
    "RefreshTokenStore",
    "RegistrationTokenStore",
    "ResourceRuleStore",
    "RevocationStore",
    "RoleStore",
    "SigningKeyStore",
    "Storage",
    "TenantStateStore",
    "TenantStore",
    "ThrottleStore",
    "UnitOfWork",
    "binding_key",
]


class TenantStore(Protocol):
    def create(self, tenant: Tenant) -> None:
        """Store a new tenant; `ConflictError` if the name is taken."""

    def get_by_name(self, name: str) -> Tenant:
        """The tenant called ``name``; `NotFoundError` if there is none."""

    def get(self, tenant_id: str) -> Tenant:
        """The tenant with ``tenant_id``; `NotFoundError` if there is none."""

    def list(self) -> list[Tenant]:
        """Every tenant, oldest first."""

    def delete(self, tenant_id: str) -> None:
        """Remove an empty tenant; `NotFoundError` if absent, `ConflictError` while rows use it."""


class PrincipalStore(Protocol):
    def create(self, principal: Principal) -> None:
        """Store a principal; `ConflictError` if its name is taken in its tenant."""

    def get(self, tenant_id: str, principal_id: str) -> Principal:
        """`NotFoundError` if absent from that tenant."""

    def get_by_name(self, tenant_id: str, name: str) -> Principal:
        """Look up by canonical name inside one tenant; `NotFoundError` if absent."""

    def list(self, tenant_id: str) -> list[Principal]:
        """Every principal of the tenant, ordered by name."""

    def page(
        self, tenant_id: str, *, kind: PrincipalKind, after: str | None, limit: int | None
    ) -> builtins.list[Principal]:
        """The tenant's principals of ``kind`` named after ``after`` (all when None), at most
        ``limit`` (no bound when None), ordered by name in code-point order."""

    def count(self, tenant_id: str) -> int:
        """How many principals the tenant has."""

    def by_ids(self, tenant_id: str, principal_ids: Collection[str]) -> dict[str, Principal]:
        """Those of ``principal_ids`` that are the tenant's principals, by id."""

    def update(self, principal: Principal) -> None:
        """Store a new display name and disabled flag; `NotFoundError` if absent."""

    def delete(self, tenant_id: str, principal_id: str) -> None:
        """Remove a principal that owns nothing any more; `NotFoundError` if absent."""


class ApiKeyStore(Protocol):
    def create(self, key: ApiKey) -> None:
        """Store a key; `ConflictError` if the hash or the name (per tenant) is taken."""

    def find_by_hash(self, key_hash: bytes) -> ApiKey | None:
        """The key whose keyed hash is ``key_hash``, revoked or not; None if unknown."""

    def get(self, tenant_id: str, key_id: str) -> ApiKey:
        """`NotFoundError` if absent from that tenant."""

    def page(
        self, tenant_id: str, *, after: str | None, limit: int | None
    ) -> builtins.list[ApiKey]:
        """The tenant's keys, revoked included, named after ``after`` (all when None), at
        most ``limit`` (no bound when None), ordered by name in code-point order."""

    def referenced(self, tenant_id: str, reference: str) -> builtins.list[ApiKey]:
        """The tenant's keys whose id, display prefix or name is ``reference``."""

    def revoke(self, tenant_id: str, key_id: str, *, at: datetime) -> ApiKey:
        """Mark revoked (idempotent: an earlier revocation time is kept) and return the row."""

    def touch(self, key_id: str, *, at: datetime) -> None:
        """Record a use; a no-op for an unknown id."""

    def retire(self, tenant_id: str, key_id: str, *, expires_at: datetime, name: str) -> ApiKey:
        """Rename a key and bring its expiry forward to ``expires_at`` (never later)."""

    def delete_owned(self, tenant_id: str, principal_id: str) -> int:
        """Remove every key of a principal; the number removed."""


class IndexedAuditRow(NamedTuple):
    """An event with the columns a store keeps beside it for queries (`AuditStore.iterate_indexed`),
    so that verification can check them against the event."""

    event: AuditEvent
    actor_id: str
    resource_key: str
    # The timestamp column's text where the store keeps it as text (SQLite), else None: time
    # filters compare that text, so it must be exactly what bastion writes.
    timestamp_text: str | None = None


class AuditStore(Protocol):
    def lock_head(self) -> tuple[int, str]:
        """Lock the chain for this unit of work and return (last seq, last hash); (0, "") if empty.

        Other writers wait until this unit of work ends, so chaining is serial across processes.
        """

    def head(self) -> tuple[int, str]:
        """(last seq, last hash) without locking; (0, "") if empty."""

    def head_timestamp(self) -> datetime | None:
        """The timestamp of the event with the highest seq; None if empty.

        Timestamps never decrease along seq (the chain clamps them), so time bounds of a
        query are seq bounds.
        """

    def insert(self, events: Sequence[AuditEvent], *, bodies: Sequence[str] | None = None) -> None:
        """Insert events already chained after the head returned by `lock_head`.

        ``bodies``, when given, is each event's JSON body already encoded (the canonical text
        its hash was computed over), stored as is instead of being encoded again.

        All or nothing, and a failure spoils the unit of work: it can no longer commit, even
        if the caller catches the error (leaving the block raises `SpoiledUnitError` and keeps
        nothing of it), so no change is ever committed without its events.
        """

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        """Events matching every filter, ordered by seq ascending, at most ``query.limit``."""

    def iterate(
        self, *, after_seq: int = 0, batch: int = 1000, through_seq: int | None = None
    ) -> Iterator[AuditEvent]:
        """Every event with after_seq < seq (<= through_seq) in seq order, read in batches."""

    def iterate_indexed(
        self, *, after_seq: int = 0, batch: int = 1000, through_seq: int | None = None
    ) -> Iterator[IndexedAuditRow]:
        """`iterate`, with the columns each event is found by (its actor_id and resource_key
        index columns, and its timestamp as text where the store keeps text)."""

    def bounds(self) -> tuple[int, int] | None:
        """(first seq, last seq) of the stored events; None when there are none."""

    def insert_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        """Store a signed checkpoint; `ConflictError` if one exists at that seq."""

    def last_checkpoint(self) -> AuditCheckpoint | None:
        """The checkpoint with the highest seq; None when there is none."""

    def checkpoints(
        self, *, from_seq: int = 0, through_seq: int | None = None
    ) -> list[AuditCheckpoint]:
        """Checkpoints with from_seq <= seq (<= through_seq), ordered by seq."""

    def delete_through(self, seq: int) -> int:
        """Remove events with seq <= ``seq`` and checkpoints below ``seq`` (retention); the
        checkpoint at ``seq`` stays as the anchor of what remains. Returns events removed."""


class GroupStore(Protocol):
    def create(self, group: Group) -> None:
        """Store a group; `ConflictError` if its name is taken in its tenant."""

    def get_by_name(self, tenant_id: str, name: str) -> Group:
        """Look up by canonical name inside one tenant; `NotFoundError` if absent."""

    def update(self, group: Group) -> None:
        """Store a new display name; `NotFoundError` if absent."""

    def delete(self, tenant_id: str, group_id: str) -> None:
        """Remove a group and its memberships; `NotFoundError` if absent."""

    def add_member(self, tenant_id: str, group_id: str, principal_id: str, *, at: datetime) -> bool:
        """Add a member (True), or nothing if already one (False); `NotFoundError` if the
        group or the principal is not in the tenant."""

    def remove_member(self, tenant_id: str, group_id: str, principal_id: str) -> bool:
        """Remove a member; False if it was not one."""

    def members(self, tenant_id: str, group_ids: Collection[str]) -> dict[str, list[str]]:
        """The members of those of ``group_ids`` that have any (a page's worth, since they go
        into one query): group id to its principal ids, sorted."""

    def groups_of(self, tenant_id: str, principal_id: str) -> list[str]:
        """The canonical names of the groups a principal belongs to, sorted."""

    def memberships(
        self, tenant_id: str, principal_ids: Collection[str] | None = None
    ) -> dict[str, list[str]]:
        """Every member of a group in the tenant (of ``principal_ids`` only, when given: a
        page's worth, since they go into one query): principal id to its groups' names,
        sorted."""

    def forget_principal(self, tenant_id: str, principal_id: str) -> None:
        """Remove a principal from every group."""

    def list(self, tenant_id: str) -> list[Group]:
        """Every group of the tenant, ordered by name."""

    def page(self, tenant_id: str, *, after: str | None, limit: int | None) -> builtins.list[Group]:
        """The tenant's groups named after ``after`` (all when None), at most ``limit`` (no
        bound when None), ordered by name in code-point order."""


class TenantStateStore(Protocol):
    def get(self, tenant_id: str) -> TenantState:
        """The tenant's state (enabled, no display name, when none was stored)."""

    def put(self, state: TenantState) -> None:
        """Store the tenant's state; `NotFoundError` for an unknown tenant."""

    def delete(self, tenant_id: str) -> None:
        """Forget the tenant's state."""


class UnitOfWork(Protocol):
    tenants: TenantStore
    principals: PrincipalStore
    api_keys: ApiKeyStore
    bindings: BindingStore
    audit: AuditStore
    groups: GroupStore
    tenant_states: TenantStateStore
    passwords: PasswordStore
    throttles: ThrottleStore
    refresh_tokens: RefreshTokenStore
    registration_tokens: RegistrationTokenStore
    signing_keys: SigningKeyStore
    revocations: RevocationStore
    roles: RoleStore
    resource_rules: ResourceRuleStore
    authz_versions: AuthzVersionStore


class Storage(Protocol):
    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """A unit of work that commits on normal exit and rolls back on an exception."""

    def read_only(self) -> AbstractContextManager[UnitOfWork]:
        """A unit of work that only reads a consistent snapshot and is never committed: it
        neither waits for nor blocks a writer (on SQLite it never takes the write lock). It
        must not write; the SQL backends refuse a write with `StorageError`."""

    def migrate(self) -> None:
        """Bring the schema to the newest version (idempotent)."""

    def check(self) -> None:
        """Raise `StorageError` unless the backend answers (used by /ready)."""

    def change_counters(self) -> ChangeCounters | None:
        """The revocation epoch and the authorization version as committed now, read without
        a unit of work; None when the backend cannot read them locally (a network round trip),
        so that callers on an event loop use a unit of work off the loop instead."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class ChangeCounters:
    """Two counters that move with every change a cached decision depends on: the revocation
    epoch (a credential, principal or tenant withdrawn) and the authorization version (roles,
    bindings, rules, group membership)."""

    revocation_epoch: int
    authz_version: int
