"""``/v1/serviceaccounts``: non-human principals; ``POST …/{name}/credentials`` issues an API
key owned by the account (its OAuth client secret), whose scopes must lie within what the caller
holds (roles ∩ scopes): the account's own roles may be wider than the caller's. Scopes do not
narrow what is given by name, though: the caller must also be admitted by every resource rule
that admits the account by its roles, and may give what Cedar policies give its names
(`bastion.services.holdings.Holdings.by_name_in`).

Creating an account under a name bastion.yaml binds is guarded too (principals.py,
`ensure_may_take_name`): scopes bound a credential in this tenant, but not what a platform
binding to the name does in other tenants, nor the roles that resource rules and Cedar see."""

from __future__ import annotations

from fastapi import Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.config.units import UtcMoment
from bastion.core.model import PrincipalKind
from bastion.core.rbac import parse_scopes
from bastion.errors import RequestRejectedError
from bastion.gateway.api.authz_guard import ensure_scopes_within, ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.gateway.api.principals import principal_router
from bastion.services.access import Caller
from bastion.services.directory import get_principal
from bastion.wiring import Services

router = principal_router(
    kind=PrincipalKind.SERVICE_ACCOUNT,
    path="serviceaccounts",
    resource="serviceaccounts",
    tag="service accounts",
)


class CredentialCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    expires: UtcMoment | None = None


class CredentialCreated(BaseModel):
    id: str
    clientId: str
    prefix: str
    scopes: list[str]
    secret: str = Field(description="The client secret (an API key). Shown once.")


@router.post(
    "/{name}/credentials",
    response_model=CredentialCreated,
    status_code=201,
    name="create_serviceaccount_credential",
)
async def create_credential(
    name: str,
    body: CredentialCreate,
    request: Request,
    caller: Caller = Depends(require("apikeys", "create")),
    services: Services = Depends(services_dep),
) -> CredentialCreated:
    try:
        scopes = parse_scopes(body.scopes)
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None
    ensure_scopes_within(caller, scopes, f"a credential of service account {name}")

    guard = holdings(services)

    def work() -> CredentialCreated:
        with services.storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(caller.identity.tenant)
            account = get_principal(tx, tenant, PrincipalKind.SERVICE_ACCOUNT, name)
            what = f"a credential of service account {account.name}"
            ensure_within(caller, guard.by_name_in(tx, tenant, account), what)
            issued = services.api_keys.issue(
                tx,
                tenant=tenant,
                owner=account,
                name=body.name,
                scopes=scopes,
                expires_at=body.expires,
                actor=actor_of(caller, request),
            )
        return CredentialCreated(
            id=issued.key.id,
            clientId=account.id,
            prefix=issued.key.prefix,
            scopes=list(issued.key.scopes),
            secret=issued.secret,
        )

    return await run_in_threadpool(work)
