"""The shape shared by ``/v1/users``, ``/v1/serviceaccounts`` and ``/v1/agents``: list, create,
show, update (display name, disabled) and delete principals of one kind in the caller's tenant.

Bindings in bastion.yaml grant by name, to whoever holds it, so creating a principal under a name
they bind needs the caller to hold what they grant (`ensure_may_take_name`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.core.model import Principal, PrincipalKind
from bastion.core.names import canonical_name
from bastion.errors import ConflictError
from bastion.gateway.api.authz_guard import ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body, Flag
from bastion.gateway.api.paging import MAX_PAGE, PAGED_RESPONSES, PageAfter, PageLimit, one_page
from bastion.services.access import Caller
from bastion.services.lookups import NOUNS
from bastion.wiring import Services


class PrincipalOut(BaseModel):
    id: str
    name: str
    kind: str
    displayName: str
    disabled: bool
    created: datetime
    groups: list[str]


class PrincipalCreate(Body):
    name: str = Field(min_length=1, max_length=254)
    displayName: str = Field(default="", max_length=200)


class PrincipalUpdate(Body):
    displayName: str | None = Field(default=None, max_length=200)
    disabled: Flag | None = None


def principal_out(principal: Principal, groups: list[str]) -> PrincipalOut:
    """A principal with the names of its groups (none once it is deleted)."""
    return PrincipalOut(
        id=principal.id,
        name=principal.name,
        kind=principal.kind.value,
        displayName=principal.display_name,
        disabled=principal.disabled,
        created=principal.created_at,
        groups=groups,
    )


async def ensure_may_take_name(
    caller: Caller, services: Services, *, kind: PrincipalKind, name: str
) -> None:
    """`AuthorizationError` unless the caller holds everything that bastion.yaml's bindings
    (``security.rbac.bindings``, ``platformBindings``) give a ``kind`` named ``name``."""
    granted = await run_in_threadpool(
        holdings(services).of_configured_name,
        tenant_name=caller.identity.tenant,
        kind=kind,
        name=name,
    )
    what = f"{NOUNS[kind]} {canonical_name(name)} (named by a binding in bastion.yaml)"
    ensure_within(caller, granted, what)


def ensure_not_self(caller: Caller, kind: PrincipalKind, name: str, verb: str) -> None:
    """`ConflictError` when ``name`` is the caller itself: disabling or deleting the account
    a request comes from ends the caller's access on the spot, and when it is the last
    administrator, everyone's. Another administrator can, or the CLI on the server."""
    me = caller.identity.principal
    if me.kind is kind and canonical_name(name) == me.name:
        noun = NOUNS[kind]
        raise ConflictError(
            f"{noun} {me.name} is the caller; it cannot {verb} itself (another administrator"
            f" can, or `bastion {noun.replace(' ', '-')} {verb}` on the server)"
        )


def principal_router(
    *,
    kind: PrincipalKind,
    path: str,
    resource: str,
    tag: str,
    create: Callable[..., Any] | None = None,
) -> APIRouter:
    """A router for one principal kind; ``create`` replaces the default create endpoint."""
    router = APIRouter(prefix=f"/v1/{path}", tags=[tag])

    @router.get(
        "", response_model=list[PrincipalOut], name=f"list_{path}", responses=PAGED_RESPONSES
    )
    def list_principals(
        response: Response,
        limit: PageLimit = MAX_PAGE,
        after: PageAfter = None,
        caller: Caller = Depends(require(resource, "read")),
        services: Services = Depends(services_dep),
    ) -> list[PrincipalOut]:
        found = services.identity.directory.list(
            tenant_name=caller.identity.tenant, kind=kind, after=after, limit=limit + 1
        )
        page = one_page(found, limit, response, lambda item: item[0].name)
        return [principal_out(p, groups) for p, groups in page]

    if create is None:

        @router.post("", response_model=PrincipalOut, status_code=201, name=f"create_{path}")
        async def create_principal(
            body: PrincipalCreate,
            request: Request,
            caller: Caller = Depends(require(resource, "create")),
            services: Services = Depends(services_dep),
        ) -> PrincipalOut:
            await ensure_may_take_name(caller, services, kind=kind, name=body.name)
            created = await run_in_threadpool(
                services.identity.directory.create,
                tenant_name=caller.identity.tenant,
                kind=kind,
                name=body.name,
                display_name=body.displayName,
                actor=actor_of(caller, request),
            )
            return principal_out(created, [])

    else:
        router.add_api_route(
            "",
            create,
            methods=["POST"],
            response_model=PrincipalOut,
            status_code=201,
            name=f"create_{path}",
        )

    @router.get("/{name}", response_model=PrincipalOut, name=f"show_{path}")
    def show_principal(
        name: str,
        caller: Caller = Depends(require(resource, "read")),
        services: Services = Depends(services_dep),
    ) -> PrincipalOut:
        principal, groups = services.identity.directory.show(
            tenant_name=caller.identity.tenant, kind=kind, name=name
        )
        return principal_out(principal, groups)

    @router.patch("/{name}", response_model=PrincipalOut, name=f"update_{path}")
    async def update_principal(
        name: str,
        body: PrincipalUpdate,
        request: Request,
        caller: Caller = Depends(require(resource, "update")),
        services: Services = Depends(services_dep),
    ) -> PrincipalOut:
        if body.disabled:
            ensure_not_self(caller, kind, name, "disable")
        changed, groups = await run_in_threadpool(
            services.identity.directory.update,
            tenant_name=caller.identity.tenant,
            kind=kind,
            name=name,
            display_name=body.displayName,
            disabled=body.disabled,
            actor=actor_of(caller, request),
        )
        return principal_out(changed, groups)

    @router.delete("/{name}", response_model=PrincipalOut, name=f"delete_{path}")
    async def delete_principal(
        name: str,
        request: Request,
        caller: Caller = Depends(require(resource, "delete")),
        services: Services = Depends(services_dep),
    ) -> PrincipalOut:
        ensure_not_self(caller, kind, name, "delete")
        deleted = await run_in_threadpool(
            services.identity.directory.delete,
            tenant_name=caller.identity.tenant,
            kind=kind,
            name=name,
            actor=actor_of(caller, request),
        )
        return principal_out(deleted, [])

    return router
