"""Escalation guard for the roles and bindings routers: nobody hands out more than they hold."""

from __future__ import annotations

from collections.abc import Iterable

from bastion.core.grants import ScopeIndex
from bastion.core.rbac import Permission
from bastion.errors import AuthorizationError
from bastion.services.access import Caller


def ensure_within(caller: Caller, permissions: Iterable[Permission], what: str) -> None:
    """`AuthorizationError` unless the caller's roles ∩ scopes cover every permission.

    Wildcards compare as wildcards: granting ``*:read`` needs ``*:read`` or ``*:*``.
    """
    subject = caller.subject
    if subject is None:
        raise AuthorizationError(("the caller was not resolved by the authorizer",))
    scopes = ScopeIndex(caller.scopes) if caller.scopes is not None else None
    for permission in permissions:
        held = subject.access.grant_for(permission.resource, permission.action) is not None
        scoped = scopes is None or scopes.scope_for(permission.resource, permission.action)
        if not held or not scoped:
            raise AuthorizationError((f"{what} would grant {permission}, which the caller lacks",))
