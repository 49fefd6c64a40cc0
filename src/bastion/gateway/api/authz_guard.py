"""Escalation guard for the admin API: nobody hands out more than they hold.

Whatever a change gives someone (a role's permissions, a binding, a group membership, a
credential's scopes, control of another principal through its password or key) must lie within
the caller's own roles ∩ scopes, and, for a delegated token, within its actor's too. That
includes what resource rules and Cedar policies give by name
(`bastion.services.holdings.RuleAdmission`, `PolicyReach`).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.concurrency import run_in_threadpool

from bastion.core.grants import ScopeIndex
from bastion.core.rbac import Permission, scope_permissions
from bastion.errors import AuthorizationError, RequestRejectedError
from bastion.services.access import Caller
from bastion.services.holdings import Holdings, RuleAdmission
from bastion.wiring import Services


def ensure_within(caller: Caller, permissions: Iterable[Permission], what: str) -> None:
    """`AuthorizationError` unless the caller's roles ∩ scopes (and its actor's, when it acts
    for someone) cover every permission. A resource rule's admission (`RuleAdmission`) is
    covered too when the rule admits the caller itself (its name, or its roles: scopes do not
    narrow what rules see).

    Wildcards compare as wildcards: granting ``*:read`` needs ``*:read`` or ``*:*``.
    """
    wanted = tuple(permissions)
    subject = caller.subject
    if subject is None:
        raise AuthorizationError(("the caller was not resolved by the authorizer",))
    scopes = ScopeIndex(caller.scopes) if caller.scopes is not None else None
    for permission in wanted:
        if isinstance(permission, RuleAdmission) and permission.admits(subject):
            continue
        held = subject.access.grant_for(permission.resource, permission.action) is not None
        scoped = scopes is None or scopes.scope_for(permission.resource, permission.action)
        if not held or not scoped:
            raise AuthorizationError((_refusal(what, permission),))
    if caller.actor is not None:
        ensure_within(caller.actor, wanted, what)


def _refusal(what: str, permission: Permission) -> str:
    if isinstance(permission, RuleAdmission):
        return f"{what} would grant {permission}, which does not admit the caller"
    return f"{what} would grant {permission}, which the caller lacks"


def ensure_scopes_within(caller: Caller, scopes: Iterable[str], what: str) -> None:
    """A credential with ``scopes`` can do at most what they stand for: the caller must hold
    all of it. (Its holder's roles narrow it further, never widen it.)"""
    try:
        wanted = [p for scope in scopes for p in scope_permissions(scope)]
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None
    ensure_within(caller, wanted, what)


async def ensure_may_remove(caller: Caller, services: Services, what: str) -> None:
    """`AuthorizationError` unless the caller holds what ``security.rbac.defaultRole`` gives,
    when one is configured: removing a binding, a group member, a group or a custom role can
    leave someone with no binding in force, who then holds the default role only."""
    granted = await run_in_threadpool(
        holdings(services).of_default_role, tenant_name=caller.identity.tenant
    )
    default = services.authz.authorizer.settings.default_role
    ensure_within(caller, granted, f"{what} (it can leave someone with the default role {default})")


def holdings(services: Services) -> Holdings:
    return Holdings(
        storage=services.storage,
        authorizer=services.authz.authorizer,
        clock=services.clock,
        policies=services.authz.policies,
        platform_tenant=services.config.security.default_tenant,
    )
