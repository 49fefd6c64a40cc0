"""The storage protocols services depend on; `sql` and `memory` implement them.

A `Storage` hands out a `UnitOfWork` per transaction. Everything written through one unit of
work commits together or not at all, which is how a security-relevant change and its audit
record land atomically (DESIGN.md section 6). Every read of a tenant-owned row takes the tenant
id as a required argument. Implementations raise only `bastion.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from bastion.core.model import (
    ApiKey,
    AuditEvent,
    AuditQuery,
    Principal,
    RoleBinding,
    SubjectType,
    Tenant,
)


class TenantStore(Protocol):
    def create(self, tenant: Tenant) -> None:
        """Store a new tenant; `ConflictError` if the name is taken."""

    def get_by_name(self, name: str) -> Tenant:
        """The tenant called ``name``; `NotFoundError` if there is none."""

    def get(self, tenant_id: str) -> Tenant:
        """The tenant with ``tenant_id``; `NotFoundError` if there is none."""

    def list(self) -> list[Tenant]:
        """Every tenant, oldest first."""


class PrincipalStore(Protocol):
    def create(self, principal: Principal) -> None:
        """Store a principal; `ConflictError` if its name is taken in its tenant."""

    def get(self, tenant_id: str, principal_id: str) -> Principal:
        """`NotFoundError` if absent from that tenant."""

    def get_by_name(self, tenant_id: str, name: str) -> Principal:
        """Look up by canonical name inside one tenant; `NotFoundError` if absent."""

    def list(self, tenant_id: str) -> list[Principal]:
        """Every principal of the tenant, ordered by name."""


class ApiKeyStore(Protocol):
    def create(self, key: ApiKey) -> None:
        """Store a key; `ConflictError` if the hash or the name (per tenant) is taken."""

    def find_by_hash(self, key_hash: bytes) -> ApiKey | None:
        """The key whose keyed hash is ``key_hash``, revoked or not; None if unknown."""

    def get(self, tenant_id: str, key_id: str) -> ApiKey:
        """`NotFoundError` if absent from that tenant."""

    def list(self, tenant_id: str) -> list[ApiKey]:
        """Every key of the tenant, revoked included, oldest first."""

    def revoke(self, tenant_id: str, key_id: str, *, at: datetime) -> ApiKey:
        """Mark revoked (idempotent: an earlier revocation time is kept) and return the row."""

    def touch(self, key_id: str, *, at: datetime) -> None:
        """Record a use; a no-op for an unknown id."""


class BindingStore(Protocol):
    def create(self, binding: RoleBinding) -> None:
        """Store a binding; `ConflictError` for the same subject, role and tenant twice."""

    def for_subject(
        self, tenant_id: str, subject_type: SubjectType, subject_name: str
    ) -> list[RoleBinding]:
        """The bindings of one subject in one tenant, expired ones included."""

    def list(self, tenant_id: str) -> list[RoleBinding]:
        """Every binding of the tenant."""


class AuditStore(Protocol):
    def lock_head(self) -> tuple[int, str]:
        """Lock the chain for this unit of work and return (last seq, last hash); (0, "") if empty.

        Other writers wait until this unit of work ends, so chaining is serial across processes.
        """

    def insert(self, events: Sequence[AuditEvent]) -> None:
        """Insert events already chained after the head returned by `lock_head`."""

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        """Events matching every filter, ordered by seq ascending, at most ``query.limit``."""

    def iterate(self, *, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditEvent]:
        """Every event with seq > after_seq in seq order, read in batches (memory stays flat)."""


class UnitOfWork(Protocol):
    tenants: TenantStore
    principals: PrincipalStore
    api_keys: ApiKeyStore
    bindings: BindingStore
    audit: AuditStore


class Storage(Protocol):
    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """A unit of work that commits on normal exit and rolls back on an exception."""

    def migrate(self) -> None:
        """Bring the schema to the newest version (idempotent)."""

    def check(self) -> None:
        """Raise `StorageError` unless the backend answers (used by /ready)."""

    def close(self) -> None:
        """Release connections."""
