"""The nouns bastion stores: tenants, principals, API keys, role bindings and audit events.

Plain frozen dataclasses with no behaviour that needs I/O; the storage protocols in
`bastion.backends.protocols` read and write exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class PrincipalKind(StrEnum):
    """What sort of actor a principal is; the values are the spec/000 binding subject types."""

    USER = "user"
    SERVICE_ACCOUNT = "serviceAccount"
    AGENT = "agent"


class SubjectType(StrEnum):
    """Who a role binding attaches a role to."""

    USER = "user"
    GROUP = "group"
    SERVICE_ACCOUNT = "serviceAccount"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """A user, service account or agent. ``name`` is the canonical login (an email for users)."""

    id: str
    tenant_id: str
    kind: PrincipalKind
    name: str
    created_at: datetime
    display_name: str = ""
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key. ``key_hash`` is the keyed hash of the secret; the secret is never kept.

    ``prefix`` is the first characters of the key, safe to show, so a person can tell keys apart.
    """

    id: str
    tenant_id: str
    principal_id: str
    name: str
    prefix: str
    key_hash: bytes
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class RoleBinding:
    """Attaches ``role`` to a subject (by its canonical name) inside one tenant."""

    id: str
    tenant_id: str
    subject_type: SubjectType
    subject_name: str
    role: str
    created_at: datetime
    expires_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


AUDIT_OUTCOMES = ("success", "failure", "denied")
"""Every value an audit event's ``outcome`` takes."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record in the spec/000 JSON shape plus tenant and the hash chain fields.

    ``seq``, ``prev_hash`` and ``hash`` are empty until the event is chained
    (`bastion.core.audit.chain_events`) just before it is stored.
    """

    event_id: str
    timestamp: datetime
    tenant: str
    action: str
    outcome: str
    actor: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for reading the audit trail; every field is optional and they combine with AND.

    ``tenant`` None means every tenant (an operator's view from the CLI).
    """

    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    actor: str | None = None
    resource: str | None = None
    outcome: str | None = None
    tenant: str | None = None
    after_seq: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of principals in one tenant; role bindings may name it (subject type group)."""

    id: str
    tenant_id: str
    name: str
    created_at: datetime
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class CustomRole:
    """A role defined through the admin API in one tenant: ``resource:action`` permissions plus
    the roles it inherits."""

    id: str
    tenant_id: str
    name: str
    permissions: tuple[str, ...]
    inherits: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ResourceRuleRecord:
    """A stored resource rule: who may act on one resource instance. ``actions`` empty means
    every action."""

    id: str
    tenant_id: str
    resource_type: str
    resource_id: str
    allowed_users: tuple[str, ...]
    allowed_roles: tuple[str, ...]
    actions: tuple[str, ...]
    created_at: datetime
