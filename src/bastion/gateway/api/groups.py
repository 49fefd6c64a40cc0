"""``/v1/groups``: groups of the caller's tenant and their members.

Joining a group bound to roles gives its roles, as a binding does, so adding a member needs
the caller to hold everything the group brings, the admission of the resource rules that admit
those roles included (gateway/api/authz_guard.py). A group that a Cedar policy names gives or
takes whatever that policy decides, with no tenant in the name: creating it, deleting it, or
adding or removing a member is held to that too. Removing a member or deleting a group can
leave someone with no binding in force, holding the default role only: that needs what the
default role gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.gateway.api.authz_guard import ensure_may_remove, ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.gateway.api.paging import MAX_PAGE, PAGED_RESPONSES, PageAfter, PageLimit, one_page
from bastion.services.access import Caller
from bastion.services.groups import GroupView
from bastion.wiring import Services

router = APIRouter(prefix="/v1/groups", tags=["groups"])


class Member(BaseModel):
    name: str
    kind: str


class GroupOut(BaseModel):
    id: str
    name: str
    displayName: str
    created: datetime
    members: list[Member]


class GroupCreate(Body):
    name: str = Field(min_length=1, max_length=254)
    displayName: str = Field(default="", max_length=200)


class GroupUpdate(Body):
    displayName: str = Field(max_length=200)


def _out(view: GroupView) -> GroupOut:
    group = view.group
    return GroupOut(
        id=group.id,
        name=group.name,
        displayName=group.display_name,
        created=group.created_at,
        members=[Member(name=p.name, kind=p.kind.value) for p in view.members],
    )


@router.get("", response_model=list[GroupOut], responses=PAGED_RESPONSES)
def list_groups(
    response: Response,
    limit: PageLimit = MAX_PAGE,
    after: PageAfter = None,
    caller: Caller = Depends(require("groups", "read")),
    services: Services = Depends(services_dep),
) -> list[GroupOut]:
    groups = services.identity.groups
    found = groups.list(tenant_name=caller.identity.tenant, after=after, limit=limit + 1)
    return [_out(v) for v in one_page(found, limit, response, lambda view: view.group.name)]


@router.post("", response_model=GroupOut, status_code=201)
async def create_group(
    body: GroupCreate,
    request: Request,
    caller: Caller = Depends(require("groups", "create")),
    services: Services = Depends(services_dep),
) -> GroupOut:
    _ensure_policies_allow(services, caller, body.name, f"creating group {body.name}")
    group = await run_in_threadpool(
        services.identity.groups.create,
        tenant_name=caller.identity.tenant,
        name=body.name,
        display_name=body.displayName,
        actor=actor_of(caller, request),
    )
    return _out(GroupView(group, ()))


@router.get("/{name}", response_model=GroupOut)
def show_group(
    name: str,
    caller: Caller = Depends(require("groups", "read")),
    services: Services = Depends(services_dep),
) -> GroupOut:
    return _out(services.identity.groups.show(tenant_name=caller.identity.tenant, name=name))


@router.patch("/{name}", response_model=GroupOut)
async def update_group(
    name: str,
    body: GroupUpdate,
    request: Request,
    caller: Caller = Depends(require("groups", "update")),
    services: Services = Depends(services_dep),
) -> GroupOut:
    groups, actor = services.identity.groups, actor_of(caller, request)
    return await _changed(
        services,
        caller,
        name,
        lambda tenant: groups.update(
            tenant_name=tenant, name=name, display_name=body.displayName, actor=actor
        ),
    )


@router.delete("/{name}", status_code=204)
async def delete_group(
    name: str,
    request: Request,
    caller: Caller = Depends(require("groups", "delete")),
    services: Services = Depends(services_dep),
) -> None:
    _ensure_policies_allow(services, caller, name, f"deleting group {name}")
    await ensure_may_remove(caller, services, f"deleting group {name}")
    await run_in_threadpool(
        services.identity.groups.delete,
        tenant_name=caller.identity.tenant,
        name=name,
        actor=actor_of(caller, request),
    )


@router.put("/{name}/members/{member}", response_model=GroupOut)
async def add_member(
    name: str,
    member: str,
    request: Request,
    caller: Caller = Depends(require("groups", "update")),
    services: Services = Depends(services_dep),
) -> GroupOut:
    return await _membership(services, caller, request, name, member, add=True)


@router.delete("/{name}/members/{member}", response_model=GroupOut)
async def remove_member(
    name: str,
    member: str,
    request: Request,
    caller: Caller = Depends(require("groups", "update")),
    services: Services = Depends(services_dep),
) -> GroupOut:
    return await _membership(services, caller, request, name, member, add=False)


async def _membership(
    services: Services, caller: Caller, request: Request, name: str, member: str, *, add: bool
) -> GroupOut:
    groups, actor = services.identity.groups, actor_of(caller, request)
    if add:
        brings = await run_in_threadpool(
            holdings(services).of_group, tenant_name=caller.identity.tenant, name=name
        )
        ensure_within(caller, brings, f"membership of group {name}")
    else:
        _ensure_policies_allow(services, caller, name, f"leaving group {name}")
        await ensure_may_remove(caller, services, f"removing a member from group {name}")
    change = groups.add_member if add else groups.remove_member
    return await _changed(
        services,
        caller,
        name,
        lambda tenant: change(tenant_name=tenant, name=name, member=member, actor=actor),
    )


def _ensure_policies_allow(services: Services, caller: Caller, name: str, what: str) -> None:
    """`AuthorizationError` when a Cedar policy names the group and the caller may not give
    or take what it decides (`bastion.services.holdings.PolicyReach`); no storage read."""
    reach = holdings(services).of_names(tenant_name=caller.identity.tenant, groups=[name])
    ensure_within(caller, reach, what)


async def _changed(
    services: Services, caller: Caller, name: str, change: Callable[[str], object]
) -> GroupOut:
    """Apply ``change`` (given the caller's tenant) and answer with the group as it is now,
    both off the event loop."""
    groups, tenant = services.identity.groups, caller.identity.tenant

    def work() -> GroupView:
        change(tenant)
        return groups.show(tenant_name=tenant, name=name)

    return _out(await run_in_threadpool(work))
