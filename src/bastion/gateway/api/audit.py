"""``GET /v1/audit/events``: the audit trail, filtered as ``bastion audit list`` filters it,
a page at a time with an opaque cursor. Reading it needs ``audit:read`` and is itself audited.

A caller sees its own tenant's events; callers of the platform tenant
(``security.defaultTenant``) see every tenant's, or one with ``tenant=``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from bastion.config.units import parse_moment
from bastion.core.audit import MAX_SEQ, event_to_json
from bastion.core.model import AUDIT_OUTCOMES, AuditQuery
from bastion.core.names import canonical_name
from bastion.errors import AuthorizationError, RequestRejectedError
from bastion.gateway.api.deps import in_platform_tenant, require, services_dep
from bastion.services.access import Caller
from bastion.wiring import Services

router = APIRouter(prefix="/v1/audit", tags=["audit"])
MAX_PAGE = 1000
_CURSOR_SEQ = re.compile(r"after:(0|[1-9][0-9]{0,18})")


class AuditEventOut(BaseModel):
    timestamp: str
    eventId: str  # the spec/000 field names
    tenant: str
    action: str
    outcome: str
    actor: dict[str, Any]
    resource: dict[str, Any]
    details: dict[str, Any]
    request: dict[str, Any]
    seq: int
    prevHash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    nextCursor: str | None  # pass it back as ``cursor`` for the next page


def _moment(value: str | None, name: str, now: datetime) -> datetime | None:
    """A duration back from now (``1h``, ``7d``) or an RFC 3339 time with an offset."""
    if value is None:
        return None
    try:
        return parse_moment(value, now=now)
    except ValueError as exc:
        raise RequestRejectedError(f"{name}: {exc}") from None


def _outcome(value: str | None) -> str | None:
    if value is not None and value not in AUDIT_OUTCOMES:
        raise RequestRejectedError(f"outcome: must be one of {', '.join(AUDIT_OUTCOMES)}")
    return value


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The seq ``cursor`` stands for. Only what `encode_cursor` writes is read: ASCII digits
    without leading zeros, at most `MAX_SEQ`, so nothing else reaches the storage query."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    match = _CURSOR_SEQ.fullmatch(text)
    seq = int(match[1]) if match is not None else -1
    if 0 <= seq <= MAX_SEQ and encode_cursor(seq) == cursor:
        return seq
    raise RequestRejectedError("cursor: not a cursor this API returned")


def _tenant(caller: Caller, services: Services, asked: str | None) -> str | None:
    own = caller.identity.tenant
    platform = in_platform_tenant(caller, services)
    if asked is None:
        return None if platform else own
    if canonical_name(asked) != own and not platform:
        raise AuthorizationError(("another tenant's audit trail is for the platform tenant",))
    return canonical_name(asked)


@router.get("/events", response_model=AuditPage)
def list_events(
    since: Annotated[str | None, Query(description="1h, 7d, or an RFC 3339 time")] = None,
    until: Annotated[str | None, Query(description="1h, 7d, or an RFC 3339 time")] = None,
    action: Annotated[str | None, Query(description="e.g. pattern.execute")] = None,
    actor: Annotated[str | None, Query(description="the actor's id")] = None,
    resource: Annotated[str | None, Query(description="type/id")] = None,
    outcome: Annotated[str | None, Query(description="success | failure | denied")] = None,
    tenant: Annotated[str | None, Query(description="platform tenant only")] = None,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    caller: Caller = Depends(require("audit", "read")),
    services: Services = Depends(services_dep),
) -> AuditPage:
    now = services.clock.now()
    query = AuditQuery(
        since=_moment(since, "since", now),
        until=_moment(until, "until", now),
        action=action,
        actor=actor,
        resource=resource,
        outcome=_outcome(outcome),
        tenant=_tenant(caller, services, tenant),
        after_seq=decode_cursor(cursor),
        limit=limit,
    )
    with services.storage.transaction() as tx:
        found = tx.audit.query(query)
    events = [AuditEventOut(**event_to_json(event)) for event in found]
    next_cursor = encode_cursor(found[-1].seq) if len(found) == limit else None
    return AuditPage(events=events, nextCursor=next_cursor)
