"""The access decision for one request, shared by the reverse proxy, forward-auth and the
embedded middleware: authenticate → match the route → authorize, and the audit event for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.backends.protocols import Storage
from bastion.core.decision import Decision
from bastion.core.model import AuditEvent, Principal
from bastion.core.rbac import Grant
from bastion.core.routes import PathSet, RouteMatch, RouteTable
from bastion.errors import AuthenticationError, AuthorizationError, BastionError, StorageError
from bastion.services.audit import build_event
from bastion.services.authn import Authenticator
from bastion.services.authz import Authorizer
from bastion.services.clock import Clock


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the edge learned about a request before deciding (all already validated)."""

    method: str
    path: str
    credential: str | None
    client_ip: str | None
    user_agent: str | None
    request_id: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, as passed to the upstream."""

    principal: Principal
    tenant: str
    roles: tuple[str, ...]
    credential_id: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of `AccessService.check`: ``error`` None means allow."""

    facts: RequestFacts
    match: RouteMatch | None
    identity: Identity | None
    error: BastionError | None
    reasons: tuple[str, ...] = ()
    public: bool = False

    @property
    def allowed(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated principal with the roles that reach it now and its credential scopes."""

    identity: Identity
    grants: tuple[Grant, ...]
    scopes: tuple[str, ...] | None


class AccessService:
    def __init__(
        self,
        *,
        storage: Storage,
        authenticator: Authenticator,
        authorizer: Authorizer,
        routes: RouteTable,
        public_paths: PathSet,
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._authenticator = authenticator
        self._authorizer = authorizer
        self._routes = routes
        self._public = public_paths
        self._clock = clock

    def check(self, facts: RequestFacts) -> Verdict:
        """Decide one request. Blocking (database); the edge runs it off the event loop.

        Any failure of a dependency is a deny (DESIGN.md 7.1): storage errors come back as a
        verdict carrying the error, never as an allow.
        """
        match = self._routes.match(facts.method, facts.path)
        if self._public.matches(facts.path):
            return Verdict(facts, match, None, None, ("public path",), public=True)
        try:
            caller = self.identify(facts.credential)
        except BastionError as exc:
            return Verdict(facts, match, None, exc)
        if match is None:
            reasons = (f"no route matches {facts.method} {facts.path}",)
            return Verdict(facts, None, caller.identity, AuthorizationError(reasons), reasons)
        decision = self.authorize(caller, match.route.permission)
        if not decision.allowed:
            error = AuthorizationError(decision.reasons)
            return Verdict(facts, match, caller.identity, error, decision.reasons)
        return Verdict(facts, match, caller.identity, None, decision.reasons)

    def identify(self, credential: str | None) -> Caller:
        """Authenticate ``credential`` and collect the caller's grants. Blocking (database)."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            authenticated = self._authenticator.authenticate(tx, credential)
            principal = authenticated.principal
            tenant = tx.tenants.get(principal.tenant_id)
            grants = self._authorizer.grants(tx, principal, tenant_name=tenant.name, now=now)
        identity = Identity(
            principal=principal,
            tenant=tenant.name,
            roles=tuple(dict.fromkeys(g.role for g in grants)),
            credential_id=authenticated.credential_id,
        )
        return Caller(identity, tuple(grants), authenticated.scopes)

    def authorize(self, caller: Caller, permission: str) -> Decision:
        """RBAC ∩ scopes for ``resource:action``; pure (no I/O)."""
        resource, _, action = permission.partition(":")
        return self._authorizer.decide(
            caller.grants, scopes=caller.scopes, resource=resource, action=action
        )


def request_event(
    verdict: Verdict,
    *,
    status: int,
    now: Any,
    default_tenant: str,
    extra: dict[str, Any] | None = None,
) -> AuditEvent:
    """The one audit event a request produces, in the spec/000 shape."""
    facts, match, identity, error = verdict.facts, verdict.match, verdict.identity, verdict.error
    if error is None:
        outcome = "success" if status < 500 else "failure"
    elif isinstance(error, AuthorizationError):
        outcome = "denied"
    else:
        outcome = "failure"
    if match is not None:
        action = match.route.event
    elif isinstance(error, AuthorizationError):
        action = "authz.deny"
    else:
        action = "request.reject" if error is not None else "request.public"
    actor: dict[str, Any] = {"type": "anonymous", "id": None}
    if identity is not None:
        actor = {
            "type": identity.principal.kind.value,
            "id": identity.principal.name,
            "credential": identity.credential_id,
        }
    actor["ip"] = facts.client_ip
    actor["userAgent"] = facts.user_agent
    resource: dict[str, Any] = {}
    if match is not None:
        resource = {"type": match.route.resource, "id": match.resource_id}
    details: dict[str, Any] = {"status": status}
    if verdict.reasons:
        details["reasons"] = list(verdict.reasons)
    if isinstance(error, AuthenticationError):
        details["reason"] = error.reason
    elif isinstance(error, StorageError):
        details["reason"] = "storage_unavailable"
    elif error is not None and not isinstance(error, AuthorizationError):
        details["reason"] = error.code
    if extra:
        details.update(extra)
    return build_event(
        action=action,
        outcome=outcome,
        tenant=identity.tenant if identity is not None else default_tenant,
        now=now,
        actor=actor,
        resource=resource,
        details=details,
        request={"method": facts.method, "path": facts.path, "requestId": facts.request_id},
    )
