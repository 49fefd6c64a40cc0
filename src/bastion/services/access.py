"""The access decision for one request, shared by the reverse proxy, forward-auth and the
embedded middleware: authenticate → match the route → authorize, and the audit event for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.backends.protocols import Storage
from bastion.core.decision import Decision
from bastion.core.engine import deny
from bastion.core.model import AuditEvent, Principal, PrincipalKind
from bastion.core.names import canonical_name
from bastion.core.rbac import Grant
from bastion.core.routes import PathSet, RouteMatch, RouteTable
from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    ClientAddressDeniedError,
    NotFoundError,
    RateLimitedError,
    StorageError,
)
from bastion.services.audit import build_event
from bastion.services.authn import Authenticator
from bastion.services.authz import Authorizer, Subject, route_request
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
    certificate: ClientCertificate | None = None


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A client certificate the TLS layer verified: its common name and SHA-256 fingerprint."""

    common_name: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class CertificateLogin:
    """Who may authenticate with a verified client certificate: principals of ``kinds``, looked
    up by the certificate's common name in ``tenant``. Nothing is created implicitly."""

    tenant: str
    kinds: frozenset[PrincipalKind]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, as passed to the upstream."""

    principal: Principal
    tenant: str
    roles: tuple[str, ...]
    credential_id: str
    # RFC 8693 delegation: the agent or service account acting on the principal's behalf.
    acting: Principal | None = None


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
    subject: Subject | None = None
    method: str = ""
    mfa: bool = False
    # Delegation: the actor must be allowed too (effective = the intersection of both).
    actor: Caller | None = None


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
        certificates: CertificateLogin | None = None,
    ) -> None:
        self._certificates = certificates
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
            denied = _address_denied(facts, match)
            if denied is not None:
                return Verdict(facts, match, None, denied, denied.reasons)
            return Verdict(facts, match, None, None, ("public path",), public=True)
        try:
            if facts.credential is None and facts.certificate is not None:
                caller = self.identify_certificate(facts.certificate)
            else:
                caller = self.identify(facts.credential)
        except BastionError as exc:
            return Verdict(facts, match, None, exc)
        if match is None:
            reasons = (f"no route matches {facts.method} {facts.path}",)
            return Verdict(facts, None, caller.identity, AuthorizationError(reasons), reasons)
        denied = _address_denied(facts, match)
        if denied is not None:
            return Verdict(facts, match, caller.identity, denied, denied.reasons)
        decision = self.authorize(caller, match.route.permission, match=match, facts=facts)
        if not decision.allowed:
            error = AuthorizationError(decision.reasons)
            return Verdict(facts, match, caller.identity, error, decision.reasons)
        return Verdict(facts, match, caller.identity, None, decision.reasons)

    def identify(self, credential: str | None) -> Caller:
        """Authenticate ``credential`` and collect the caller's grants. Blocking (database)."""
        now = self._clock.now()
        self._authenticator.prepare(credential)  # network I/O (JWKS), before the write lock
        with self._storage.transaction() as tx:
            authenticated = self._authenticator.authenticate(tx, credential)
            principal = authenticated.principal
            tenant = tx.tenants.get(principal.tenant_id)
            subject = self._authorizer.subject(tx, principal, tenant=tenant, now=now)
            delegate = authenticated.actor
            actor = None
            if delegate is not None:
                acting = self._authorizer.subject(tx, delegate.principal, tenant=tenant, now=now)
                actor_identity = Identity(
                    delegate.principal,
                    tenant.name,
                    tuple(dict.fromkeys(g.role for g in acting.access.grants)),
                    delegate.credential_id,
                )
                actor = Caller(
                    actor_identity, acting.access.grants, delegate.scopes, acting, delegate.method
                )
        grants = subject.access.grants
        identity = Identity(
            principal=principal,
            tenant=tenant.name,
            roles=tuple(dict.fromkeys(g.role for g in grants)),
            credential_id=authenticated.credential_id,
            acting=delegate.principal if delegate is not None else None,
        )
        # A credential that proved a second factor says so (Authenticated.mfa, identity work).
        mfa = bool(getattr(authenticated, "mfa", False))
        return Caller(
            identity, grants, authenticated.scopes, subject, authenticated.method, mfa, actor
        )

    def identify_certificate(self, certificate: ClientCertificate) -> Caller:
        """The agent or service account a verified client certificate names. Blocking."""
        login = self._certificates
        if login is None:
            raise AuthenticationError("missing_credential")
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(login.tenant)
            try:
                name = canonical_name(certificate.common_name)
                principal = tx.principals.get_by_name(tenant.id, name)
            except NotFoundError:
                raise AuthenticationError("unknown_certificate") from None
            if principal.kind not in login.kinds:
                raise AuthenticationError("certificate_not_allowed")
            if principal.disabled:
                raise AuthenticationError("disabled_principal")
            subject = self._authorizer.subject(tx, principal, tenant=tenant, now=now)
        grants = subject.access.grants
        identity = Identity(
            principal=principal,
            tenant=tenant.name,
            roles=tuple(dict.fromkeys(g.role for g in grants)),
            credential_id=f"cert:{certificate.fingerprint[:32]}",
        )
        return Caller(identity, grants, None, subject, "mtls")

    def authorize(
        self,
        caller: Caller,
        permission: str,
        *,
        match: RouteMatch | None = None,
        facts: RequestFacts | None = None,
    ) -> Decision:
        """Tenant → RBAC ∩ scopes → resource rules → Cedar for ``permission``; no database I/O."""
        if caller.subject is None:
            return deny("tenant", "the caller was not resolved by the authorizer")
        request = route_request(
            permission,
            match=match,
            now=self._clock.now(),
            client_ip=facts.client_ip if facts else None,
            method=facts.method if facts else "",
            path=facts.path if facts else "",
            auth_method=caller.method,
            mfa=caller.mfa,
        )
        decision = self._authorizer.authorize(caller.subject, request, scopes=caller.scopes)
        if decision.allowed and caller.actor is not None:
            acting = self.authorize(caller.actor, permission, match=match, facts=facts)
            if not acting.allowed:
                return acting
        return decision


def _address_denied(
    facts: RequestFacts, match: RouteMatch | None
) -> ClientAddressDeniedError | None:
    """The route's own IP allowlist; an unknown client address never matches it."""
    if match is None or match.route.allowlist.permits(facts.client_ip):
        return None
    return ClientAddressDeniedError(("client address is not in the route's ipAllowlist",))


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
    elif isinstance(error, AuthorizationError | RateLimitedError):
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
            "keyId": identity.credential_id,
        }
        if identity.acting is not None:
            actor["act"] = {"type": identity.acting.kind.value, "id": identity.acting.name}
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
