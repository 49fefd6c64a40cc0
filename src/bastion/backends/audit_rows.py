"""How an audit event is laid out in a store: the indexed columns and the JSON body.

Shared by every backend so that queries by actor and resource mean the same everywhere. The
body is a JSON object holding at least ``actor``, ``resource``, ``details`` and ``request``;
events chained by `bastion.core.audit.chain_encoded` store their whole canonical JSON there
(the exact text their hash covers), other inserts the four parts.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from bastion.core.jcs import CanonicalJSONError, fast_text
from bastion.core.model import AuditEvent
from bastion.core.names import storable
from bastion.errors import StorageError


def actor_id(event: AuditEvent) -> str:
    """The actor's id as the actor_id column holds it ("" without one)."""
    return filter_text(_actor_text(event))


def resource_key(event: AuditEvent) -> str:
    """``type/id`` of the event's resource, as AuditQuery.resource matches it."""
    return filter_text(_resource_text(event))


def index_columns_match(event: AuditEvent, actor_column: str, resource_column: str) -> bool:
    """Whether the stored index columns are the event's: as written now, or as written before
    they were made storable (the text whole, which SQLite kept), so an upgrade never makes a
    true event look changed."""
    for actor, resource in (
        (actor_id(event), resource_key(event)),
        (_actor_text(event), _resource_text(event)),
    ):
        if (actor_column, resource_column) == (actor, resource):
            return True
    return False


def sqlite_timestamp(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores for an aware ``moment``: naive UTC with
    microseconds, ``YYYY-MM-DD HH:MM:SS.ffffff``, fixed width so that text order is time
    order (time filters compare the text)."""
    if moment.tzinfo is not UTC:
        if moment.utcoffset() is None:
            raise StorageError("insert audit events failed (naive datetime)")
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]  # without "+00:00"


def timestamp_column_matches(event: AuditEvent, stored_text: str | None) -> bool:
    """Whether a timestamp column kept as text (``stored_text``; None where the store keeps a
    typed timestamp) is exactly what bastion writes for the event's time. Another spelling
    of the same instant (a ``T``, an offset, fewer digits) reads back as the same time, but
    sorts elsewhere among the texts a time filter compares."""
    return stored_text is None or stored_text == sqlite_timestamp(event.timestamp)


def _actor_text(event: AuditEvent) -> str:
    value = event.actor.get("id")
    return "" if value is None else str(value)


def _resource_text(event: AuditEvent) -> str:
    kind = event.resource.get("type")
    ident = event.resource.get("id")
    if kind is None:
        return ""
    return str(kind) if ident is None else f"{kind}/{ident}"


# Index keys longer than this hold a prefix and a digest of the rest: PostgreSQL's B-tree takes
# about 2,700 bytes a row, and 600 characters are at most 2,400 bytes of UTF-8.
_INDEX_KEY_CHARACTERS = 600
_KEPT = _INDEX_KEY_CHARACTERS - 1 - 64


def filter_text(value: str) -> str:
    """A query's actor or resource as the columns above hold it. They are index keys, and a
    name a client made up (a login's, a client id) may hold a NUL, which PostgreSQL cannot
    store, or run to thousands of characters, which its index cannot hold: so a NUL is held
    as U+FFFD (`storable`) and a long value as its start, "…" and the SHA-256 of the whole.
    The event's body keeps every character; a query by the value as sent still finds it."""
    if len(value) <= _INDEX_KEY_CHARACTERS and value.isascii() and "\x00" not in value:
        return value  # nearly every event: nothing to replace (a surrogate is not ASCII)
    value = storable(value)
    if len(value) <= _INDEX_KEY_CHARACTERS:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()
    return f"{value[:_KEPT]}…{digest}"


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
