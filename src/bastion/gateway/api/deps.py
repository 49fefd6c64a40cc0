"""Dependencies shared by admin API routers: services, the authenticated caller, the actor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from bastion.core.routes import RouteMatch, RouteSpec, default_event
from bastion.errors import AuthorizationError, BastionError
from bastion.gateway.limits import RateLimiter, limited_error
from bastion.gateway.network import client_ip_of, credential_of
from bastion.gateway.problem_handlers import request_id_of
from bastion.gateway.problems import status_for
from bastion.services.access import Caller, RequestFacts, Verdict
from bastion.services.audit import AuditSink
from bastion.services.request_events import client_text, request_event
from bastion.wiring import Services

READS = frozenset({"GET", "HEAD"})

_bearer = HTTPBearer(auto_error=False, description="An API key (bk_live_…) or a bearer token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def services_dep(request: Request) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


def _sink(request: Request) -> AuditSink:
    sink: AuditSink = request.app.state.audit
    return sink


def _facts(request: Request, credential: str | None) -> RequestFacts:
    request_id = request_id_of(request)
    return RequestFacts(
        request.method,
        request.url.path,
        credential,
        client_ip_of(request.scope),
        request.headers.get("user-agent"),
        request_id,
    )


def require(resource: str, action: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits only callers whose roles ∩ scopes grant ``resource:action``."""
    event = default_event(resource, action)

    async def dependency(
        request: Request,
        # Declared for the OpenAPI security schemes only: they read the first header of each
        # name, so a second ``Authorization`` with another key would go unseen. The credential
        # is read from every header, as the proxy pipeline reads it (two different → 401).
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        api_key: str | None = Depends(_api_key),
    ) -> Caller:
        services = services_dep(request)
        facts = _facts(request, None)
        spec = RouteSpec(
            request.method, request.url.path, resource, action, f"{resource}:{action}", event
        )
        match = RouteMatch(spec, {})
        caller: Caller | None = None
        try:
            credential = credential_of(request.scope["headers"])
            caller = await run_in_threadpool(services.access.identify, credential)
        except BastionError as exc:
            verdict = Verdict(facts, match, None, exc)
        else:
            decision = services.access.authorize(
                caller, f"{resource}:{action}", match=match, facts=facts
            )
            error = None if decision.allowed else AuthorizationError(decision.reasons)
            verdict = Verdict(facts, match, caller.identity, error, decision.reasons)
        # Denied or not, the call is charged to the caller's (or its address's) rate limit.
        verdict = await _within_rate(request, verdict)
        if verdict.error is not None:
            await _audit_deny(request, verdict)
            raise verdict.error
        assert caller is not None  # identified, or verdict.error says why not
        # A read's event is recorded with the status it is answered with (`AuditedReads`);
        # a change records its own events in its transaction.
        request.state.bastion_admitted = verdict
        return caller

    return dependency


def _event(request: Request, verdict: Verdict, status: int) -> Any:
    return api_event(services_dep(request), verdict, status)


def api_event(services: Services, verdict: Verdict, status: int) -> Any:
    return request_event(
        verdict,
        status=status,
        now=services.clock.now(),
        default_tenant=services.config.security.default_tenant,
    )


async def refused_after_admission(request: Request, error: AuthorizationError) -> bool:
    """Audit ``error`` as the deny of a request `require` admitted (the escalation guard, a
    platform-only operation); False, recording nothing, when it was not admitted (its deny
    was audited where it happened)."""
    admitted = getattr(request.state, "bastion_admitted", None)
    if not isinstance(admitted, Verdict):
        return False
    verdict = replace(admitted, error=error, reasons=error.reasons)
    if request.method in READS:
        request.state.bastion_admitted = verdict  # its one event, as it is answered
    else:
        await _audit_deny(request, verdict)
    return True


async def _within_rate(request: Request, verdict: Verdict) -> Verdict:
    """``verdict``, or a deny when the caller's ``security.rateLimit.perClient`` bucket is
    empty (429; the client address's bucket when it is not authenticated, so guessing keys
    is throttled too) or the shared store is down with ``failClosed`` (503)."""
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    if limiter is None:
        return verdict
    try:
        decision = await limiter.check_client(verdict)
    except BastionError as exc:
        return replace(verdict, error=exc)
    if decision.allowed:
        return verdict
    return replace(verdict, error=limited_error(decision))


async def _audit_deny(request: Request, verdict: Verdict) -> None:
    assert verdict.error is not None
    await _sink(request).record(_event(request, verdict, status_for(verdict.error)[0]))


def in_platform_tenant(caller: Caller, services: Services) -> bool:
    """Whether the caller belongs to the platform tenant (``security.defaultTenant``, which
    the configuration holds in canonical form); every router that keeps something to the
    platform tenant asks this."""
    return caller.identity.tenant == services.config.security.default_tenant


def actor_of(caller: Caller, request: Request) -> dict[str, Any]:
    """The audit actor for a change made through the API."""
    principal = caller.identity.principal
    return {
        "type": principal.kind.value,
        "id": principal.name,
        "keyId": caller.identity.credential_id,
        "ip": client_ip_of(request.scope),
        "userAgent": client_text(request.headers.get("user-agent")),
        "via": "api",
        "requestId": request_id_of(request),
    }
