"""``/v1/roles``: the tenant's roles (built-in, configured, custom); define, change, delete.

A role's holders are ``in Role::"<name>"`` for Cedar, and in every role it inherits: defining,
changing or deleting a role that a policy names, or that inherits one, is held to what the
policy decides (`bastion.services.holdings.PolicyReach`). Resource rules see the same roles, so
defining or changing one hands out the admission of every rule that admits it or a role it
inherits (`RuleAdmission`). Deleting one takes its bindings, which can leave their subjects
with the default role only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.core.rbac import Permission
from bastion.errors import NotFoundError, RequestRejectedError
from bastion.gateway.api.authz_guard import ensure_may_remove, ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.services.access import Caller
from bastion.services.authz_roles import RoleView, role_name
from bastion.wiring import Services

router = APIRouter(prefix="/v1/roles", tags=["authorization"])


class RoleOut(BaseModel):
    name: str
    source: str = Field(description="builtin, config or custom")
    permissions: list[str]
    inherits: list[str]
    effective: list[str] = Field(description="Permissions with everything inherited")


class RoleIn(Body):
    permissions: list[str] = Field(default_factory=list)
    inherits: list[str] = Field(default_factory=list)


class RoleCreate(RoleIn):
    name: str = Field(min_length=1, max_length=200)


def _out(view: RoleView) -> RoleOut:
    return RoleOut(
        name=view.name,
        source=view.source,
        permissions=list(view.permissions),
        inherits=list(view.inherits),
        effective=list(view.effective),
    )


def _view(services: Services, tenant: str, name: str) -> RoleView:
    for view in services.authz.admin.list_roles(tenant):
        if view.name == name:
            return view
    raise NotFoundError(f"no role {name!r} in tenant {tenant!r}")


@router.get("", response_model=list[RoleOut])
def list_roles(
    caller: Caller = Depends(require("roles", "read")), services: Services = Depends(services_dep)
) -> list[RoleOut]:
    return [_out(v) for v in services.authz.admin.list_roles(caller.identity.tenant)]


@router.get("/{name}", response_model=RoleOut)
def get_role(
    name: str,
    caller: Caller = Depends(require("roles", "read")),
    services: Services = Depends(services_dep),
) -> RoleOut:
    return _out(_view(services, caller.identity.tenant, name))


def _parent(services: Services, tenant: str, index: int, parent: str) -> RoleView:
    """A role to inherit; an unknown one is a fault of the request (400), not a 404."""
    try:
        return _view(services, tenant, parent)
    except NotFoundError:
        raise RequestRejectedError(f"inherits/{index}: unknown role {parent}") from None


async def _save(
    services: Services, caller: Caller, request: Request, name: str, body: RoleIn, *, create: bool
) -> RoleOut:
    tenant = caller.identity.tenant
    if create:
        name = role_name(name)  # " ops " is saved as ops: everything below speaks of that
    inherited = [
        _parent(services, tenant, index, parent)
        for index, parent in enumerate(body.inherits)
        if parent != name
    ]
    try:
        own = [Permission.parse(p) for p in body.permissions]
        wanted = own + [Permission.parse(p) for v in inherited for p in v.effective]
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None
    guard, held = holdings(services), [name, *body.inherits]
    reach = await run_in_threadpool(guard.of_names, tenant_name=tenant, roles=held)
    admitted = await run_in_threadpool(guard.admitting, tenant_name=tenant, roles=held)
    ensure_within(caller, [*wanted, *reach, *admitted], f"role {name}")
    saved = await run_in_threadpool(
        services.authz.admin.save_role,
        tenant_name=tenant,
        name=name,
        permissions=body.permissions,
        inherits=body.inherits,
        actor=actor_of(caller, request),
        create=create,
    )
    return _out(_view(services, tenant, saved.name))


@router.post("", response_model=RoleOut, status_code=201)
async def create_role(
    body: RoleCreate,
    request: Request,
    caller: Caller = Depends(require("roles", "create")),
    services: Services = Depends(services_dep),
) -> RoleOut:
    return await _save(services, caller, request, body.name, body, create=True)


@router.put("/{name}", response_model=RoleOut)
async def update_role(
    name: str,
    body: RoleIn,
    request: Request,
    caller: Caller = Depends(require("roles", "update")),
    services: Services = Depends(services_dep),
) -> RoleOut:
    tenant = caller.identity.tenant
    if _view(services, tenant, name).source != "custom":
        raise NotFoundError(f"no custom role {name!r} in tenant {tenant!r}")
    return await _save(services, caller, request, name, body, create=False)


@router.delete("/{name}", status_code=204)
async def delete_role(
    name: str,
    request: Request,
    caller: Caller = Depends(require("roles", "delete")),
    services: Services = Depends(services_dep),
) -> Response:
    reach = await run_in_threadpool(
        holdings(services).of_names, tenant_name=caller.identity.tenant, roles=[name]
    )
    ensure_within(caller, reach, f"deleting role {name}")
    await ensure_may_remove(caller, services, f"deleting role {name}")
    await run_in_threadpool(
        services.authz.admin.delete_role,
        tenant_name=caller.identity.tenant,
        name=name,
        actor=actor_of(caller, request),
    )
    return Response(status_code=204)
