"""`build_admin_api`: the FastAPI application for ``<prefix>/api``, with problem+json errors."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from bastion import __version__
from bastion.core.ids import new_id
from bastion.errors import BastionError, RequestRejectedError
from bastion.gateway import problems
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


def _problem(error: BastionError, request: Request, detail: str | None = None) -> Response:
    status, _ = problems.status_for(error)
    request_id = getattr(request.state, "request_id", None) or new_id("req")
    body = problems.problem_body(error, request_id=request_id, detail=detail)
    return Response(
        body,
        status_code=status,
        headers=dict((k.decode(), v.decode()) for k, v in problems.response_headers(status)),
    )


def build_admin_api(services: Services, *, audit: AuditSink) -> FastAPI:
    api = FastAPI(
        title="Bastion admin API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.services = services
    api.state.audit = audit
    for router in ROUTERS:
        api.include_router(router)

    @api.exception_handler(BastionError)
    async def bastion_error(request: Request, exc: BastionError) -> Response:
        detail = str(exc) if isinstance(exc, RequestRejectedError) else None
        return _problem(exc, request, detail)

    @api.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in exc.errors())
        return _problem(
            RequestRejectedError("invalid request"), request, f"invalid or missing: {fields}"
        )

    return api
