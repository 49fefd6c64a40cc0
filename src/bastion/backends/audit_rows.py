"""How an audit event is laid out in a store: the indexed columns and the JSON body.

Shared by every backend so that queries by actor and resource mean the same everywhere.
"""

from __future__ import annotations

import json

from bastion.core.model import AuditEvent
from bastion.errors import StorageError

# Built once: json.dumps with options constructs a new encoder on every call.
_BODY_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def actor_id(event: AuditEvent) -> str:
    """The actor's id as the actor_id column holds it ("" without one)."""
    value = event.actor.get("id")
    return "" if value is None else str(value)


def resource_key(event: AuditEvent) -> str:
    """``type/id`` of the event's resource, as AuditQuery.resource matches it."""
    kind = event.resource.get("type")
    ident = event.resource.get("id")
    if kind is None:
        return ""
    return str(kind) if ident is None else f"{kind}/{ident}"


def encode_body(event: AuditEvent) -> str:
    """The JSON text of the event's free-form parts; `StorageError` if it is not plain JSON."""
    body = {
        "actor": event.actor,
        "resource": event.resource,
        "details": event.details,
        "request": event.request,
    }
    try:
        return _BODY_ENCODER.encode(body)
    except (TypeError, ValueError):
        raise StorageError("insert audit events: an event body is not plain JSON") from None
