"""The one audit event a decided request produces (proxy, forward-auth, admin API), in the
spec/000 shape: who, which route and resource, the outcome and the reasons behind it."""

from __future__ import annotations

from typing import Any

from bastion.core.audit_formats import fit
from bastion.core.masking import mask_value
from bastion.core.model import AuditEvent
from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    RateLimitedError,
    StorageError,
)
from bastion.services.access import Verdict
from bastion.services.audit import build_event

# Header text the client chose is kept to this many characters (marker included).
MAX_CLIENT_TEXT = 512


def client_text(value: str | None) -> str | None:
    """A header value as an event records it: at most `MAX_CLIENT_TEXT` characters.

    Anyone can send a megabyte of User-Agent, and the event would carry it to the database
    and every destination. A cut value is masked first: half a credential no longer looks
    like one to the masking that runs on the event later.
    """
    if value is None or len(value) <= MAX_CLIENT_TEXT:
        return value
    return fit(str(mask_value(value)), MAX_CLIENT_TEXT)


def request_event(
    verdict: Verdict,
    *,
    status: int,
    now: Any,
    default_tenant: str,
    extra: dict[str, Any] | None = None,
) -> AuditEvent:
    """The one audit event a request produces, in the spec/000 shape."""
    facts, match, identity, error = verdict.facts, verdict.match, verdict.identity, verdict.error
    if error is None:
        outcome = "success" if status < 500 else "failure"
    elif isinstance(error, AuthorizationError | RateLimitedError):
        outcome = "denied"
    else:
        outcome = "failure"
    if match is not None:
        action = match.route.event
    elif isinstance(error, AuthorizationError):
        action = "authz.deny"
    else:
        action = "request.reject" if error is not None else "request.public"
    actor: dict[str, Any] = {"type": "anonymous", "id": None}
    if identity is not None:
        actor = {
            "type": identity.principal.kind.value,
            "id": identity.principal.name,
            "keyId": identity.credential_id,
        }
        if identity.acting is not None:
            actor["act"] = {"type": identity.acting.kind.value, "id": identity.acting.name}
    actor["ip"] = facts.client_ip
    actor["userAgent"] = client_text(facts.user_agent)
    resource: dict[str, Any] = {}
    if match is not None:
        resource = {"type": match.route.resource, "id": match.resource_id}
    details: dict[str, Any] = {"status": status}
    if verdict.reasons:
        details["reasons"] = list(verdict.reasons)
    if isinstance(error, AuthenticationError):
        details["reason"] = error.reason
    elif isinstance(error, StorageError):
        details["reason"] = "storage_unavailable"
    elif error is not None and not isinstance(error, AuthorizationError):
        details["reason"] = error.code
    if extra:
        details.update(extra)
    return build_event(
        action=action,
        outcome=outcome,
        tenant=identity.tenant if identity is not None else default_tenant,
        now=now,
        actor=actor,
        resource=resource,
        details=details,
        request={"method": facts.method, "path": facts.path, "requestId": facts.request_id},
    )
