"""`build_admin_api`: the FastAPI application for ``<prefix>/api``, with problem+json errors."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bastion import __version__
from bastion.errors import (
    AuthorizationError,
    ConflictError,
    NotFoundError,
    RequestRejectedError,
)
from bastion.gateway.api import (
    agents,
    apikeys,
    audit,
    authz,
    bindings,
    groups,
    policies,
    resource_rules,
    roles,
    service_accounts,
    signing_keys,
    tenants,
    users,
    whoami,
)
from bastion.gateway.api.audited_reads import AuditedReads
from bastion.gateway.api.deps import refused_after_admission
from bastion.gateway.api.openapi import document_problems
from bastion.gateway.api.strict_input import StrictInput
from bastion.gateway.limits import RateLimiter
from bastion.gateway.problem_handlers import install_problem_handlers, problem_response
from bastion.services.audit import AuditSink
from bastion.wiring import Services

ROUTERS = (
    whoami.router,
    apikeys.router,
    roles.router,
    bindings.router,
    resource_rules.router,
    authz.router,
    policies.router,
    tenants.router,
    users.router,
    groups.router,
    service_accounts.router,
    agents.router,
    agents.principals,
    signing_keys.router,
    audit.router,
)

# The caller is authenticated and authorized before any of these can happen, and each says
# only what the caller sent or may see in its own tenant.
DETAILED = (RequestRejectedError, NotFoundError, ConflictError)


def build_admin_api(
    services: Services, *, audit: AuditSink, limiter: RateLimiter | None = None
) -> FastAPI:
    """The admin API; ``limiter``, the gateway's ``security.rateLimit``, whose perClient
    bucket every call is charged to (`RateLimiter.check_client`)."""
    api = FastAPI(
        title="Bastion admin API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        # The framework answers ``/v1/users/`` with a 307 to a URL built from the client's
        # Host header and without the mount prefix: a redirect the client chose, off the API.
        # A path that is not an endpoint is a 404 problem like any other (DESIGN.md 7.2).
        redirect_slashes=False,
    )
    api.state.services = services
    api.state.audit = audit
    api.state.limiter = limiter
    for router in ROUTERS:
        api.include_router(router)
    prefix = services.config.gateway.prefix
    install_problem_handlers(
        api,
        detailed=DETAILED,
        not_found=f"no such endpoint; the paths are listed in {prefix}/api/openapi.json",
        routes=[route for router in ROUTERS for route in router.routes],
    )
    api.add_exception_handler(AuthorizationError, _refused)
    api.add_middleware(StrictInput)
    api.add_middleware(AuditedReads, services=services, audit=audit)
    document_problems(api)
    return api


async def _refused(request: Request, exc: Exception) -> Response:
    """A change refused after the caller was admitted to the route (the escalation guard,
    platform-only operations): audited with its reasons, and the caller told why, since the
    refusal is about what the caller itself asked for and holds. A deny at the route says
    nothing (`bastion.gateway.problem_handlers`)."""
    assert isinstance(exc, AuthorizationError)
    told = await refused_after_admission(request, exc)
    return problem_response(request, exc, detail=str(exc) if told else None)
