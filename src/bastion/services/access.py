"""The access decision for one request, shared by the reverse proxy, forward-auth and the
embedded middleware: authenticate → match the route → authorize, and the audit event for it.

A caller, once decided, is remembered by its presented credential (under a keyed hash) together
with the change counters read before it was decided (`ChangeCounters`: the revocation epoch and
the authorization version, or on PostgreSQL the view the Redis broadcasts keep current).
`AccessService.check_cached` serves a request from that memory without a unit of work when the
counters now are the same, the credential has not expired and no binding has; anything else
goes to `AccessService.check`, off the event loop (counters: `AccessService._counters_now`).

The request and verdict types live in `bastion.services.access_model` and are re-exported here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bastion.backends.protocols import ChangeCounters, Storage, UnitOfWork
from bastion.core.decision import Decision
from bastion.core.engine import deny
from bastion.core.model import Tenant
from bastion.core.names import canonical_name
from bastion.core.routes import PathSet, RouteMatch, RouteTable
from bastion.crypto.keys import CacheKeyer
from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    ClientAddressDeniedError,
    NotFoundError,
)
from bastion.services.access_model import (
    Caller,
    CertificateLogin,
    ClientCertificate,
    Identity,
    RequestFacts,
    Verdict,
)
from bastion.services.authn import Authenticated, Authenticator
from bastion.services.authz import Authorizer, route_request
from bastion.services.clock import Clock
from bastion.services.revocation import RevocationState

__all__ = [
    "REMEMBER_FOR",
    "AccessService",
    "Caller",
    "CertificateLogin",
    "ClientCertificate",
    "Identity",
    "RequestFacts",
    "Verdict",
]

# A remembered caller is decided afresh at least this often, whatever the counters say (it
# also keeps API keys' last-used times current to within a minute).
REMEMBER_FOR = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class _Remembered:
    caller: Caller
    counters: ChangeCounters
    until: datetime


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
        revocation: RevocationState | None = None,
        capacity: int = 10_000,
    ) -> None:
        self._certificates = certificates
        self._storage = storage
        self._authenticator = authenticator
        self._authorizer = authorizer
        self._routes = routes
        self._public = public_paths
        self._clock = clock
        self._revocation = revocation
        self._keyer = CacheKeyer()
        self._capacity = capacity
        self._callers: dict[bytes, _Remembered] = {}
        # The counters read in the current iteration of the loop that read them.
        self._tick: tuple[asyncio.AbstractEventLoop, ChangeCounters] | None = None

    def check_cached(self, facts: RequestFacts) -> Verdict | None:
        """The verdict `check` would give, without blocking I/O, or None when it needs `check`.

        Public paths are decided here; a credential when its caller is remembered, the change
        counters now equal those read before it was decided (`_counters_now`: a local read at
        most once per loop iteration, or the broadcasts' fresh view), and neither the
        credential nor a binding has expired since. A request with no credential, or one that
        cannot be valid (a key whose checksum fails, a shape no verifier knows), is refused
        here too: garbage never costs a worker thread, a database connection or the
        database's write lock.
        """
        match = self._routes.match(facts.method, facts.path)
        if self._public.matches(facts.path):
            return _public_verdict(facts, match)
        credential = facts.credential
        if credential is None and facts.certificate is not None:
            return None  # a client certificate is looked up (`check`)
        if credential is not None and self._revocation is not None:
            remembered = self._callers.get(self._keyer.key(credential))
            if remembered is not None and self._clock.now() < remembered.until:
                counters = self._counters_now()
                if counters is not None and counters == remembered.counters:
                    return self._decide(facts, match, remembered.caller)
        try:
            self._authenticator.screen(credential)
        except AuthenticationError as exc:
            return Verdict(facts, match, None, exc)
        return None

    def _counters_now(self) -> ChangeCounters | None:
        """The counters as they are now, for a decision made on the event loop.

        A read (a SQLite query: tens of microseconds under load) is kept until the loop's
        current iteration ends. That is safe because the loop runs its ready callbacks in
        order: the callback that forgets the read is queued when the read is made, so every
        decision that uses it was queued earlier, for a request received earlier still. A
        change committed before a request arrived is therefore always in the read it is
        decided on. Outside a running loop (tests, tools) every call reads.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and self._tick is not None and self._tick[0] is loop:
            return self._tick[1]
        counters = self._storage.change_counters() or self._broadcast_counters()
        if counters is not None and loop is not None:
            self._tick = (loop, counters)
            loop.call_soon(self._forget_counters)
        return counters

    def _forget_counters(self) -> None:
        self._tick = None

    def _broadcast_counters(self) -> ChangeCounters | None:
        """For a backend that cannot read the counters locally: this process's own view (the
        revocation epoch and the compiled-model generation), while both broadcasts are
        subscribed and their database backstops are current; else None."""
        revocation = self._revocation
        if revocation is None or not (revocation.is_fresh() and self._authorizer.is_fresh()):
            return None
        return ChangeCounters(revocation.epoch, self._authorizer.generation)

    def check(self, facts: RequestFacts) -> Verdict:
        """Decide one request. Blocking (database); the edge runs it off the event loop.

        Any failure of a dependency is a deny (DESIGN.md 7.1): storage errors come back as a
        verdict carrying the error, never as an allow.
        """
        match = self._routes.match(facts.method, facts.path)
        if self._public.matches(facts.path):
            return _public_verdict(facts, match)
        try:
            if facts.credential is None and facts.certificate is not None:
                caller = self.identify_certificate(facts.certificate)
            else:
                caller = self._identify_remembering(facts.credential)
        except BastionError as exc:
            return Verdict(facts, match, None, exc)
        return self._decide(facts, match, caller)

    def _identify_remembering(self, credential: str | None) -> Caller:
        """`identify`, remembering the caller for `check_cached` when it may be reused.

        The counters are read first and pushed into the revocation state and the authorizer,
        so the caller is decided on state at least as new as the counters it is filed under;
        a change that lands in between moves the counters again and voids the entry. Without
        local counters (PostgreSQL) the broadcasts' view stands in for them while it is fresh:
        a change announced by another replica reaches it within milliseconds, and a lost
        announcement within the one-second database backstop.
        """
        counters = None
        if credential is not None and self._revocation is not None:
            counters = self._storage.change_counters()
            if counters is not None:
                self._revocation.observe(counters.revocation_epoch)
                self._authorizer.observe_version(counters.authz_version)
            else:
                counters = self._broadcast_counters()
        caller = self.identify(credential)
        if counters is not None and caller.reusable_until is not None:
            assert credential is not None
            until = min(caller.reusable_until, self._clock.now() + REMEMBER_FOR)
            if len(self._callers) >= self._capacity:
                self._callers = {}
            self._callers[self._keyer.key(credential)] = _Remembered(caller, counters, until)
        return caller

    def _decide(self, facts: RequestFacts, match: RouteMatch | None, caller: Caller) -> Verdict:
        """Route → per-route allowlist → authorize, for an identified caller; no I/O."""
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
        self._authenticator.screen(credential)
        self._authenticator.prepare(credential)  # before any unit of work (see there)
        writes = self._authenticator.writes(credential)
        unit = self._storage.transaction if writes else self._storage.read_only
        try:
            with unit() as tx:
                authenticated = self._authenticator.authenticate(tx, credential)
                principal = authenticated.principal
                tenant = tx.tenants.get(principal.tenant_id)
                subject = self._authorizer.subject(tx, principal, tenant=tenant, now=now)
                delegate = authenticated.actor
                actor = None if delegate is None else self._acting(tx, delegate, tenant, now)
        finally:
            self._authenticator.settle()  # what read-only verifications deferred
        grants = subject.access.grants
        identity = Identity(
            principal=principal,
            tenant=tenant.name,
            roles=tuple(dict.fromkeys(g.role for g in grants)),
            credential_id=authenticated.credential_id,
            acting=delegate.principal if delegate is not None else None,
            acting_roles=actor.identity.roles if actor is not None else (),
        )
        reusable_until = None
        if authenticated.reusable:
            reusable_until = _earliest(
                authenticated.expires_at,
                subject.access.valid_until,
                actor.subject.access.valid_until if actor and actor.subject else None,
            )
        return Caller(
            identity,
            grants,
            authenticated.scopes,
            subject,
            authenticated.method,
            authenticated.mfa,
            actor,
            reusable_until,
        )

    def _acting(
        self, tx: UnitOfWork, delegate: Authenticated, tenant: Tenant, now: datetime
    ) -> Caller:
        """The agent or service account acting on the principal's behalf (RFC 8693)."""
        acting = self._authorizer.subject(tx, delegate.principal, tenant=tenant, now=now)
        grants = acting.access.grants
        roles = tuple(dict.fromkeys(g.role for g in grants))
        identity = Identity(delegate.principal, tenant.name, roles, delegate.credential_id)
        return Caller(identity, grants, delegate.scopes, acting, delegate.method)

    def identify_certificate(self, certificate: ClientCertificate) -> Caller:
        """The agent or service account a verified client certificate names. Blocking."""
        login = self._certificates
        if login is None:
            raise AuthenticationError("missing_credential")
        now = self._clock.now()
        with self._storage.read_only() as tx:
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


def _earliest(*moments: datetime | None) -> datetime:
    known = [m for m in moments if m is not None]
    return min(known) if known else datetime.max.replace(tzinfo=UTC)


def _public_verdict(facts: RequestFacts, match: RouteMatch | None) -> Verdict:
    denied = _address_denied(facts, match)
    if denied is not None:
        return Verdict(facts, match, None, denied, denied.reasons)
    return Verdict(facts, match, None, None, ("public path",), public=True)


def _address_denied(
    facts: RequestFacts, match: RouteMatch | None
) -> ClientAddressDeniedError | None:
    """The route's own IP allowlist; an unknown client address never matches it."""
    if match is None or match.route.allowlist.permits(facts.client_ip):
        return None
    return ClientAddressDeniedError(("client address is not in the route's ipAllowlist",))
