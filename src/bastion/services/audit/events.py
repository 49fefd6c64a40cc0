"""Building audit events and appending them inside the caller's transaction."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bastion.backends.protocols import UnitOfWork
from bastion.core.model import AuditEvent
from bastion.services.audit.recorder import append_to


def new_event_id(now: datetime) -> str:
    """``evt_`` + 32 hex: 48 bits of milliseconds, then 80 random bits (UUIDv7's layout).

    Time-ordered ids keep the unique index on event ids an append, not a random write.
    """
    millis = int(now.timestamp() * 1000)
    return f"evt_{millis & 0xFFFFFFFFFFFF:012x}{secrets.token_hex(10)}"


def build_event(
    *,
    action: str,
    outcome: str,
    tenant: str,
    now: datetime,
    actor: dict[str, Any] | None = None,
    resource: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    request: dict[str, Any] | None = None,
) -> AuditEvent:
    """A new event at ``now`` (milliseconds, as the hash covers them).

    Every write path masks it when it is chained, just before it is stored (and only then is
    it sent to destinations), so callers pass what happened, as it happened.
    """
    if now.tzinfo is not UTC:
        now = now.astimezone(UTC)
    return AuditEvent(
        event_id=new_event_id(now),
        timestamp=now.replace(microsecond=now.microsecond // 1000 * 1000),
        tenant=tenant,
        action=action,
        outcome=outcome,
        actor=actor or {},
        resource=resource or {},
        details=details or {},
        request=request or {},
    )


def append_events(tx: UnitOfWork, events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """Mask, chain and insert ``events`` after the stored head, in the caller's transaction.

    Through the wired storage this also applies ``security.dataProtection.masking``, writes a
    signed checkpoint when one is due, and hands the events to the destinations once the
    transaction has committed.
    """
    return append_to(tx, events)
