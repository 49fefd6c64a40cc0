"""Bearer JWTs from an external issuer (``security.authentication.jwt``).

Keys come from the issuer's JWKS, cached for ``jwksCacheTtl``; a token naming an unknown
``kid`` triggers at most one refetch per ``jwksRefetchCooldown``, so a flood of made-up kids
cannot turn bastion into a request amplifier. The fetch happens in `prepare`, which the caller
runs before it opens its database transaction: an HTTP round trip to the issuer must never run
while a transaction holds the database's write lock (SQLite's BEGIN IMMEDIATE), and `verify`
only ever reads the keys `prepare` left. Each key's algorithms are pinned from the key
(its ``alg``, else its type) within the configured list — never from the token header.
Claims map to bastion's nouns: the subject claim names the user (created on first sight when
``autoProvision`` is on), the groups claim sets its memberships of existing groups, and the
tenant claim (or the default tenant) says where it lives. External tokens carry no scopes of
their own: they act with the roles bound to the user and its groups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bastion.backends.protocols import UnitOfWork
from bastion.core.ids import new_id
from bastion.core.model import Principal, PrincipalKind, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.crypto.jwt import (
    InvalidJwtError,
    PinnedKey,
    check_claims,
    pinned_from_jwk,
    split_compact,
    verify_jwt,
)
from bastion.errors import AuthenticationError, NotFoundError, RequestRejectedError, StorageError
from bastion.services.authn import Authenticated
from bastion.services.changes import plain_name
from bastion.services.clock import Clock
from bastion.services.directory import record
from bastion.services.revocation import RevocationState
from bastion.services.subject_bindings import forget_stale
from bastion.services.verified_cache import Prechecked, Verified, VerifiedCache


class JwksFetcher(Protocol):
    def fetch(self, uri: str) -> dict[str, Any]:
        """The JWKS document; `StorageError` when it cannot be had."""


@dataclass(frozen=True, slots=True)
class ExternalJwtSettings:
    issuer: str
    audience: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    leeway_seconds: float
    subject_claim: str
    groups_claim: str | None
    tenant_claim: str | None
    default_tenant: str
    cache_ttl_seconds: float
    refetch_cooldown_seconds: float
    auto_provision: bool


class ExternalJwtVerifier:
    writes = True  # verify may provision the user and sync its groups from the claims

    def __init__(
        self,
        *,
        settings: ExternalJwtSettings,
        fetcher: JwksFetcher,
        clock: Clock,
        state: RevocationState,
        monotonic: Callable[[], float] = time.monotonic,
        cache_capacity: int = 10_000,
    ) -> None:
        self._settings = settings
        self.issuer = settings.issuer
        self._fetcher = fetcher
        self._clock = clock
        self._state = state
        self._monotonic = monotonic
        self._keys: dict[str, PinnedKey] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._cache: VerifiedCache[str, Authenticated] = VerifiedCache(cache_capacity)
        self._prechecked: Prechecked[dict[str, Any]] = Prechecked()

    def prepare(self, presented: str) -> None:
        """Before the caller's transaction: refetch the JWKS when stale, or (rate-limited) when
        ``presented`` names an unknown ``kid`` (network I/O, never inside a transaction); then
        check the signature and claims of a token not seen before, so a forged or expired one
        is refused without a unit of work. The verified claims wait in this thread for
        `verify`, which does not check the signature again."""
        self._prechecked.put(presented, None)
        if presented in self._cache:
            return
        try:
            header, _ = split_compact(presented)
        except InvalidJwtError as exc:
            raise AuthenticationError(exc.reason) from None
        kid = header.get("kid")
        settings = self._settings
        if self._monotonic() - self._fetched_at >= min(
            settings.cache_ttl_seconds, settings.refetch_cooldown_seconds
        ):
            with self._lock:
                age = self._monotonic() - self._fetched_at
                known = isinstance(kid, str) and kid in self._keys
                if age >= settings.cache_ttl_seconds or (
                    not known and age >= settings.refetch_cooldown_seconds
                ):
                    self._refetch()
        key = self.key_for(kid)
        if key is None:
            return  # verify refuses it (unknown_kid)
        try:
            claims = self._verified(presented, key, now=self._clock.now())
        except InvalidJwtError as exc:
            raise AuthenticationError(exc.reason) from None
        self._prechecked.put(presented, claims)

    def seen(self, presented: str) -> bool:
        return presented in self._cache

    def key_for(self, kid: object) -> PinnedKey | None:
        """The pinned key named ``kid`` among those fetched; never fetches."""
        return self._keys.get(kid) if isinstance(kid, str) else None

    def _refetch(self) -> None:
        self._fetched_at = self._monotonic()
        try:
            document = self._fetcher.fetch(self._settings.jwks_uri)
        except StorageError:
            return  # keep the keys we had; the next refetch waits for the cooldown
        keys: dict[str, PinnedKey] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            try:
                pinned = pinned_from_jwk(jwk, allowed=self._settings.algorithms)
            except InvalidJwtError:
                continue
            keys[pinned.kid] = pinned
        self._keys = keys

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated:
        epoch = self._state.sync(tx)
        now = self._clock.now()
        hit = self._cache.get(presented, epoch=epoch, now=now)
        if hit is not None:
            return hit.value
        settings = self._settings
        prechecked = self._prechecked.take(presented)
        try:
            if prechecked is not None:  # signature checked by `prepare`; claims again, as of now
                claims = prechecked
                check_claims(
                    claims,
                    issuer=settings.issuer,
                    audience=settings.audience,
                    now=now,
                    leeway_seconds=settings.leeway_seconds,
                )
            else:
                header, _ = split_compact(presented)
                key = self.key_for(header.get("kid"))
                if key is None:
                    raise InvalidJwtError("unknown_kid")
                claims = self._verified(presented, key, now=now)
        except InvalidJwtError as exc:
            raise AuthenticationError(exc.reason) from None
        principal = self._principal(tx, claims, now)
        authenticated = Authenticated(principal, f"jwt:{settings.issuer}", "external_jwt", None)
        expires = datetime.fromtimestamp(float(claims["exp"]), tz=UTC)
        self._cache.put(presented, Verified(authenticated, epoch, expires))
        return authenticated

    def _verified(self, presented: str, key: PinnedKey, *, now: datetime) -> dict[str, Any]:
        settings = self._settings
        return verify_jwt(
            presented,
            key,
            issuer=settings.issuer,
            audience=settings.audience,
            now=now,
            leeway_seconds=settings.leeway_seconds,
        )

    def _principal(self, tx: UnitOfWork, claims: dict[str, Any], now: datetime) -> Principal:
        settings = self._settings
        subject = claims.get(settings.subject_claim)
        if not isinstance(subject, str) or not canonical_name(subject):
            raise AuthenticationError("missing_subject")
        tenant_name = settings.default_tenant
        if settings.tenant_claim is not None:
            claimed = claims.get(settings.tenant_claim)
            if not isinstance(claimed, str):
                raise AuthenticationError("missing_tenant")
            tenant_name = canonical_name(claimed)
        try:
            tenant = tx.tenants.get_by_name(tenant_name)
        except NotFoundError:
            raise AuthenticationError("unknown_tenant") from None
        if tx.tenant_states.get(tenant.id).disabled:
            raise AuthenticationError("disabled_tenant")
        name = canonical_name(subject)
        try:
            principal = tx.principals.get_by_name(tenant.id, name)
        except NotFoundError:
            if not settings.auto_provision:
                raise AuthenticationError("unknown_principal") from None
            principal = self._provision(tx, tenant, name, now)
        if principal.kind is not PrincipalKind.USER:
            raise AuthenticationError("subject_is_not_a_user")
        if principal.disabled:
            raise AuthenticationError("disabled_principal")
        if settings.groups_claim is not None:
            self._sync_groups(tx, tenant, principal, claims.get(settings.groups_claim), now)
        return principal

    def _provision(self, tx: UnitOfWork, tenant: Tenant, name: str, now: datetime) -> Principal:
        # The issuer vouches for who the subject is, not for bastion's rules of a name: one
        # with a control character (NUL too), a slash or over 254 characters is no user here.
        try:
            plain_name(name, "user")
        except RequestRejectedError:
            raise AuthenticationError("invalid_subject") from None
        principal = Principal(new_id("usr"), tenant.id, PrincipalKind.USER, name, now)
        tx.principals.create(principal)
        # As for any new principal: bindings an older bastion left under the name are not its.
        details = {"provisioned": "jwt", **forget_stale(tx, tenant.id, SubjectType.USER, name)}
        actor = {"type": "issuer", "id": self._settings.issuer, "via": "jwt"}
        record(
            tx,
            action="user.create",
            tenant=tenant.name,
            now=now,
            actor=actor,
            resource={"type": "user", "id": name},
            details=details,
        )
        return principal

    def _sync_groups(
        self, tx: UnitOfWork, tenant: Tenant, principal: Principal, claimed: object, now: datetime
    ) -> None:
        """Memberships of existing groups follow the claim (groups are never created here)."""
        names = (
            {canonical_name(g) for g in claimed if isinstance(g, str)}
            if isinstance(claimed, list)
            else set()
        )
        groups = {g.name: g for g in tx.groups.list(tenant.id)}
        current = set(tx.groups.groups_of(tenant.id, principal.id))
        wanted = {n for n in names if n in groups}
        for name in sorted(wanted - current):
            tx.groups.add_member(tenant.id, groups[name].id, principal.id, at=now)
        for name in sorted(current - wanted):
            tx.groups.remove_member(tenant.id, groups[name].id, principal.id)
        if wanted != current:
            actor = {"type": "issuer", "id": self._settings.issuer, "via": "jwt"}
            details = {"groups": sorted(wanted)}
            record(
                tx,
                action="user.groups.sync",
                tenant=tenant.name,
                now=now,
                actor=actor,
                resource={"type": "user", "id": principal.name},
                details=details,
            )
