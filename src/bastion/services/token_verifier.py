"""Bearer JWTs: bastion's own access tokens and, when configured, an external issuer's.

`JwtBearerVerifier` routes a JWT-shaped credential by its (unverified) ``iss`` to the verifier
that then verifies everything with its own pinned keys; a token of any other issuer is refused.
A token verified before is served from a bounded cache until it expires — or the API key it
was minted from does, or its retired signing key leaves the JWKS — or the revocation epoch
moves; a miss checks the signature, that the signing key may still vouch for it, the claims,
the revoked-token list (its ``jti``, its refresh family and its actor's) and that its
principal (and ``act`` actor), their API keys and tenant are still enabled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from bastion.backends.protocols import UnitOfWork
from bastion.core.apikeys import API_KEY_ID_PREFIX
from bastion.core.rbac import parse_scopes
from bastion.crypto.jwt import (
    InvalidJwtError,
    PinnedKey,
    check_claims,
    split_compact,
    unverified_claims,
    verify_jwt,
)
from bastion.errors import AuthenticationError, NotFoundError
from bastion.services.authn import Authenticated
from bastion.services.clock import Clock
from bastion.services.revocation import RevocationState
from bastion.services.sessions import FAMILY_JTI
from bastion.services.signing_keys import SigningKeys
from bastion.services.verified_cache import Prechecked, Verified, VerifiedCache

# Bastion's own tokens: replicas' clocks may differ a little, never by a minute.
OWN_LEEWAY_SECONDS = 5.0


def looks_like_jwt(presented: str) -> bool:
    return presented.startswith("eyJ") and presented.count(".") == 2


def scopes_of(claims: dict[str, Any]) -> tuple[str, ...] | None:
    raw = claims.get("scope")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise AuthenticationError("malformed_scope")
    try:
        return parse_scopes(raw.split())
    except ValueError:
        raise AuthenticationError("malformed_scope") from None


class IssuerVerifier(Protocol):
    issuer: str
    # Whether verify may write (an external issuer provisions users and syncs groups).
    writes: bool

    def prepare(self, presented: str) -> None:
        """Work before the caller's transaction opens (network I/O, signature checks); may
        refuse the token (`AuthenticationError`); verify needs it done."""

    def seen(self, presented: str) -> bool:
        """True when ``presented`` is in the verified-token cache (its key was known)."""

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated: ...


class IssuedTokenVerifier:
    """Verifies access tokens bastion signed (`bastion.services.tokens`)."""

    writes = False  # revoked-token list, principal, tenant and signing keys are only read

    def __init__(
        self,
        *,
        keys: SigningKeys,
        clock: Clock,
        issuer: str,
        state: RevocationState,
        cache_capacity: int = 10_000,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self.issuer = issuer
        self._state = state
        self._cache: VerifiedCache[str, tuple[Authenticated, dict[str, Any]]] = VerifiedCache(
            cache_capacity
        )
        self._prechecked: Prechecked[tuple[object, dict[str, Any]]] = Prechecked()

    def prepare(self, presented: str) -> None:
        """Before the transaction: a token not seen before, signed by a key this process
        holds, has its signature and claims checked here, so a forged or expired one is
        refused without a unit of work (and never holds the write lock for a signature
        check). The verified claims wait in this thread for `verify_claims`, which then does
        not check the signature again; a key not yet held is read through the transaction."""
        self._prechecked.put(presented, None)
        if presented in self._cache:
            return
        try:
            header, _ = split_compact(presented)
            key = self._keys.known_key(header.get("kid"))
            if key is None:
                return
            claims = self._verified(presented, key, now=self._clock.now())
        except InvalidJwtError as exc:
            raise AuthenticationError(exc.reason) from None
        self._prechecked.put(presented, (header.get("kid"), claims))

    def seen(self, presented: str) -> bool:
        return presented in self._cache

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated:
        return self.verify_claims(tx, presented)[0]

    def verify_claims(self, tx: UnitOfWork, presented: str) -> tuple[Authenticated, dict[str, Any]]:
        """The principal and the verified claims of one of bastion's access tokens."""
        epoch = self._state.sync(tx)
        now = self._clock.now()
        hit = self._cache.get(presented, epoch=epoch, now=now)
        if hit is not None:
            return hit.value
        prechecked = self._prechecked.take(presented)
        try:
            if prechecked is not None:  # signature checked by `prepare`; claims again, as of now
                kid, claims = prechecked
                check_claims(
                    claims,
                    issuer=self.issuer,
                    audience=self.issuer,
                    now=now,
                    leeway_seconds=OWN_LEEWAY_SECONDS,
                )
            else:
                header, _ = split_compact(presented)
                kid = header.get("kid")
                key = self._keys.verification_key(kid, tx)
                if key is None:
                    raise InvalidJwtError("unknown_kid")
                claims = self._verified(presented, key, now=now)
            vouched = self._keys.vouched_until(
                kid, claims, tx, now=now, epoch=epoch, leeway_seconds=OWN_LEEWAY_SECONDS
            )
        except InvalidJwtError as exc:
            raise AuthenticationError(exc.reason) from None
        authenticated = self._authenticated(tx, claims, now=now, vouched=vouched)
        self._cache.put(
            presented, Verified((authenticated, claims), epoch, authenticated.expires_at)
        )
        return authenticated, claims

    def _verified(self, presented: str, key: PinnedKey, *, now: datetime) -> dict[str, Any]:
        return verify_jwt(
            presented,
            key,
            issuer=self.issuer,
            audience=self.issuer,
            now=now,
            leeway_seconds=OWN_LEEWAY_SECONDS,
        )

    def _authenticated(
        self, tx: UnitOfWork, claims: dict[str, Any], *, now: datetime, vouched: datetime | None
    ) -> Authenticated:
        """Who the verified ``claims`` name, if every credential they come from still stands;
        valid until the earliest of the token's ``exp``, ``vouched`` (a retired signing key's
        end) and the expiry of the API keys it was minted from (its ``cid`` and ``act.cid``)."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or tx.revocations.is_token_revoked(jti):
            raise AuthenticationError("revoked_token")
        _session_alive(tx, claims.get("fam"))
        sources = claims.get("src", [])
        if not isinstance(sources, list) or any(
            not isinstance(s, str) or tx.revocations.is_token_revoked(s) for s in sources
        ):
            raise AuthenticationError("revoked_token")  # the token it was exchanged from
        tenant_name = claims.get("tid")
        try:
            tenant = tx.tenants.get_by_name(str(tenant_name))
        except NotFoundError:
            raise AuthenticationError("unknown_principal") from None
        if tx.tenant_states.get(tenant.id).disabled:
            raise AuthenticationError("disabled_tenant")
        ends = [datetime.fromtimestamp(float(claims["exp"]), tz=UTC), vouched]
        ends.append(_key_alive(tx, tenant.id, claims.get("cid"), now))
        principal = _enabled(tx, tenant.id, claims.get("sub"))
        actor = None
        act = claims.get("act")
        if act is not None:
            if not isinstance(act, dict):
                raise AuthenticationError("malformed_act")
            _session_alive(tx, act.get("fam"))
            ends.append(_key_alive(tx, tenant.id, act.get("cid"), now))
            actor = Authenticated(
                _enabled(tx, tenant.id, act.get("sub")), "act", "delegation", scopes_of(act)
            )
        return Authenticated(
            principal,
            str(claims.get("cid", jti)),
            "bearer_jwt",
            scopes_of(claims),
            actor,
            expires_at=min(e for e in ends if e is not None),
            reusable=True,
        )


def _session_alive(tx: UnitOfWork, family: object) -> None:
    """A token of a login (its subject's ``fam``, or its actor's ``act.fam``) dies with the
    session: logout, reuse of a refresh token, a new password."""
    if isinstance(family, str) and tx.revocations.is_token_revoked(FAMILY_JTI + family):
        raise AuthenticationError("revoked_token")


def _key_alive(
    tx: UnitOfWork, tenant_id: str, credential_id: object, now: datetime
) -> datetime | None:
    """A token minted with an API key (client credentials, or an actor's key in an exchange)
    dies with the key: revoked, expired or deleted, it is `revoked_key` on the next request.
    When the key will expire (None: it does not, or the credential is no key), so that a
    cached verification ends then too (a rotation's old key at the end of its grace)."""
    if not isinstance(credential_id, str) or not credential_id.startswith(API_KEY_ID_PREFIX):
        return None
    try:
        key = tx.api_keys.get(tenant_id, credential_id)
    except NotFoundError:
        raise AuthenticationError("revoked_key") from None
    if not key.is_active(now):
        raise AuthenticationError("revoked_key")
    return key.expires_at


def _enabled(tx: UnitOfWork, tenant_id: str, principal_id: object) -> Any:
    try:
        principal = tx.principals.get(tenant_id, str(principal_id))
    except NotFoundError:
        raise AuthenticationError("unknown_principal") from None
    if principal.disabled:
        raise AuthenticationError("disabled_principal")
    return principal


class JwtBearerVerifier:
    """The credential verifier for JWTs: routes by issuer, never guesses."""

    def __init__(self, verifiers: list[IssuerVerifier]) -> None:
        self._by_issuer = {v.issuer: v for v in verifiers}
        self._verifiers = tuple(verifiers)

    def accepts(self, presented: str) -> bool:
        return looks_like_jwt(presented)

    def screen(self, presented: str) -> None:
        """Refuse, without I/O, a token that does not parse or names no configured issuer."""
        if not any(v.seen(presented) for v in self._verifiers):
            self._verifier_for(presented)

    def prepare(self, presented: str) -> None:
        """Let the token's issuer do its work before the transaction: an external issuer
        fetches its JWKS, bastion's own checks the signature (`IssuedTokenVerifier.prepare`)."""
        if any(v.seen(presented) for v in self._verifiers):
            return  # a token seen before needs no key it did not have: no parsing on that path
        try:
            verifier = self._verifier_for(presented)
        except AuthenticationError:
            return  # verify refuses it with the reason
        verifier.prepare(presented)

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated:
        return self._verifier_for(presented).verify(tx, presented)

    def writes(self, presented: str) -> bool:
        """Whether the token's issuer may write to verify it (a token that names none is
        refused by `verify` without a write)."""
        if not any(v.writes for v in self._verifiers):
            return False
        try:
            return self._verifier_for(presented).writes
        except AuthenticationError:
            return False

    def _verifier_for(self, presented: str) -> IssuerVerifier:
        try:
            issuer = unverified_claims(presented).get("iss")
        except InvalidJwtError as exc:
            raise AuthenticationError(exc.reason) from None
        verifier = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if verifier is None:
            raise AuthenticationError("unknown_issuer")
        return verifier
