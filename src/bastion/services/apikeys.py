"""API keys: issue (shown once), list, revoke, and authenticate a presented key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.apikeys import API_KEY_PREFIX, display_prefix, is_well_formed_api_key
from bastion.core.ids import new_id
from bastion.core.model import ApiKey, Principal, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.core.rbac import parse_scopes, scopes_within
from bastion.crypto.keys import KeyedHasher, new_api_key
from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    NotFoundError,
    RequestRejectedError,
)
from bastion.services.audit import append_events, build_event
from bastion.services.authn import Authenticated
from bastion.services.clock import Clock

# A key's last-used time is written at most this often, so that use does not mean a write.
TOUCH_INTERVAL_SECONDS = 60


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


@dataclass(frozen=True, slots=True)
class KeyListing:
    key: ApiKey
    owner: str


def first_admin(tx: UnitOfWork, tenant: Tenant) -> Principal:
    """The oldest user bound to ``admin`` in the tenant: the default owner of new keys."""
    admins = [
        b
        for b in tx.bindings.list(tenant.id)
        if b.role == "admin" and b.subject_type is SubjectType.USER
    ]
    for binding in sorted(admins, key=lambda b: b.created_at):
        try:
            return tx.principals.get_by_name(tenant.id, binding.subject_name)
        except NotFoundError:
            continue
    raise NotFoundError(f"tenant {tenant.name!r} has no admin user; pass --owner")


class ApiKeyService:
    def __init__(self, *, storage: Storage, hasher: KeyedHasher, clock: Clock) -> None:
        self._storage = storage
        self._hasher = hasher
        self._clock = clock

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
    ) -> IssuedKey:
        """Create a key inside the caller's transaction, with its ``apikey.create`` event."""
        now = self._clock.now()
        try:
            parsed_scopes = parse_scopes(scopes)
        except ValueError as exc:
            raise RequestRejectedError(str(exc)) from None
        if expires_at is not None and expires_at <= now:
            raise RequestRejectedError("the expiry must be in the future")
        if not name.strip():
            raise RequestRejectedError("a key needs a name")
        secret = new_api_key()
        key = ApiKey(
            id=new_id("key"),
            tenant_id=tenant.id,
            principal_id=owner.id,
            name=name.strip(),
            prefix=display_prefix(secret),
            key_hash=self._hasher.digest(secret),
            scopes=parsed_scopes,
            created_at=now,
            expires_at=expires_at,
        )
        tx.api_keys.create(key)
        details = {"name": key.name, "prefix": key.prefix, "scopes": list(parsed_scopes)}
        if expires_at is not None:
            details["expires"] = expires_at.isoformat()
        append_events(
            tx,
            [
                build_event(
                    action="apikey.create",
                    outcome="success",
                    tenant=tenant.name,
                    now=now,
                    actor=actor,
                    resource={"type": "apikey", "id": key.id, "owner": owner.name},
                    details=details,
                )
            ],
        )
        return IssuedKey(key, secret)

    def create(
        self,
        *,
        tenant_name: str,
        owner_name: str | None,
        name: str,
        scopes: list[str] | tuple[str, ...],
        expires_at: datetime | None,
        actor: dict[str, Any],
        within_scopes: tuple[str, ...] | None = None,
    ) -> IssuedKey:
        """Create a key; with ``within_scopes`` (the creator's own credential scopes) its scopes
        must lie inside them, so a narrowed credential cannot mint a wider one."""
        try:
            if not scopes_within(parse_scopes(scopes), within_scopes):
                raise AuthorizationError(("the new key's scopes exceed the caller's own scopes",))
        except ValueError as exc:
            raise RequestRejectedError(str(exc)) from None
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(tenant_name)
            owner = (
                first_admin(tx, tenant)
                if owner_name is None
                else tx.principals.get_by_name(tenant.id, canonical_name(owner_name))
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

    def list(self, *, tenant_name: str) -> list[KeyListing]:
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(tenant_name)
            owners = {p.id: p.name for p in tx.principals.list(tenant.id)}
            return [
                KeyListing(k, owners.get(k.principal_id, "?")) for k in tx.api_keys.list(tenant.id)
            ]

    def revoke(self, *, tenant_name: str, reference: str, actor: dict[str, Any]) -> ApiKey:
        """Revoke the key named by id, display prefix or name, with its ``apikey.revoke`` event."""
        now = self._clock.now()
        with self._storage.transaction() as tx:
            tenant = tx.tenants.get_by_name(tenant_name)
            matches = [
                k for k in tx.api_keys.list(tenant.id) if reference in (k.id, k.prefix, k.name)
            ]
            if not matches:
                raise NotFoundError(f"no API key {reference!r} in tenant {tenant.name!r}")
            if len(matches) > 1:
                raise RequestRejectedError(f"{reference!r} names several keys; use the key id")
            revoked = tx.api_keys.revoke(tenant.id, matches[0].id, at=now)
            append_events(
                tx,
                [
                    build_event(
                        action="apikey.revoke",
                        outcome="success",
                        tenant=tenant.name,
                        now=now,
                        actor=actor,
                        resource={"type": "apikey", "id": revoked.id},
                        details={"name": revoked.name, "prefix": revoked.prefix},
                    )
                ],
            )
            return revoked

    def accepts(self, presented: str) -> bool:
        return presented.startswith(API_KEY_PREFIX)

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated:
        """The principal behind a presented key; `AuthenticationError` with the real reason."""
        if not is_well_formed_api_key(presented):
            raise AuthenticationError("malformed_key")
        key = tx.api_keys.find_by_hash(self._hasher.digest(presented))
        if key is None:
            raise AuthenticationError("unknown_key")
        now = self._clock.now()
        if key.revoked_at is not None:
            raise AuthenticationError("revoked_key")
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthenticationError("expired_key")
        principal = tx.principals.get(key.tenant_id, key.principal_id)
        if principal.disabled:
            raise AuthenticationError("disabled_principal")
        if (
            key.last_used_at is None
            or (now - key.last_used_at).total_seconds() >= TOUCH_INTERVAL_SECONDS
        ):
            tx.api_keys.touch(key.id, at=now)
        return Authenticated(principal, key.id, "api_key", key.scopes)
