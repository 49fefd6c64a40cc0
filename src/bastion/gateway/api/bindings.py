"""``/v1/bindings``: the tenant's stored role bindings; bind (optionally until an expiry).

Binding gives the role's permissions, and the admission of every resource rule that admits its
holders, so the caller must hold them (`bastion.services.holdings.RuleAdmission`). Where a
Cedar policy names the role (or one it inherits), binding or unbinding also gives or takes
whatever that policy decides, so both are then held to `*:*` (`PolicyReach`). Unbinding can
leave the subject with the default role only, so it needs what that role gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.config.units import UtcMoment
from bastion.core.model import RoleBinding, SubjectType
from bastion.errors import RequestRejectedError
from bastion.gateway.api.authz_guard import ensure_may_remove, ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.gateway.api.paging import MAX_PAGE, PAGED_RESPONSES, PageLimit, one_page
from bastion.services.access import Caller
from bastion.wiring import Services

router = APIRouter(prefix="/v1/bindings", tags=["authorization"])


class SubjectIn(Body):
    type: Literal["user", "group", "serviceAccount", "agent"]
    name: str = Field(min_length=1, max_length=320)


class BindingIn(Body):
    subject: SubjectIn
    role: str = Field(min_length=1, max_length=200)
    expires: UtcMoment | None = None


class BindingOut(BaseModel):
    id: str
    subject: SubjectIn
    role: str
    created: datetime
    expires: datetime | None


def _out(binding: RoleBinding) -> BindingOut:
    return BindingOut(
        id=binding.id,
        subject=SubjectIn(type=str(binding.subject_type), name=binding.subject_name),
        role=binding.role,
        created=binding.created_at,
        expires=binding.expires_at,
    )


# A binding's place in the list: its subject's type and name and its role, none of which
# holds a slash (the rules of every name), so the cursor reads back unambiguously.
BindingAfter = Annotated[
    str | None,
    Query(
        min_length=5,
        description="only bindings after this one, `TYPE/NAME/ROLE`: the last of the previous "
        "page (its subject's type and name, and its role)",
    ),
]


def _cursor(binding: RoleBinding) -> str:
    return f"{binding.subject_type}/{binding.subject_name}/{binding.role}"


def _after(cursor: str | None) -> tuple[str, str, str] | None:
    if cursor is None:
        return None
    parts = cursor.split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise RequestRejectedError("query parameter after must be TYPE/NAME/ROLE")
    return parts[0], parts[1], parts[2]


@router.get("", response_model=list[BindingOut], responses=PAGED_RESPONSES)
def list_bindings(
    response: Response,
    limit: PageLimit = MAX_PAGE,
    after: BindingAfter = None,
    caller: Caller = Depends(require("bindings", "read")),
    services: Services = Depends(services_dep),
) -> list[BindingOut]:
    """The tenant's stored bindings by subject type, subject name and role, in pages."""
    found = services.authz.admin.list_bindings(
        caller.identity.tenant, after=_after(after), limit=limit + 1
    )
    return [_out(b) for b in one_page(found, limit, response, _cursor)]


@router.get("/{binding_id}", response_model=BindingOut)
def get_binding(
    binding_id: str,
    caller: Caller = Depends(require("bindings", "read")),
    services: Services = Depends(services_dep),
) -> BindingOut:
    return _out(services.authz.admin.get_binding(caller.identity.tenant, binding_id))


@router.post("", response_model=BindingOut, status_code=201)
async def create_binding(
    body: BindingIn,
    request: Request,
    caller: Caller = Depends(require("bindings", "create")),
    services: Services = Depends(services_dep),
) -> BindingOut:
    tenant = caller.identity.tenant
    granted = await run_in_threadpool(
        holdings(services).of_roles, tenant_name=tenant, roles=[body.role]
    )
    ensure_within(caller, granted, f"binding to role {body.role}")
    binding = await run_in_threadpool(
        services.authz.admin.bind,
        tenant_name=tenant,
        subject_type=SubjectType(body.subject.type),
        subject_name=body.subject.name,
        role=body.role,
        expires_at=body.expires,
        actor=actor_of(caller, request),
    )
    return _out(binding)


@router.delete("/{binding_id}", status_code=204)
async def delete_binding(
    binding_id: str,
    request: Request,
    caller: Caller = Depends(require("bindings", "delete")),
    services: Services = Depends(services_dep),
) -> Response:
    tenant = caller.identity.tenant
    binding = await run_in_threadpool(services.authz.admin.get_binding, tenant, binding_id)
    what = f"removing a binding to role {binding.role}"
    reach = await run_in_threadpool(
        holdings(services).of_names, tenant_name=tenant, roles=[binding.role]
    )
    ensure_within(caller, reach, what)
    await ensure_may_remove(caller, services, what)
    await run_in_threadpool(
        services.authz.admin.unbind,
        tenant_name=caller.identity.tenant,
        binding_id=binding_id,
        actor=actor_of(caller, request),
    )
    return Response(status_code=204)
