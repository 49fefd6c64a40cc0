"""In-memory stores of refresh tokens, registration tokens, signing keys and revocations."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from bastion.backends.memory.audit import utc
from bastion.backends.memory.identity import IdentityTables, forget_soonest
from bastion.core.credentials import RefreshToken, RegistrationToken, RevokedToken, SigningKey
from bastion.core.model import Principal, Tenant
from bastion.errors import ConflictError, NotFoundError


class MemoryRefreshTokenStore:
    def __init__(self, tables: IdentityTables, principals: Mapping[str, Principal]) -> None:
        self._t = tables
        self._principals = principals

    def create(self, token: RefreshToken) -> None:
        owner = self._principals.get(token.principal_id)
        if token.id in self._t.refresh_tokens or any(
            t.token_hash == token.token_hash for t in self._t.refresh_tokens.values()
        ):
            raise ConflictError("create refresh token: a value that must be unique is taken")
        if owner is None or owner.tenant_id != token.tenant_id:
            raise NotFoundError("create refresh token: a row it refers to does not exist")
        self._t.refresh_tokens[token.id] = replace(
            token,
            token_hash=bytes(token.token_hash),
            created_at=utc(token.created_at, "create refresh token"),
            expires_at=utc(token.expires_at, "create refresh token"),
            session_ends_at=None
            if token.session_ends_at is None
            else utc(token.session_ends_at, "create refresh token"),
        )

    def find_by_hash(self, token_hash: bytes) -> RefreshToken | None:
        for token in self._t.refresh_tokens.values():
            if token.token_hash == token_hash:
                return token
        return None

    def mark_used(self, token_id: str, *, at: datetime) -> bool:
        token = self._t.refresh_tokens.get(token_id)
        if token is None or token.used_at is not None or token.revoked_at is not None:
            return False
        self._t.refresh_tokens[token_id] = replace(token, used_at=utc(at, "use refresh token"))
        return True

    def _revoke_where(self, matches: builtins.list[RefreshToken], at: datetime) -> int:
        at = utc(at, "revoke refresh tokens")
        for token in matches:
            self._t.refresh_tokens[token.id] = replace(token, revoked_at=at)
        return len(matches)

    def revoke_family(self, family_id: str, *, at: datetime) -> int:
        live = [
            t
            for t in self._t.refresh_tokens.values()
            if t.family_id == family_id and t.revoked_at is None
        ]
        return self._revoke_where(live, at)

    def family_revoked(self, family_id: str) -> bool:
        return any(
            t.family_id == family_id and t.revoked_at is not None
            for t in self._t.refresh_tokens.values()
        )

    def revoke_for_principal(
        self, tenant_id: str, principal_id: str, *, at: datetime
    ) -> builtins.list[str]:
        live = [
            t
            for t in self._t.refresh_tokens.values()
            if t.tenant_id == tenant_id and t.principal_id == principal_id and t.revoked_at is None
        ]
        self._revoke_where(live, at)
        return sorted({t.family_id for t in live})

    def delete_owned(self, tenant_id: str, principal_id: str) -> None:
        for token in list(self._t.refresh_tokens.values()):
            if token.tenant_id == tenant_id and token.principal_id == principal_id:
                del self._t.refresh_tokens[token.id]

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        before = utc(before, "forget expired refresh tokens")
        tokens = self._t.refresh_tokens
        due = ((t.expires_at, t.id) for t in tokens.values() if t.expires_at < before)
        return forget_soonest(tokens, due, limit)


class MemoryRegistrationTokenStore:
    def __init__(self, tables: IdentityTables, tenants: Mapping[str, Tenant]) -> None:
        self._t = tables
        self._tenants = tenants

    def create(self, token: RegistrationToken) -> None:
        if token.id in self._t.registration_tokens or any(
            t.token_hash == token.token_hash for t in self._t.registration_tokens.values()
        ):
            raise ConflictError("create registration token: a value that must be unique is taken")
        if token.tenant_id not in self._tenants:
            raise NotFoundError("create registration token: a row it refers to does not exist")
        self._t.registration_tokens[token.id] = replace(
            token,
            created_at=utc(token.created_at, "create registration token"),
            expires_at=utc(token.expires_at, "create registration token"),
        )

    def find_by_hash(self, token_hash: bytes) -> RegistrationToken | None:
        for token in self._t.registration_tokens.values():
            if token.token_hash == token_hash:
                return token
        return None

    def claim(self, token_id: str, *, agent_id: str, at: datetime) -> bool:
        at = utc(at, "claim registration token")
        token = self._t.registration_tokens.get(token_id)
        if (
            token is None
            or token.used_at is not None
            or token.revoked_at is not None
            or token.expires_at <= at
        ):
            return False
        self._t.registration_tokens[token_id] = replace(token, used_at=at, agent_id=agent_id)
        return True

    def get(self, tenant_id: str, token_id: str) -> RegistrationToken:
        token = self._t.registration_tokens.get(token_id)
        if token is None or token.tenant_id != tenant_id:
            raise NotFoundError("get registration token: no such token in this tenant")
        return token

    def list(self, tenant_id: str) -> builtins.list[RegistrationToken]:
        found = [t for t in self._t.registration_tokens.values() if t.tenant_id == tenant_id]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    def revoke(self, tenant_id: str, token_id: str, *, at: datetime) -> RegistrationToken:
        token = self._t.registration_tokens.get(token_id)
        if token is None or token.tenant_id != tenant_id:
            raise NotFoundError("revoke registration token: no such token in this tenant")
        if token.revoked_at is None:
            token = replace(token, revoked_at=utc(at, "revoke registration token"))
            self._t.registration_tokens[token_id] = token
        return token

    def delete(self, tenant_id: str, token_id: str) -> None:
        self.get(tenant_id, token_id)
        del self._t.registration_tokens[token_id]

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        before = utc(before, "forget registration tokens")
        tokens = self._t.registration_tokens
        due = ((t.expires_at, i) for i, t in tokens.items() if t.expires_at < before)
        return forget_soonest(tokens, due, limit)


class MemorySigningKeyStore:
    def __init__(self, tables: IdentityTables) -> None:
        self._t = tables

    def create(self, key: SigningKey) -> None:
        if key.kid in self._t.signing_keys:
            raise ConflictError("create signing key: a value that must be unique is taken")
        self._t.signing_keys[key.kid] = replace(
            key, created_at=utc(key.created_at, "create signing key")
        )

    def list(self) -> builtins.list[SigningKey]:
        return sorted(self._t.signing_keys.values(), key=lambda k: (k.created_at, k.kid))

    def retire(self, kid: str, *, at: datetime, publish_until: datetime) -> None:
        key = self._t.signing_keys.get(kid)
        if key is not None and key.retired_at is None:
            self._t.signing_keys[kid] = replace(
                key,
                retired_at=utc(at, "retire signing key"),
                publish_until=utc(publish_until, "retire signing key"),
            )


class MemoryRevocationStore:
    def __init__(self, tables: IdentityTables) -> None:
        self._t = tables

    def epoch(self) -> int:
        return self._t.epoch[0]

    def bump(self) -> int:
        self._t.epoch[0] += 1
        return self._t.epoch[0]

    def revoke_token(self, token: RevokedToken) -> None:
        self._t.revoked_tokens.setdefault(token.jti, token)

    def is_token_revoked(self, jti: str) -> bool:
        return jti in self._t.revoked_tokens

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        before = utc(before, "forget expired revocations")
        revoked = self._t.revoked_tokens
        due = ((t.expires_at, jti) for jti, t in revoked.items() if t.expires_at < before)
        return forget_soonest(revoked, due, limit)
