"""Escalation guard for the admin API: nobody hands out more than they hold.

Whatever a change gives someone (a role's permissions, a binding, a group membership, a
credential's scopes, control of another principal through its password) must lie within the
caller's own roles ∩ scopes, and, for a delegated token, within its actor's too. That includes
what Cedar policies give by name (`bastion.services.holdings.PolicyReach`).
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.core.grants import ScopeIndex
from bastion.core.rbac import Permission, scope_permissions
from bastion.errors import AuthorizationError, RequestRejectedError
from bastion.services.access import Caller
from bastion.services.holdings import Holdings
from bastion.wiring import Services


def ensure_within(caller: Caller, permissions: Iterable[Permission], what: str) -> None:
    """`AuthorizationError` unless the caller's roles ∩ scopes (and its actor's, when it acts
    for someone) cover every permission.

    Wildcards compare as wildcards: granting ``*:read`` needs ``*:read`` or ``*:*``.
    """
    wanted = tuple(permissions)
    subject = caller.subject
    if subject is None:
        raise AuthorizationError(("the caller was not resolved by the authorizer",))
    scopes = ScopeIndex(caller.scopes) if caller.scopes is not None else None
    for permission in wanted:
        held = subject.access.grant_for(permission.resource, permission.action) is not None
        scoped = scopes is None or scopes.scope_for(permission.resource, permission.action)
        if not held or not scoped:
            raise AuthorizationError((f"{what} would grant {permission}, which the caller lacks",))
    if caller.actor is not None:
        ensure_within(caller.actor, wanted, what)


def ensure_scopes_within(caller: Caller, scopes: Iterable[str], what: str) -> None:
    """A credential with ``scopes`` can do at most what they stand for: the caller must hold
    all of it. (Its holder's roles narrow it further, never widen it.)"""
    try:
        wanted = [p for scope in scopes for p in scope_permissions(scope)]
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None
    ensure_within(caller, wanted, what)


def holdings(services: Services) -> Holdings:
    return Holdings(
        storage=services.storage,
        authorizer=services.authz.authorizer,
        clock=services.clock,
        policies=services.authz.policies,
        platform_tenant=services.config.security.default_tenant,
    )
