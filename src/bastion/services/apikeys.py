"""API keys: issue (shown once), list, rotate, revoke, and authenticate a presented key.

Authentication runs on every proxied request, so a verified key is cached (bounded, keyed by
its keyed hash) until it expires or the revocation epoch moves (`bastion.services.revocation`).
Verifying only reads: a key's last-used time is noted and written afterwards, at most once a
minute per key, by `ApiKeyService.settle`, so requests are identified in read-only units of work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.apikeys import (
    API_KEY_LENGTH,
    API_KEY_PREFIX,
    display_prefix,
    is_well_formed_api_key,
)
from bastion.core.ids import new_id
from bastion.core.model import ApiKey, Principal, Tenant
from bastion.core.rbac import parse_scopes
from bastion.crypto.keys import CacheKeyer, KeyedHasher, new_api_key
from bastion.errors import (
    AuthenticationError,
    NotFoundError,
    RequestRejectedError,
    StorageError,
)
from bastion.services.apikey_names import (
    check_key_name,
    find_key,
    first_admin,
    is_replaced,
    replaced_name,
    retired_name,
)
from bastion.services.audit import append_events, build_event
from bastion.services.authn import Authenticated
from bastion.services.changes import unique
from bastion.services.clock import Clock
from bastion.services.lookups import get_any_principal, get_tenant
from bastion.services.revocation import NullBroadcast, RevocationState, Revoker
from bastion.services.verified_cache import Verified, VerifiedCache

# A key's last-used time is written at most this often, so that use does not mean a write.
TOUCH_INTERVAL_SECONDS = 60
TOUCH_INTERVAL = timedelta(seconds=TOUCH_INTERVAL_SECONDS)
MAX_GRACE = timedelta(days=30)
# `Authenticated.method` of a caller that presented an API key itself (a token minted with the
# key carries the key's id as its credential id too, but another method).
API_KEY_METHOD = "api_key"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored
    owner: str  # the owning principal's name


@dataclass(frozen=True, slots=True)
class KeyListing:
    key: ApiKey
    owner: str


class ApiKeyService:
    def __init__(
        self,
        *,
        storage: Storage,
        hasher: KeyedHasher,
        clock: Clock,
        revoker: Revoker | None = None,
        cache_capacity: int = 10_000,
    ) -> None:
        self._storage = storage
        self._hasher = hasher
        self._clock = clock
        self._revoker = revoker or Revoker(RevocationState(), NullBroadcast())
        self._state = self._revoker.state
        # Cache keys are keyed BLAKE2b under a per-process key (cheaper than the pepper's
        # HMAC-SHA256, which is kept for the stored hashes).
        self._keyer = CacheKeyer()
        self._cache: VerifiedCache[bytes, Authenticated] = VerifiedCache(cache_capacity)
        # Last-used times `verify` noted and no unit of work has written yet, by key id.
        self._uses: dict[str, datetime] = {}
        self._uses_lock = threading.Lock()

    def issue(
        self,
        tx: UnitOfWork,
        *,
        tenant: Tenant,
        owner: Principal,
        name: str,
        scopes: list[str] | tuple[str, ...],
        expires_at: datetime | None,
        actor: dict[str, Any],
        action: str = "apikey.create",
        details: dict[str, Any] | None = None,
    ) -> IssuedKey:
        """Create a key inside the caller's transaction, with its ``apikey.create`` event."""
        now = self._clock.now()
        try:
            parsed_scopes = parse_scopes(scopes)
        except ValueError as exc:
            raise RequestRejectedError(str(exc)) from None
        if expires_at is not None and expires_at.tzinfo is None:
            raise RequestRejectedError("the expiry needs a UTC offset, e.g. 2030-01-01T00:00:00Z")
        if expires_at is not None and expires_at <= now:
            raise RequestRejectedError("the expiry must be in the future")
        name = check_key_name(name)
        secret = new_api_key()
        key = ApiKey(
            id=new_id("key"),
            tenant_id=tenant.id,
            principal_id=owner.id,
            name=name,
            prefix=display_prefix(secret),
            key_hash=self._hasher.digest(secret),
            scopes=parsed_scopes,
            created_at=now,
            expires_at=expires_at,
        )
        with unique(f"an API key named {key.name} already exists"):
            tx.api_keys.create(key)
        event_details = {"name": key.name, "prefix": key.prefix, "scopes": list(parsed_scopes)}
        if expires_at is not None:
            event_details["expires"] = expires_at.isoformat()
        event_details.update(details or {})
        resource = {"type": "apikey", "id": key.id, "owner": owner.name}
        _record(tx, action, tenant, now, actor, resource, event_details)
        return IssuedKey(key, secret, owner.name)

    def create(
        self,
        *,
        tenant_name: str,
        owner_name: str | None,
        name: str,
        scopes: list[str] | tuple[str, ...],
        expires_at: datetime | None,
        actor: dict[str, Any],
    ) -> IssuedKey:
        """Create a key owned by ``owner_name`` (None: the tenant's first admin)."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            owner = (
                first_admin(tx, tenant)
                if owner_name is None
                else get_any_principal(tx, tenant, owner_name)
            )
            return self.issue(
                tx,
                tenant=tenant,
                owner=owner,
                name=name,
                scopes=scopes,
                expires_at=expires_at,
                actor=actor,
            )

    def list(
        self, *, tenant_name: str, after: str | None = None, limit: int | None = None
    ) -> list[KeyListing]:
        """The tenant's keys by name with their owners' names: those named after ``after``,
        at most ``limit`` (a page of the admin API), else all of them."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            keys = tx.api_keys.page(tenant.id, after=after, limit=limit)
            owners = tx.principals.by_ids(tenant.id, {k.principal_id for k in keys})
            return [
                KeyListing(k, owners[k.principal_id].name if k.principal_id in owners else "?")
                for k in keys
            ]

    def revoke(self, *, tenant_name: str, reference: str, actor: dict[str, Any]) -> ApiKey:
        """Revoke the key named by id, display prefix or name, with its ``apikey.revoke`` event.
        A key revoked before is returned as it is (its ``revoked_at`` unchanged), with no event:
        nothing changed."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            found = find_key(tx, tenant, reference, digest=self._hasher.digest)
            if found.revoked_at is not None:
                return found
            revoked = tx.api_keys.revoke(tenant.id, found.id, at=now)
            epoch = self._revoker.bump(tx)
            resource = {"type": "apikey", "id": revoked.id}
            details = {"name": revoked.name, "prefix": revoked.prefix}
            _record(tx, "apikey.revoke", tenant, now, actor, resource, details)
        self._revoker.announce(epoch)
        return revoked

    def rotate(
        self,
        *,
        tenant_name: str,
        reference: str,
        grace: timedelta,
        actor: dict[str, Any],
        owner_id: str | None = None,
        check: Callable[[UnitOfWork, Tenant, ApiKey, Principal], None] | None = None,
    ) -> IssuedKey:
        """A new key with the same owner, scopes, name and expiry; the old one keeps working
        for ``grace`` (at most 30 days), then expires. ``owner_id`` restricts to one owner;
        ``check`` sees the key and its owner first (in the transaction) and raises to refuse
        the rotation."""
        if grace < timedelta(0) or grace > MAX_GRACE:
            raise RequestRejectedError("the grace period must be between 0 and 30 days")
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            old = find_key(tx, tenant, reference, digest=self._hasher.digest)
            if owner_id is not None and old.principal_id != owner_id:
                raise NotFoundError(f"no API key {reference!r} of yours")
            if not old.is_active(now):
                raise RequestRejectedError("only an active key can be rotated")
            if is_replaced(old):
                # Its replacement would expire with it, at the end of its grace period.
                raise RequestRejectedError(
                    f"key {old.id} was already replaced by a rotation; rotate its replacement,"
                    f" {replaced_name(old)}"
                )
            owner = tx.principals.get(tenant.id, old.principal_id)
            if check is not None:
                check(tx, tenant, old, owner)
            retired = tx.api_keys.retire(
                tenant.id, old.id, expires_at=now + grace, name=retired_name(old)
            )
            issued = self.issue(
                tx,
                tenant=tenant,
                owner=owner,
                name=old.name,
                scopes=old.scopes,
                expires_at=old.expires_at,
                actor=actor,
                action="apikey.rotate",
                details={"replaces": old.id, "graceUntil": (now + grace).isoformat()},
            )
            epoch = self._revoker.bump(tx)
        self._revoker.announce(epoch)
        assert retired.expires_at is not None
        return issued

    def accepts(self, presented: str) -> bool:
        return presented.startswith(API_KEY_PREFIX)

    def screen(self, presented: str) -> None:
        """`malformed_key` unless ``presented`` has a key's length, alphabet and checksum."""
        self._screened(presented)

    def _screened(self, presented: str) -> bytes:
        """The cache key of a well-formed key; `malformed_key` for anything else, before the
        database is touched at all. A cached key was well formed when it was stored, and only
        that exact key has its keyed hash, so the checksum is not recomputed for one."""
        if len(presented) != API_KEY_LENGTH:
            raise AuthenticationError("malformed_key")
        cache_key = self._keyer.key(presented)
        if cache_key not in self._cache and not is_well_formed_api_key(presented):
            raise AuthenticationError("malformed_key")
        return cache_key

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated:
        """The principal behind a presented key; `AuthenticationError` with the real reason.

        The hot path (a key seen before, epoch unchanged, not expired) is a checksum, one HMAC
        and one dictionary look-up; nothing is read from ``tx`` unless the revocation epoch
        must be (see `bastion.services.revocation`).
        """
        cache_key = self._screened(presented)
        epoch = self._state.sync(tx)
        now = self._clock.now()
        hit = self._cache.get(cache_key, epoch=epoch, now=now)
        if hit is not None:
            if hit.touched_at is None or now >= hit.touched_at:
                self._note_use(hit.value.credential_id, now)
                hit.touched_at = now + TOUCH_INTERVAL
            return hit.value
        key = tx.api_keys.find_by_hash(self._hasher.digest(presented))
        if key is None:
            raise AuthenticationError("unknown_key")
        if key.revoked_at is not None:
            raise AuthenticationError("revoked_key")
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthenticationError("expired_key")
        principal = tx.principals.get(key.tenant_id, key.principal_id)
        if principal.disabled:
            raise AuthenticationError("disabled_principal")
        if tx.tenant_states.get(key.tenant_id).disabled:
            raise AuthenticationError("disabled_tenant")
        touched = key.last_used_at
        if touched is None or now - touched >= TOUCH_INTERVAL:
            self._note_use(key.id, now)
            touched = now
        authenticated = Authenticated(
            principal, key.id, API_KEY_METHOD, key.scopes, expires_at=key.expires_at, reusable=True
        )
        # ``touched_at`` of a cached entry holds when the next touch is due.
        entry = Verified(authenticated, epoch, key.expires_at, touched + TOUCH_INTERVAL)
        self._cache.put(cache_key, entry)
        return authenticated

    def writes(self, presented: str) -> bool:
        """Verifying a key never writes (last-used times wait for `settle`)."""
        return False

    def settle(self) -> None:
        """Write the last-used times `verify` noted, in a unit of work of their own (at most
        one write per key a minute). A failure is logged and the times are kept for the next
        call: the requests they belong to were decided on what was read."""
        uses = self._take_uses()
        if not uses:
            return
        try:
            with self._storage.transaction() as tx:
                for key_id, at in uses.items():
                    tx.api_keys.touch(key_id, at=at)
        except StorageError as exc:
            log.warning("API key last-used times not written (kept for the next try): %s", exc)
            with self._uses_lock:
                for key_id, at in uses.items():
                    self._uses[key_id] = max(at, self._uses.get(key_id, at))

    def _note_use(self, key_id: str, at: datetime) -> None:
        with self._uses_lock:
            self._uses[key_id] = at

    def _take_uses(self) -> dict[str, datetime]:
        with self._uses_lock:
            uses, self._uses = self._uses, {}
        return uses


def _record(
    tx: UnitOfWork,
    action: str,
    tenant: Tenant,
    now: datetime,
    actor: dict[str, Any],
    resource: dict[str, Any],
    details: dict[str, Any],
) -> None:
    event = build_event(
        action=action,
        outcome="success",
        tenant=tenant.name,
        now=now,
        actor=actor,
        resource=resource,
        details=details,
    )
    append_events(tx, [event])
