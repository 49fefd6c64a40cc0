"""OAuth 2.0 tokens bastion issues (RFC 6749, RFC 8693): client credentials, refresh with
rotation and reuse detection, token exchange for delegation, and revocation.

Access tokens are short-lived JWTs signed by `SigningKeys`; one minted from an API key never
outlives the key. Refresh tokens are opaque (``brt_…``), stored as keyed hashes, single use:
each refresh returns a successor of the same family, and presenting a used one again — a
replay, or two concurrent refreshes — revokes the whole family (RFC 9700 section 4.14.2). A
token of a family revoked in any way (`bastion.services.sessions`) never refreshes again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.credentials import RefreshToken, RevokedToken
from bastion.core.ids import new_id
from bastion.core.model import Principal, PrincipalKind, Tenant
from bastion.core.rbac import parse_scopes, scopes_within
from bastion.crypto.keys import KeyedHasher, new_secret_token
from bastion.errors import AuthenticationError, AuthorizationError, RequestRejectedError
from bastion.services.authn import Authenticated
from bastion.services.clock import Clock
from bastion.services.directory import record
from bastion.services.revocation import Revoker
from bastion.services.sessions import Sessions, family_revoked, remember_revoked
from bastion.services.signing_keys import SigningKeys

REFRESH_PREFIX = "brt_"
# Long-expired refresh tokens removed by each one issued (a refresh adds one row, so two keep
# the table bounded however long sessions rotate). A token is kept one refresh lifetime past
# its expiry: a client that comes back within that time with a token someone else has used
# is still caught as reuse, and its family revoked.
FORGET_PER_ISSUE = 2


@dataclass(frozen=True, slots=True)
class TokenSettings:
    issuer: str
    access_ttl: timedelta
    refresh_ttl: timedelta
    session_lifetime: timedelta


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: tuple[str, ...] | None
    refresh_token: str | None = None

    def response(self, *, issued_token_type: str | None = None) -> dict[str, Any]:
        """The RFC 6749 section 5.1 token response."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.scope is not None:
            body["scope"] = " ".join(self.scope)
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if issued_token_type is not None:
            body["issued_token_type"] = issued_token_type
        return body


def narrow(requested: str | None, held: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """RFC 6749 section 3.3: a requested ``scope`` must lie within what the credential holds."""
    if requested is None or not requested.strip():
        return held
    try:
        scopes = parse_scopes(requested.split())
    except ValueError as exc:
        raise RequestRejectedError(str(exc)) from None
    if not scopes_within(scopes, held):
        raise AuthorizationError(("the requested scope exceeds the credential's scope",))
    return scopes


def actor_of(principal: Principal, *, via: str) -> dict[str, Any]:
    return {"type": principal.kind.value, "id": principal.name, "via": via}


class TokenService:
    def __init__(
        self,
        *,
        storage: Storage,
        hasher: KeyedHasher,
        clock: Clock,
        keys: SigningKeys,
        settings: TokenSettings,
        revoker: Revoker,
    ) -> None:
        self._storage = storage
        self._hasher = hasher
        self._clock = clock
        self._keys = keys
        self.settings = settings
        self._revoker = revoker
        self.sessions = Sessions(access_ttl=settings.access_ttl, revoker=revoker)

    def warm(self) -> None:
        """Make sure the signing key is loaded; call before opening a transaction."""
        self._keys.signer()

    def access_token(
        self,
        authenticated: Authenticated,
        *,
        tenant: Tenant,
        now: datetime,
        not_after: datetime | None = None,
        family: str | None = None,
        actor_family: str | None = None,
        sources: tuple[str, ...] = (),
    ) -> tuple[str, int]:
        """A signed access token for ``authenticated`` (and its ``act``), with its lifetime:
        the configured one, cut short at ``not_after`` (when a credential it comes from
        expires). ``sources`` are the ids of the tokens it was exchanged from, ``family`` and
        ``actor_family`` the sessions of its subject and actor: revoking one revokes it."""
        issued = int(now.timestamp())
        expires = issued + int(self.settings.access_ttl.total_seconds())
        if not_after is not None:
            expires = min(expires, int(not_after.timestamp()))
        principal = authenticated.principal
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": self.settings.issuer,
            "sub": principal.id,
            "name": principal.name,
            "kind": principal.kind.value,
            "tid": tenant.name,
            "cid": authenticated.credential_id,
            "jti": new_id("jti"),
            "iat": issued,
            "exp": expires,
        }
        if authenticated.scopes is not None:
            claims["scope"] = " ".join(authenticated.scopes)
        if family is not None:
            claims["fam"] = family
        if sources:
            claims["src"] = list(sources)
        actor = authenticated.actor
        if actor is not None:
            act: dict[str, Any] = {"sub": actor.principal.id, "name": actor.principal.name}
            act["kind"] = actor.principal.kind.value
            act["cid"] = actor.credential_id
            if actor.scopes is not None:
                act["scope"] = " ".join(actor.scopes)
            if actor_family is not None:
                act["fam"] = actor_family
            claims["act"] = act
        return self._keys.signer().sign(claims), max(expires - issued, 0)

    def issue_with_refresh(
        self,
        tx: UnitOfWork,
        authenticated: Authenticated,
        *,
        tenant: Tenant,
        family: str | None = None,
        session_ends: datetime | None = None,
    ) -> IssuedTokens:
        """An access token and a new refresh token (of ``family``, or a new family), neither
        outliving the session: ``session_ends`` (a rotation hands its token's on), else
        ``sessionLifetime`` from now."""
        now = self._clock.now()
        family = family or new_id("fam")
        session_ends = session_ends or now + self.settings.session_lifetime
        secret = new_secret_token(REFRESH_PREFIX)
        principal = authenticated.principal
        tx.refresh_tokens.create(
            RefreshToken(
                id=new_id("rtk"),
                tenant_id=tenant.id,
                principal_id=principal.id,
                family_id=family,
                token_hash=self._hasher.digest(secret),
                scopes=authenticated.scopes,
                created_at=now,
                expires_at=min(now + self.settings.refresh_ttl, session_ends),
                session_ends_at=session_ends,
            )
        )
        grace = self.settings.refresh_ttl
        tx.refresh_tokens.forget_expired(before=now - grace, limit=FORGET_PER_ISSUE)
        access, seconds = self.access_token(
            Authenticated(principal, family, authenticated.method, authenticated.scopes),
            tenant=tenant,
            now=now,
            not_after=session_ends,
            family=family,
        )
        return IssuedTokens(access, seconds, authenticated.scopes, secret)

    def start_session(self, tx: UnitOfWork, principal: Principal, tenant: Tenant) -> IssuedTokens:
        """A new session (refresh-token family) and its first tokens, for a person who just
        proved their password, in ``tx`` (`LoginService`: the transaction that saw that the
        password is still the one checked). Call `warm` before ``tx`` opens."""
        issued = self.issue_with_refresh(
            tx, Authenticated(principal, "password", "password", None), tenant=tenant
        )
        record(
            tx,
            action="token.issue",
            tenant=tenant.name,
            now=self._clock.now(),
            actor=actor_of(principal, via="login"),
            resource={"type": principal.kind.value, "id": principal.name},
            details={"grant": "password"},
        )
        return issued

    def client_credentials(self, client: Authenticated, *, scope: str | None) -> IssuedTokens:
        """RFC 6749 section 4.4: an access token for a service account or agent; no refresh.
        It expires no later than the client's API key."""
        if client.principal.kind is PrincipalKind.USER:
            raise AuthenticationError("client_is_a_user")
        scopes = narrow(scope, client.scopes)
        now = self._clock.now()
        if client.expires_at is not None and now >= client.expires_at:
            raise AuthenticationError("expired_key")
        self._keys.signer()  # (re)load the keys before the transaction opens
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get(client.principal.tenant_id)
            narrowed = Authenticated(
                client.principal, client.credential_id, "client_credentials", scopes
            )
            token, seconds = self.access_token(
                narrowed, tenant=tenant, now=now, not_after=client.expires_at
            )
            record(
                tx,
                action="token.issue",
                tenant=tenant.name,
                now=now,
                actor=actor_of(client.principal, via="oauth"),
                resource={"type": client.principal.kind.value, "id": client.principal.name},
                details={"grant": "client_credentials", "scopes": list(scopes or ())},
            )
        return IssuedTokens(token, seconds, scopes)

    def refresh(self, presented: str, *, scope: str | None) -> IssuedTokens:
        """Rotate a refresh token. A used one presented again revokes its family (audited)."""
        self._keys.signer()  # (re)load the keys before the transaction opens
        now = self._clock.now()
        reason: str | None = None
        epoch: int | None = None
        issued: IssuedTokens | None = None
        with self._storage.transaction() as tx:
            token = tx.refresh_tokens.find_by_hash(self._hasher.digest(presented))
            if token is None:
                raise AuthenticationError("unknown_refresh_token")
            tenant = tx.tenants.get(token.tenant_id)
            principal = tx.principals.get(token.tenant_id, token.principal_id)
            revokes = False
            if token.revoked_at is not None:
                reason = "revoked_refresh_token"
            elif token.used_at is not None or not tx.refresh_tokens.mark_used(token.id, at=now):
                reason, revokes = "refresh_token_reuse", True
            elif family_revoked(tx, token.family_id):
                # Read after taking the token, so any revocation of the family committed by
                # then is seen. One committing later marks this token (its UPDATE waits for
                # ours), so the successor issued here, which it may not see, is refused by this
                # check at its own refresh: a revoked family never rotates on.
                reason, revokes = "revoked_refresh_token", True
            elif token.session_ends_at is not None and now >= token.session_ends_at:
                reason = "session_expired"  # sessionLifetime: the person logs in again
            elif now >= token.expires_at:
                reason = "expired_refresh_token"
            elif principal.disabled or tx.tenant_states.get(tenant.id).disabled:
                reason = "disabled_principal"
            if reason is not None:
                if revokes:
                    self._revoke_family(tx, token, now)
                    epoch = self._revoker.bump(tx)
                self._audit_refresh(tx, tenant, principal, token, now, reason)
            else:
                scopes = narrow(scope, token.scopes)
                held = Authenticated(principal, token.family_id, "refresh_token", scopes)
                issued = self.issue_with_refresh(
                    tx,
                    held,
                    tenant=tenant,
                    family=token.family_id,
                    session_ends=token.session_ends_at,
                )
                self._audit_refresh(tx, tenant, principal, token, now, None)
        if reason is not None:
            if epoch is not None:
                self._revoker.announce(epoch)
            raise AuthenticationError(reason)
        assert issued is not None
        return issued

    def _revoke_family(self, tx: UnitOfWork, token: RefreshToken, now: datetime) -> None:
        self.sessions.revoke_family(tx, token.tenant_id, token.family_id, now=now)

    def _audit_refresh(
        self,
        tx: UnitOfWork,
        tenant: Tenant,
        principal: Principal,
        token: RefreshToken,
        now: datetime,
        reason: str | None,
    ) -> None:
        details: dict[str, Any] = {"grant": "refresh_token", "family": token.family_id}
        if reason is not None:
            details["reason"] = reason
        if reason == "refresh_token_reuse":
            details["familyRevoked"] = True
        record(
            tx,
            action="token.refresh",
            outcome="success" if reason is None else "failure",
            tenant=tenant.name,
            now=now,
            actor=actor_of(principal, via="oauth"),
            resource={"type": "refreshtoken", "id": token.id},
            details=details,
        )

    def revoke_refresh(self, presented: str, *, owner: Principal | None) -> bool:
        """RFC 7009: revoke the family of a refresh token (its owner's, when ``owner`` is set)."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            token = tx.refresh_tokens.find_by_hash(self._hasher.digest(presented))
            if token is None or (owner is not None and token.principal_id != owner.id):
                return False
            self._revoke_family(tx, token, now)
            epoch = self._revoker.bump(tx)
            tenant = tx.tenants.get(token.tenant_id)
            principal = tx.principals.get(token.tenant_id, token.principal_id)
            record(
                tx,
                action="token.revoke",
                tenant=tenant.name,
                now=now,
                actor=actor_of(principal, via="oauth"),
                resource={"type": "refreshtoken", "id": token.id},
                details={"family": token.family_id},
            )
        self._revoker.announce(epoch)
        return True

    def revoke_access(self, claims: dict[str, Any], *, actor: dict[str, Any]) -> None:
        """Revoke one access token by its verified claims until it would have expired."""
        now = self._clock.now()
        expires = datetime.fromtimestamp(float(claims["exp"]), tz=now.tzinfo)
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(str(claims["tid"]))
            remember_revoked(tx, RevokedToken(str(claims["jti"]), tenant.id, expires, now))
            epoch = self._revoker.bump(tx)
            record(
                tx,
                action="token.revoke",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource={"type": "accesstoken", "id": str(claims["jti"])},
            )
        self._revoker.announce(epoch)
