"""Builders of model objects for the storage contract suite, at fixed times (no wall clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bastion.backends import open_storage
from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.model import (
    ApiKey,
    AuditEvent,
    Principal,
    PrincipalKind,
    RoleBinding,
    SubjectType,
    Tenant,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class Backend:
    """One backing store; `open` hands out another `Storage` on it, as a second process would."""

    name: str
    url: str
    opened: list[Storage] = field(default_factory=list)

    def open(self) -> Storage:
        if self.name == "memory" and self.opened:
            # One process's memory is the whole store: a "second process" shares the instance.
            return self.opened[0]
        storage = open_storage(self.url)
        self.opened.append(storage)
        return storage

    def close(self) -> None:
        for storage in self.opened:
            storage.close()


def make_tenant(name: str = "acme", *, at: datetime = T0) -> Tenant:
    return Tenant(id=f"ten-{name}", name=name, created_at=at)


def make_principal(tenant: Tenant, name: str = "alice@example.com", **kw: Any) -> Principal:
    fields: dict[str, Any] = {
        "id": f"pri-{tenant.name}-{name}",
        "tenant_id": tenant.id,
        "kind": PrincipalKind.USER,
        "name": name,
        "created_at": T0,
    }
    return Principal(**(fields | kw))


def make_key(owner: Principal, name: str = "ci", **kw: Any) -> ApiKey:
    fields: dict[str, Any] = {
        "id": f"key-{owner.tenant_id}-{name}",
        "tenant_id": owner.tenant_id,
        "principal_id": owner.id,
        "name": name,
        "prefix": "bk_live_abcd",
        "key_hash": f"hash-{owner.tenant_id}-{name}".encode(),
        "scopes": ("patterns:read", "executions:create"),
        "created_at": T0,
    }
    return ApiKey(**(fields | kw))


def make_binding(tenant: Tenant, subject: str, role: str, **kw: Any) -> RoleBinding:
    fields: dict[str, Any] = {
        "id": f"bind-{tenant.name}-{subject}-{role}",
        "tenant_id": tenant.id,
        "subject_type": SubjectType.USER,
        "subject_name": subject,
        "role": role,
        "created_at": T0,
    }
    return RoleBinding(**(fields | kw))


def make_event(seq: int, **kw: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "event_id": f"evt-{seq:06d}",
        "timestamp": T0 + timedelta(seconds=seq),
        "tenant": "acme",
        "action": "patterns:read",
        "outcome": "success",
        "actor": {"id": "alice", "type": "user", "roles": ["viewer"]},
        "resource": {"type": "patterns", "id": "p1"},
        "details": {"n": seq, "nested": {"ok": True, "none": None, "f": 1.5}},
        "request": {"ip": "10.0.0.1", "method": "GET"},
        "seq": seq,
        "prev_hash": f"h{seq - 1}" if seq > 1 else "",
        "hash": f"h{seq}",
    }
    return AuditEvent(**(fields | kw))


def seed_tenant(storage: Storage, *names: str) -> list[Tenant]:
    tenants = [make_tenant(name) for name in names]
    with storage.transaction() as uow:
        for tenant in tenants:
            uow.tenants.create(tenant)
    return tenants


def in_transaction(storage: Storage, work: Callable[[UnitOfWork], Any]) -> Any:
    with storage.transaction() as uow:
        return work(uow)
