"""``/v1/tenants``: a caller sees and updates its own tenant; creating, listing every tenant
and deleting one is for callers of the platform tenant (``security.defaultTenant``) only —
cross-tenant access exists only there (DESIGN.md section 4)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.core.names import canonical_name
from bastion.errors import AuthorizationError, ConflictError, NotFoundError
from bastion.gateway.api.deps import actor_of, in_platform_tenant, require, services_dep
from bastion.gateway.api.inputs import Body, Flag
from bastion.services.access import Caller
from bastion.services.directory import TenantView
from bastion.wiring import Services

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


class TenantOut(BaseModel):
    id: str
    name: str
    displayName: str
    disabled: bool
    created: datetime
    principals: int


class TenantCreate(Body):
    name: str = Field(min_length=1, max_length=254)
    displayName: str = Field(default="", max_length=200)


class TenantUpdate(Body):
    displayName: str | None = Field(default=None, max_length=200)
    disabled: Flag | None = None


def _out(view: TenantView) -> TenantOut:
    return TenantOut(
        id=view.tenant.id,
        name=view.tenant.name,
        displayName=view.state.display_name,
        disabled=view.state.disabled,
        created=view.tenant.created_at,
        principals=view.principals,
    )


def _visible(caller: Caller, services: Services, name: str) -> None:
    if canonical_name(name) != caller.identity.tenant and not in_platform_tenant(caller, services):
        raise NotFoundError(f"no tenant {canonical_name(name)!r}")


@router.get("", response_model=list[TenantOut])
def list_tenants(
    caller: Caller = Depends(require("tenants", "read")),
    services: Services = Depends(services_dep),
) -> list[TenantOut]:
    views = services.identity.directory.list_tenants()
    if not in_platform_tenant(caller, services):
        views = [v for v in views if v.tenant.name == caller.identity.tenant]
    return [_out(v) for v in views]


@router.post("", response_model=TenantOut, status_code=201)
async def create_tenant(
    body: TenantCreate,
    request: Request,
    caller: Caller = Depends(require("tenants", "create")),
    services: Services = Depends(services_dep),
) -> TenantOut:
    if not in_platform_tenant(caller, services):
        raise AuthorizationError(("only the platform tenant's principals create tenants",))
    directory = services.identity.directory
    tenant = await run_in_threadpool(
        directory.create_tenant,
        name=body.name,
        display_name=body.displayName,
        actor=actor_of(caller, request),
    )
    return _out(directory.show_tenant(tenant.name))


@router.get("/{name}", response_model=TenantOut)
def show_tenant(
    name: str,
    caller: Caller = Depends(require("tenants", "read")),
    services: Services = Depends(services_dep),
) -> TenantOut:
    _visible(caller, services, name)
    return _out(services.identity.directory.show_tenant(name))


@router.patch("/{name}", response_model=TenantOut)
async def update_tenant(
    name: str,
    body: TenantUpdate,
    request: Request,
    caller: Caller = Depends(require("tenants", "update")),
    services: Services = Depends(services_dep),
) -> TenantOut:
    _visible(caller, services, name)
    if body.disabled and canonical_name(name) == caller.identity.tenant:
        # It would end the caller's own access, and with the platform tenant every operator's;
        # `bastion tenant disable` on the server is the deliberate way.
        raise ConflictError(f"tenant {name!r} is the caller's own; it cannot disable itself")
    view = await run_in_threadpool(
        services.identity.directory.update_tenant,
        name,
        display_name=body.displayName,
        disabled=body.disabled,
        actor=actor_of(caller, request),
    )
    return _out(view)


@router.delete("/{name}", status_code=204)
async def delete_tenant(
    name: str,
    request: Request,
    caller: Caller = Depends(require("tenants", "delete")),
    services: Services = Depends(services_dep),
) -> None:
    if not in_platform_tenant(caller, services):
        raise AuthorizationError(("only the platform tenant's principals delete tenants",))
    await run_in_threadpool(
        services.identity.directory.delete_tenant, name, actor=actor_of(caller, request)
    )
