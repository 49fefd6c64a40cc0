"""Answering "may P do A on R?" without a request: ``bastion authz check|explain|test`` and
``POST /v1/authz/check`` share this, and the proxy's decision code underneath."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.decision import Decision
from bastion.core.model import AuditEvent
from bastion.errors import RequestRejectedError
from bastion.services.audit import build_event
from bastion.services.authz import Authorizer, AuthzContext, AuthzRequest, Subject
from bastion.services.clock import Clock
from bastion.services.lookups import get_any_principal, get_tenant


@dataclass(frozen=True, slots=True)
class CheckQuery:
    """One question. ``resource`` is ``type`` or ``type/id``; ``tenant`` is the principal's
    tenant and ``target`` the tenant it would act in (both default to the default tenant)."""

    principal: str
    action: str
    resource: str
    tenant: str | None = None
    target: str | None = None
    scopes: tuple[str, ...] | None = None
    client_ip: str | None = None
    mfa: bool = False
    auth_method: str = "check"
    time: datetime | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    query: CheckQuery
    tenant: str
    target: str
    permission: str
    decision: Decision
    subject: Subject


def split_resource(text: str) -> tuple[str, str | None]:
    resource_type, sep, resource_id = text.strip().partition("/")
    if not resource_type or (sep and not resource_id):
        raise RequestRejectedError(f"{text!r} is not a resource of the form type or type/id")
    return resource_type, resource_id if sep else None


class AuthzChecks:
    def __init__(
        self,
        *,
        storage: Storage,
        authorizer: Authorizer,
        permissions: Mapping[tuple[str, str], str],
        clock: Clock,
        default_tenant: str,
    ) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._permissions = permissions
        self._clock = clock
        self._default_tenant = default_tenant

    def permission_for(self, resource: str, action: str) -> str:
        """The permission a route with this resource and action requires (the proxy's rule),
        else ``resource:action``."""
        return self._permissions.get((resource, action), f"{resource}:{action}")

    def check(self, query: CheckQuery) -> CheckResult:
        """Decide ``query`` with the live model (reads the database; blocking)."""
        with self._storage.transaction() as tx:
            return self.check_in(tx, query)

    def check_many(self, queries: Sequence[CheckQuery]) -> list[CheckResult]:
        with self._storage.transaction() as tx:
            return [self.check_in(tx, query) for query in queries]

    def check_in(self, tx: UnitOfWork, query: CheckQuery) -> CheckResult:
        if query.client_ip is not None:
            try:
                ipaddress.ip_address(query.client_ip)
            except ValueError:
                raise RequestRejectedError(f"{query.client_ip!r} is not an IP address") from None
        now = query.time or self._clock.now()
        resource, resource_id = split_resource(query.resource)
        home = get_tenant(tx, query.tenant or self._default_tenant)
        target = home if query.target is None else get_tenant(tx, query.target)
        principal = get_any_principal(tx, home, query.principal)
        subject = self._authorizer.subject(tx, principal, tenant=home, now=now)
        target_model = self._authorizer.tenant_model(tx, target)
        permission = self.permission_for(resource, query.action)
        context = AuthzContext(
            time=now,
            client_ip=query.client_ip,
            mfa=query.mfa,
            auth_method=query.auth_method,
            route=dict(query.attributes),
        )
        request = AuthzRequest(resource, query.action, context, resource_id, permission)
        decision = self._authorizer.authorize(
            subject, request, scopes=query.scopes, target=target_model
        )
        return CheckResult(query, home.name, target.name, permission, decision, subject)


def check_event(
    result: CheckResult, *, actor: dict[str, Any], now: datetime, request_id: str | None = None
) -> AuditEvent:
    """The ``authz.check`` audit event for a check asked through the API."""
    query, decision = result.query, result.decision
    resource_type, resource_id = split_resource(query.resource)
    return build_event(
        action="authz.check",
        outcome="success",
        tenant=result.tenant,
        now=now,
        actor=actor,
        resource={"type": resource_type, "id": resource_id},
        details={
            "principal": result.subject.principal.name,
            "action": query.action,
            "target": result.target,
            "effect": decision.effect.value,
            "reasons": list(decision.reasons),
        },
        request={"requestId": request_id} if request_id else {},
    )
