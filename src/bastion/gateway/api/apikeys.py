"""``/v1/apikeys``: list, create (secret shown once) and revoke the caller's tenant's keys.

A key created through the API belongs to the caller, and its scopes must lie within what the
caller holds (roles ∩ scopes, and its actor's when it acts for someone), so no credential can
mint a more powerful one. Rotating any key but the API key presented (a token minted with a key
is not that key) hands out a new secret with that key's scopes, so it needs the same: the
caller must hold everything those scopes stand for. The secret acts as the key's owner, which
resource rules and Cedar policies see by name, so rotating another principal's key needs,
as setting its password does, everything the owner holds as well.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.backends.protocols import UnitOfWork
from bastion.config.units import UtcMoment, parse_duration
from bastion.core.model import ApiKey, Principal, Tenant
from bastion.errors import RequestRejectedError
from bastion.gateway.api.authz_guard import ensure_scopes_within, ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.gateway.api.paging import MAX_PAGE, PAGED_RESPONSES, PageAfter, PageLimit, one_page
from bastion.services.access import Caller
from bastion.services.apikeys import API_KEY_METHOD
from bastion.wiring import Services

router = APIRouter(prefix="/v1/apikeys", tags=["apikeys"])


class ApiKeyOut(BaseModel):
    id: str
    prefix: str
    name: str
    owner: str
    scopes: list[str]
    created: datetime
    lastUsed: datetime | None
    expires: datetime | None
    revoked: datetime | None


class ApiKeyCreate(Body):
    name: str = Field(min_length=1, max_length=254)
    scopes: list[str] = Field(min_length=1)
    expires: UtcMoment | None = None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The key itself. Shown once; only a keyed hash is stored.")


def _out(key: ApiKey, owner: str) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        prefix=key.prefix,
        name=key.name,
        owner=owner,
        scopes=list(key.scopes),
        created=key.created_at,
        lastUsed=key.last_used_at,
        expires=key.expires_at,
        revoked=key.revoked_at,
    )


@router.get("", response_model=list[ApiKeyOut], responses=PAGED_RESPONSES)
def list_keys(
    response: Response,
    limit: PageLimit = MAX_PAGE,
    after: PageAfter = None,
    caller: Caller = Depends(require("apikeys", "read")),
    services: Services = Depends(services_dep),
) -> list[ApiKeyOut]:
    found = services.api_keys.list(tenant_name=caller.identity.tenant, after=after, limit=limit + 1)
    page = one_page(found, limit, response, lambda item: item.key.name)
    return [_out(item.key, item.owner) for item in page]


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_key(
    body: ApiKeyCreate,
    request: Request,
    caller: Caller = Depends(require("apikeys", "create")),
    services: Services = Depends(services_dep),
) -> ApiKeyCreated:
    ensure_scopes_within(caller, body.scopes, f"API key {body.name}")
    issued = await run_in_threadpool(
        services.api_keys.create,
        tenant_name=caller.identity.tenant,
        owner_name=caller.identity.principal.name,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires,
        actor=actor_of(caller, request),
    )
    out = _out(issued.key, issued.owner)
    return ApiKeyCreated(**out.model_dump(), secret=issued.secret)


class RevokedKey(BaseModel):
    id: str
    name: str
    revoked: datetime | None


@router.delete("/{key_id}", response_model=RevokedKey)
async def revoke_key(
    key_id: str,
    request: Request,
    caller: Caller = Depends(require("apikeys", "delete")),
    services: Services = Depends(services_dep),
) -> RevokedKey:
    revoked = await run_in_threadpool(
        services.api_keys.revoke,
        tenant_name=caller.identity.tenant,
        reference=key_id,
        actor=actor_of(caller, request),
    )
    return RevokedKey(id=revoked.id, name=revoked.name, revoked=revoked.revoked_at)


class Rotation(Body):
    grace: str = Field(default="24h", description="How long the old key keeps working, e.g. 1h.")


@router.post("/{key_id}/rotate", response_model=ApiKeyCreated, status_code=201)
async def rotate_key(
    key_id: str,
    request: Request,
    body: Rotation | None = None,
    caller: Caller = Depends(require("apikeys", "update")),
    services: Services = Depends(services_dep),
) -> ApiKeyCreated:
    """A new key with the same name, owner and scopes; the old one works for ``grace`` more."""
    try:
        grace = parse_duration((body or Rotation()).grace)
    except ValueError as exc:
        raise RequestRejectedError(f"grace: {exc}") from None

    guard = holdings(services)
    presented = caller.method == API_KEY_METHOD and caller.actor is None

    def check(tx: UnitOfWork, tenant: Tenant, key: ApiKey, owner: Principal) -> None:
        # The key presenting itself gains nothing new; any other key's secret is handed out.
        if presented and key.id == caller.identity.credential_id:
            return
        what = f"rotating API key {key.name}"
        ensure_scopes_within(caller, key.scopes, what)
        if owner.id != caller.identity.principal.id or caller.actor is not None:
            ensure_within(caller, guard.of_principal_in(tx, tenant, owner), what)

    issued = await run_in_threadpool(
        services.api_keys.rotate,
        tenant_name=caller.identity.tenant,
        reference=key_id,
        grace=grace,
        actor=actor_of(caller, request),
        check=check,
    )
    out = _out(issued.key, issued.owner)
    return ApiKeyCreated(**out.model_dump(), secret=issued.secret)
