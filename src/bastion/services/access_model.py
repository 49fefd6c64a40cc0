"""What an access decision is about and what it comes to: the request's facts, the caller
(`Caller`, `Identity`) and the outcome (`Verdict`), shared by the edge and `AccessService`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bastion.core.model import Principal, PrincipalKind
from bastion.core.rbac import Grant
from bastion.core.routes import RouteMatch
from bastion.errors import BastionError
from bastion.services.authz import Subject


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
    # RFC 8693 delegation: the agent or service account acting on the principal's behalf, and
    # the roles that reach it (the request may use only what both hold).
    acting: Principal | None = None
    acting_roles: tuple[str, ...] = ()


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
    # Until when this caller may be remembered (None: never): the credential's expiry and the
    # next expiry of a binding, whichever comes first.
    reusable_until: datetime | None = None
