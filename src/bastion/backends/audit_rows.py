"""How an audit event is laid out in a store: the indexed columns and the JSON body.

Shared by every backend so that queries by actor and resource mean the same everywhere. The
body is a JSON object holding at least ``actor``, ``resource``, ``details`` and ``request``;
events chained by `bastion.core.audit.chain_encoded` store their whole canonical JSON there
(the exact text their hash covers), other inserts the four parts.
"""

from __future__ import annotations

from bastion.core.jcs import CanonicalJSONError, fast_text
from bastion.core.model import AuditEvent
from bastion.core.names import storable
from bastion.errors import StorageError


def actor_id(event: AuditEvent) -> str:
    """The actor's id as the actor_id column holds it ("" without one)."""
    value = event.actor.get("id")
    return "" if value is None else storable(str(value))


def resource_key(event: AuditEvent) -> str:
    """``type/id`` of the event's resource, as AuditQuery.resource matches it."""
    kind = event.resource.get("type")
    ident = event.resource.get("id")
    if kind is None:
        return ""
    return storable(str(kind) if ident is None else f"{kind}/{ident}")


def filter_text(value: str) -> str:
    """A query's actor or resource as the columns above hold it. They are index keys: a name a
    client made up (a login's, a client id) may hold a NUL, which PostgreSQL cannot store, so
    they hold it as U+FFFD (`storable`) while the event's body keeps every character."""
    return storable(value)


def encode_body(event: AuditEvent) -> str:
    """The JSON text of the event's free-form parts; `StorageError` if it is not plain JSON."""
    body = {
        "actor": event.actor,
        "resource": event.resource,
        "details": event.details,
        "request": event.request,
    }
    try:
        return fast_text(body)
    except (TypeError, ValueError, CanonicalJSONError):
        raise StorageError("insert audit events: an event body is not plain JSON") from None
