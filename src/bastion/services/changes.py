"""What every identity change shares: the canonical, checked form of a typed name, the words
for a name that is already taken, and the audit event the change appends in its own
transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bastion.backends.protocols import UnitOfWork
from bastion.core.names import canonical_name
from bastion.errors import ConflictError, RequestRejectedError
from bastion.services.audit import append_events, build_event

MAX_NAME_LENGTH = 254

# What every backend says when a unique constraint refuses a row (bastion.backends).
_UNIQUE = "must be unique"


def valid_name(raw: str, what: str) -> str:
    """The canonical form of a name a person typed; `RequestRejectedError` if unusable."""
    return plain_name(canonical_name(raw), what)


def plain_name(name: str, what: str) -> str:
    """``name`` as it will be stored, if it is 1 to `MAX_NAME_LENGTH` printable characters
    with no slash, backslash or surrounding white space; `RequestRejectedError` otherwise."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise RequestRejectedError(f"a {what} name must be 1 to {MAX_NAME_LENGTH} characters")
    if any(not ch.isprintable() or ch in "/\\" for ch in name) or name != name.strip():
        raise RequestRejectedError(f"a {what} name must not contain control characters or slashes")
    return name


@contextmanager
def unique(message: str) -> Iterator[None]:
    """Inside, a unique value that is taken is a `ConflictError` saying ``message`` ("a group
    named ops already exists") rather than the backend's "create group: a value that must be
    unique is already taken". Other conflicts keep their own words. Wrap only the one write
    whose uniqueness ``message`` speaks of."""
    try:
        yield
    except ConflictError as exc:
        if _UNIQUE not in str(exc):
            raise
        raise ConflictError(message) from None


def record(
    tx: UnitOfWork,
    *,
    action: str,
    tenant: str,
    now: Any,
    actor: dict[str, Any],
    resource: dict[str, Any],
    details: dict[str, Any] | None = None,
    outcome: str = "success",
) -> None:
    """Append one audit event in the caller's transaction."""
    event = build_event(
        action=action,
        outcome=outcome,
        tenant=tenant,
        now=now,
        actor=actor,
        resource=resource,
        details=details,
    )
    append_events(tx, [event])


def toggle_action(resource: str, before: bool, after: bool) -> str:
    """``<resource>.disable``, ``.enable`` or ``.update``, for a change of ``disabled``."""
    if after and not before:
        return f"{resource}.disable"
    if before and not after:
        return f"{resource}.enable"
    return f"{resource}.update"
