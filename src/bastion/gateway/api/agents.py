"""``/v1/agents``: agents, their registration tokens, and ``POST /v1/agents/register`` where an
agent exchanges a single-use ``bat_…`` token (as ``Authorization: Bearer``) for its identity."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.config.units import parse_duration
from bastion.core.credentials import RegistrationToken
from bastion.core.model import PrincipalKind
from bastion.errors import AuthenticationError, RequestRejectedError
from bastion.gateway.api.authz_guard import ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.gateway.api.principals import (
    PrincipalCreate,
    PrincipalOut,
    ensure_may_take_name,
    principal_out,
    principal_router,
)
from bastion.gateway.network import client_ip_of
from bastion.services.access import Caller
from bastion.services.request_events import client_text
from bastion.wiring import Services

# Registered before `principals`, so that /tokens is not read as an agent named "tokens".
router = APIRouter(prefix="/v1/agents", tags=["agents"])


async def create_agent(
    body: PrincipalCreate,
    request: Request,
    caller: Caller = Depends(require("agents", "create")),
    services: Services = Depends(services_dep),
) -> PrincipalOut:
    """Create an agent directly, when ``security.agentAuth.token.registrationRequired`` is off."""
    if services.config.security.agent_auth.token.registration_required:
        raise RequestRejectedError(
            "agents register with a token (security.agentAuth.token.registrationRequired)"
        )
    await ensure_may_take_name(caller, services, kind=PrincipalKind.AGENT, name=body.name)
    created = await run_in_threadpool(
        services.identity.directory.create,
        tenant_name=caller.identity.tenant,
        kind=PrincipalKind.AGENT,
        name=body.name,
        display_name=body.displayName,
        actor=actor_of(caller, request),
    )
    return principal_out(created, [])


principals = principal_router(
    kind=PrincipalKind.AGENT, path="agents", resource="agents", tag="agents", create=create_agent
)


class TokenCreate(Body):
    capabilities: list[str] = Field(min_length=1)
    roles: list[str] = Field(default_factory=list)
    ttl: str | None = Field(default=None, description="Lifetime, e.g. 1h (default 1h).")


class TokenOut(BaseModel):
    id: str
    prefix: str
    capabilities: list[str]
    roles: list[str]
    created: datetime
    expires: datetime
    used: datetime | None
    agentId: str | None
    revoked: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The registration token (bat_…). Shown once, single use.")


def _token_out(token: RegistrationToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        prefix=token.prefix,
        capabilities=list(token.capabilities),
        roles=list(token.roles),
        created=token.created_at,
        expires=token.expires_at,
        used=token.used_at,
        agentId=token.agent_id,
        revoked=token.revoked_at,
    )


@router.post("/tokens", response_model=TokenCreated, status_code=201, name="create_agent_token")
async def create_token(
    body: TokenCreate,
    request: Request,
    caller: Caller = Depends(require("agents", "create")),
    services: Services = Depends(services_dep),
) -> TokenCreated:
    try:
        ttl = parse_duration(body.ttl) if body.ttl is not None else None
    except ValueError as exc:
        raise RequestRejectedError(f"ttl: {exc}") from None
    # The agent will hold the roles, or with none the default role: the caller must hold
    # everything they give.
    guard, tenant = holdings(services), caller.identity.tenant
    if body.roles:
        granted = await run_in_threadpool(guard.of_roles, tenant_name=tenant, roles=body.roles)
        what = f"a registration token for roles {', '.join(body.roles)}"
    else:
        granted = await run_in_threadpool(guard.of_default_role, tenant_name=tenant)
        default = services.authz.authorizer.settings.default_role
        what = f"a registration token without roles (its agent gets the default role {default})"
    ensure_within(caller, granted, what)
    token, secret = await run_in_threadpool(
        services.identity.agents.create_token,
        tenant_name=caller.identity.tenant,
        capabilities=body.capabilities,
        roles=body.roles,
        ttl=ttl,
        actor=actor_of(caller, request),
    )
    return TokenCreated(**_token_out(token).model_dump(), token=secret)


@router.get("/tokens", response_model=list[TokenOut], name="list_agent_tokens")
def list_tokens(
    caller: Caller = Depends(require("agents", "read")),
    services: Services = Depends(services_dep),
) -> list[TokenOut]:
    tokens = services.identity.agents.list_tokens(tenant_name=caller.identity.tenant)
    return [_token_out(t) for t in tokens]


@router.delete("/tokens/{token_id}", response_model=TokenOut, name="revoke_agent_token")
async def revoke_token(
    token_id: str,
    request: Request,
    caller: Caller = Depends(require("agents", "delete")),
    services: Services = Depends(services_dep),
) -> TokenOut:
    token = await run_in_threadpool(
        services.identity.agents.revoke_token,
        tenant_name=caller.identity.tenant,
        token_id=token_id,
        actor=actor_of(caller, request),
    )
    return _token_out(token)


class Registration(Body):
    name: str | None = Field(default=None, max_length=254)
    displayName: str = Field(default="", max_length=200)


class Registered(BaseModel):
    id: str
    name: str
    tenant: str
    clientId: str
    scopes: list[str]
    roles: list[str]
    apiKey: str = Field(description="The agent's own credential (bk_live_…). Shown once.")
    tokenEndpoint: str


@router.post("/register", response_model=Registered, status_code=201, name="register_agent")
async def register(
    request: Request,
    body: Registration | None = None,
    services: Services = Depends(services_dep),
) -> Registered:
    """Exchange a registration token (``Authorization: Bearer bat_…``) for an agent identity."""
    scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise AuthenticationError("missing_registration_token")
    body = body or Registration()
    policies = services.authz.policies
    client = {
        "ip": client_ip_of(request.scope),
        "userAgent": client_text(request.headers.get("user-agent")),
        "via": "api",
    }
    done = await run_in_threadpool(
        services.identity.agents.register,
        presented.strip(),
        name=body.name,
        display_name=body.displayName,
        client=client,
        audit_tenant=services.config.security.default_tenant,
        authz=services.authz.authorizer.settings,
        policies_naming=partial(policies.naming, "Agent") if policies else lambda name: (),
    )
    return Registered(
        id=done.agent.id,
        name=done.agent.name,
        tenant=done.tenant.name,
        clientId=done.agent.id,
        scopes=list(done.key.key.scopes),
        roles=list(done.roles),
        apiKey=done.key.secret,
        tokenEndpoint=f"{services.config.gateway.prefix}/oauth/token",
    )
