"""``/v1/users``: people, with an optional password (policy-checked, Argon2id) or an imported
bcrypt / Argon2id hash; ``PUT /v1/users/{name}/password`` sets a new one.

Whoever sets a password can log in as that user, so setting one (at creation too: bastion.yaml
may bind roles to a name before its user exists) needs the caller to hold everything the user
holds (gateway/api/authz_guard.py)."""

from __future__ import annotations

from fastapi import Depends, Request
from pydantic import Field, SecretStr

from bastion.core.model import PrincipalKind
from bastion.core.names import canonical_name
from bastion.errors import RequestRejectedError
from bastion.gateway.api.authz_guard import ensure_within, holdings
from bastion.gateway.api.deps import actor_of, require, services_dep
from bastion.gateway.api.inputs import Body
from bastion.gateway.api.principals import (
    PrincipalOut,
    ensure_may_take_name,
    principal_out,
    principal_router,
)
from bastion.services.access import Caller
from bastion.services.directory import get_principal, record
from bastion.services.sessions import EndedSessions
from bastion.wiring import Services


class UserCreate(Body):
    name: str = Field(min_length=1, max_length=254, description="The login, usually an email.")
    displayName: str = Field(default="", max_length=200)
    password: SecretStr | None = Field(default=None, description="Checked against the policy.")
    passwordHash: SecretStr | None = Field(
        default=None, description="An existing bcrypt ($2b$…) or Argon2id hash to import."
    )


class PasswordSet(Body):
    password: SecretStr


async def create_user(
    body: UserCreate,
    request: Request,
    caller: Caller = Depends(require("users", "create")),
    services: Services = Depends(services_dep),
) -> PrincipalOut:
    if body.password is not None and body.passwordHash is not None:
        raise RequestRejectedError("give a password or a passwordHash, not both")
    if body.password is not None or body.passwordHash is not None:  # platform bindings too
        await ensure_may_take_name(caller, services, kind=PrincipalKind.USER, name=body.name)
    identity, guard = services.identity, holdings(services)
    actor = actor_of(caller, request)

    def work() -> PrincipalOut:
        now = services.clock.now()
        with services.storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(caller.identity.tenant)
            user = identity.directory.create_principal(
                tx,
                tenant=tenant,
                kind=PrincipalKind.USER,
                name=body.name,
                display_name=body.displayName,
                actor=actor,
            )
            if body.password is not None or body.passwordHash is not None:
                held = guard.of_principal_in(tx, tenant, user)
                ensure_within(caller, held, f"the password of user {user.name}")
            if body.password is not None:
                identity.passwords.set_password(tx, user, body.password.get_secret_value(), now=now)
            elif body.passwordHash is not None:
                identity.passwords.import_hash(
                    tx, user, body.passwordHash.get_secret_value(), now=now
                )
        return principal_out(user, [])

    return await identity.hashing.run(work)


router = principal_router(
    kind=PrincipalKind.USER, path="users", resource="users", tag="users", create=create_user
)


@router.put("/{name}/password", status_code=204, name="set_user_password")
async def set_password(
    name: str,
    body: PasswordSet,
    request: Request,
    caller: Caller = Depends(require("users", "update")),
    services: Services = Depends(services_dep),
) -> None:
    identity, guard = services.identity, holdings(services)
    actor = actor_of(caller, request)

    def work() -> EndedSessions:
        now = services.clock.now()
        with services.storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(caller.identity.tenant)
            user = get_principal(tx, tenant, PrincipalKind.USER, name)
            held = guard.of_principal_in(tx, tenant, user)
            ensure_within(caller, held, f"the password of user {user.name}")
            password = body.password.get_secret_value()
            ended = identity.passwords.set_password(tx, user, password, now=now)
            record(
                tx,
                action="user.password.set",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource={"type": "user", "id": canonical_name(name)},
                details=ended.details(),
            )
        return ended

    # Whoever held a session under the old password loses it, on every replica.
    identity.passwords.sessions.announce(await identity.hashing.run(work))
