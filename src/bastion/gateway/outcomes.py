"""What every mode does with a decided request: the one audit event, metrics and deny answers.

`Inbound` is what the edge learned from the connection before any decision. `Outcomes.deny`
records the request's single audit event and answers with problem+json, security headers,
CORS headers and, for 429, ``Retry-After`` and ``RateLimit-*``. If the audit record cannot be
written the answer is 503, whatever the deny was.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from bastion.errors import (
    AuditUnavailableError,
    BastionError,
    InvalidBodyError,
)
from bastion.gateway import problems
from bastion.gateway.forward_auth import deny_status
from bastion.gateway.headers import Headers
from bastion.gateway.metrics import GatewayMetrics
from bastion.gateway.pipeline import Admission
from bastion.gateway.responses import CorsPolicy, HeaderPolicy, Send, send_body
from bastion.services.access import RequestFacts, Verdict
from bastion.services.audit import AuditSink, NullAuditSink
from bastion.services.clock import Clock
from bastion.services.request_events import request_event

Scope = MutableMapping[str, Any]


@dataclass(frozen=True, slots=True)
class Inbound:
    """One request as the edge received it (the path is not yet checked)."""

    scope: Scope
    request_id: str
    method: str
    headers: Headers
    peer: str | None
    client_ip: str | None
    raw_path: bytes
    query: bytes
    https: bool
    origin: str | None
    user_agent: str | None

    def facts(self, path: str, *, method: str | None = None) -> RequestFacts:
        return RequestFacts(
            method or self.method, path, None, self.client_ip, self.user_agent, self.request_id
        )


class Outcomes:
    def __init__(
        self,
        *,
        audit: AuditSink,
        clock: Clock,
        default_tenant: str,
        headers: HeaderPolicy,
        cors: CorsPolicy,
        metrics: GatewayMetrics,
    ) -> None:
        self._audit = audit
        # With the audit trail off there is no event to build (a tenth of a public request).
        self._discard = isinstance(audit, NullAuditSink)
        self._clock = clock
        self._default_tenant = default_tenant
        self.headers = headers
        self.cors = cors
        self.metrics = metrics

    async def record(
        self, verdict: Verdict, status: int, extra: dict[str, Any] | None = None
    ) -> None:
        """The request's one audit event; `AuditUnavailableError` if it cannot be made."""
        if self._discard:
            return
        event = request_event(
            verdict,
            status=status,
            now=self._clock.now(),
            default_tenant=self._default_tenant,
            extra=extra or None,
        )
        await self._audit.record(event)

    async def deny(
        self,
        inbound: Inbound,
        admission: Admission,
        send: Send,
        *,
        mode: str = "proxy",
        detail: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Audit and answer a deny; returns the status sent."""
        verdict = admission.verdict
        detail = admission.detail if detail is None else detail
        error: BastionError = verdict.error or BastionError("denied")
        status, _ = problems.status_for(error)
        if mode == "forward-auth":
            status = deny_status(status, inbound.headers)
        details = {**(admission.extra or {}), **(extra or {})}
        if isinstance(error, InvalidBodyError):
            details.setdefault("reason", error.reason)
        try:
            await self.record(verdict, status, details)
        except AuditUnavailableError as exc:
            error, detail, status = exc, None, 503
        headers = [
            *problems.response_headers(status, request_id=inbound.request_id, error=error),
            *self.headers.own(https=inbound.https),
            *self.cors.actual(inbound.origin),
        ]
        if mode == "forward-auth":
            headers.append((b"x-bastion-deny", error.code.encode()))
        body = problems.problem_body(
            error, request_id=inbound.request_id, detail=detail, status=status
        )
        self.metrics.observe(mode, status)
        await send_body(send, status, headers, body)
        return status

    def reject(self, inbound: Inbound, error: BastionError) -> Admission:
        """An admission that denies with ``error`` before any decision was made."""
        facts = inbound.facts(inbound.raw_path.decode("latin-1"))
        return Admission(Verdict(facts, None, None, error))

    async def send_own(
        self, inbound: Inbound, send: Send, status: int, headers: Headers, body: bytes
    ) -> None:
        """A response bastion writes itself, with the security headers."""
        own = [*headers, *self.headers.own(https=inbound.https)]
        await send_body(send, status, own, body)
