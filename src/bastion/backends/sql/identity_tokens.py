"""SQL stores of refresh tokens, registration tokens, signing keys and revocations.

Single use is enforced here with conditional UPDATEs (``… WHERE used_at IS NULL``): of two
concurrent callers, in any number of processes, exactly one sees a row count of one.
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from bastion.backends.sql.errors import translated
from bastion.backends.sql.forgetting import forget, forgetting
from bastion.backends.sql.identity_tables import (
    refresh_tokens,
    registration_tokens,
    revocation_epoch,
    revoked_tokens,
    signing_keys,
)
from bastion.backends.sql.stores import text_order
from bastion.core.credentials import RefreshToken, RegistrationToken, RevokedToken, SigningKey
from bastion.errors import ConflictError, NotFoundError


def _refresh(row: Row[Any]) -> RefreshToken:
    return RefreshToken(
        id=row.id,
        tenant_id=row.tenant_id,
        principal_id=row.principal_id,
        family_id=row.family_id,
        token_hash=bytes(row.token_hash),
        scopes=None if row.scopes is None else tuple(json.loads(row.scopes)),
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
        session_ends_at=row.session_ends_at,
    )


_FORGET = forgetting(refresh_tokens, refresh_tokens.c.id, refresh_tokens.c.expires_at)
_FORGET_REVOKED = forgetting(revoked_tokens, revoked_tokens.c.jti, revoked_tokens.c.expires_at)
_FORGET_REGISTRATION = forgetting(
    registration_tokens, registration_tokens.c.id, registration_tokens.c.expires_at
)


class SQLRefreshTokenStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, token: RefreshToken) -> None:
        values = {
            "id": token.id,
            "tenant_id": token.tenant_id,
            "principal_id": token.principal_id,
            "family_id": token.family_id,
            "token_hash": token.token_hash,
            "scopes": None if token.scopes is None else json.dumps(list(token.scopes)),
            "created_at": token.created_at,
            "expires_at": token.expires_at,
            "used_at": token.used_at,
            "revoked_at": token.revoked_at,
            "session_ends_at": token.session_ends_at,
        }
        with translated("create refresh token"), self._conn.begin_nested():
            self._conn.execute(insert(refresh_tokens).values(values))

    def find_by_hash(self, token_hash: bytes) -> RefreshToken | None:
        query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
        with translated("find refresh token"):
            row = self._conn.execute(query).one_or_none()
        return None if row is None else _refresh(row)

    def mark_used(self, token_id: str, *, at: datetime) -> bool:
        c = refresh_tokens.c
        query = (
            update(refresh_tokens)
            .where(c.id == token_id, c.used_at.is_(None), c.revoked_at.is_(None))
            .values(used_at=at)
        )
        with translated("use refresh token"):
            return self._conn.execute(query).rowcount == 1

    def revoke_family(self, family_id: str, *, at: datetime) -> int:
        c = refresh_tokens.c
        query = (
            update(refresh_tokens)
            .where(c.family_id == family_id, c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        with translated("revoke refresh token family"):
            return int(self._conn.execute(query).rowcount)

    def family_revoked(self, family_id: str) -> bool:
        c = refresh_tokens.c
        query = select(c.id).where(c.family_id == family_id, c.revoked_at.is_not(None)).limit(1)
        with translated("check refresh token family"):
            return self._conn.execute(query).first() is not None

    def revoke_for_principal(self, tenant_id: str, principal_id: str, *, at: datetime) -> list[str]:
        c = refresh_tokens.c
        query = (
            update(refresh_tokens)
            .where(c.tenant_id == tenant_id, c.principal_id == principal_id, c.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(c.family_id)
        )
        with translated("revoke refresh tokens"):
            return sorted(set(self._conn.execute(query).scalars()))

    def delete_owned(self, tenant_id: str, principal_id: str) -> None:
        c = refresh_tokens.c
        query = delete(refresh_tokens).where(
            c.tenant_id == tenant_id, c.principal_id == principal_id
        )
        with translated("delete refresh tokens"):
            self._conn.execute(query)

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        return forget(self._conn, _FORGET, before=before, limit=limit, what="refresh tokens")


def _registration(row: Row[Any]) -> RegistrationToken:
    return RegistrationToken(
        id=row.id,
        tenant_id=row.tenant_id,
        token_hash=bytes(row.token_hash),
        prefix=row.prefix,
        capabilities=tuple(json.loads(row.capabilities)),
        roles=tuple(json.loads(row.roles)),
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        agent_id=row.agent_id,
        revoked_at=row.revoked_at,
    )


class SQLRegistrationTokenStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, token: RegistrationToken) -> None:
        values = {
            "id": token.id,
            "tenant_id": token.tenant_id,
            "token_hash": token.token_hash,
            "prefix": token.prefix,
            "capabilities": json.dumps(list(token.capabilities)),
            "roles": json.dumps(list(token.roles)),
            "created_at": token.created_at,
            "expires_at": token.expires_at,
            "used_at": token.used_at,
            "agent_id": token.agent_id,
            "revoked_at": token.revoked_at,
        }
        with translated("create registration token"), self._conn.begin_nested():
            self._conn.execute(insert(registration_tokens).values(values))

    def find_by_hash(self, token_hash: bytes) -> RegistrationToken | None:
        query = select(registration_tokens).where(registration_tokens.c.token_hash == token_hash)
        with translated("find registration token"):
            row = self._conn.execute(query).one_or_none()
        return None if row is None else _registration(row)

    def claim(self, token_id: str, *, agent_id: str, at: datetime) -> bool:
        c = registration_tokens.c
        query = (
            update(registration_tokens)
            .where(
                c.id == token_id,
                c.used_at.is_(None),
                c.revoked_at.is_(None),
                c.expires_at > at,
            )
            .values(used_at=at, agent_id=agent_id)
        )
        with translated("claim registration token"):
            return self._conn.execute(query).rowcount == 1

    def get(self, tenant_id: str, token_id: str) -> RegistrationToken:
        c = registration_tokens.c
        query = select(registration_tokens).where(c.tenant_id == tenant_id, c.id == token_id)
        with translated("get registration token"):
            row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError("get registration token: no such token in this tenant")
        return _registration(row)

    def list(self, tenant_id: str) -> builtins.list[RegistrationToken]:
        c = registration_tokens.c
        query = (
            select(registration_tokens)
            .where(c.tenant_id == tenant_id)
            .order_by(c.created_at, text_order(self._conn, c.id))
        )
        with translated("list registration tokens"):
            return [_registration(row) for row in self._conn.execute(query)]

    def revoke(self, tenant_id: str, token_id: str, *, at: datetime) -> RegistrationToken:
        c = registration_tokens.c
        where = (c.tenant_id == tenant_id, c.id == token_id)
        with translated("revoke registration token"):
            self._conn.execute(
                update(registration_tokens)
                .where(*where, c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = self._conn.execute(select(registration_tokens).where(*where)).one_or_none()
        if row is None:
            raise NotFoundError("revoke registration token: no such token in this tenant")
        return _registration(row)

    def delete(self, tenant_id: str, token_id: str) -> None:
        c = registration_tokens.c
        query = delete(registration_tokens).where(c.tenant_id == tenant_id, c.id == token_id)
        with translated("delete registration token"):
            if self._conn.execute(query).rowcount != 1:
                raise NotFoundError("delete registration token: no such token in this tenant")

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        return forget(
            self._conn, _FORGET_REGISTRATION, before=before, limit=limit, what="registration tokens"
        )


class SQLSigningKeyStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, key: SigningKey) -> None:
        values = {
            "kid": key.kid,
            "algorithm": key.algorithm,
            "public_jwk": key.public_jwk,
            "sealed_private": key.sealed_private,
            "created_at": key.created_at,
            "retired_at": key.retired_at,
            "publish_until": key.publish_until,
        }
        with translated("create signing key"), self._conn.begin_nested():
            self._conn.execute(insert(signing_keys).values(values))

    def list(self) -> builtins.list[SigningKey]:
        query = select(signing_keys).order_by(
            signing_keys.c.created_at, text_order(self._conn, signing_keys.c.kid)
        )
        with translated("list signing keys"):
            rows = self._conn.execute(query).all()
        return [
            SigningKey(
                kid=r.kid,
                algorithm=r.algorithm,
                public_jwk=r.public_jwk,
                sealed_private=bytes(r.sealed_private),
                created_at=r.created_at,
                retired_at=r.retired_at,
                publish_until=r.publish_until,
            )
            for r in rows
        ]

    def retire(self, kid: str, *, at: datetime, publish_until: datetime) -> None:
        query = (
            update(signing_keys)
            .where(signing_keys.c.kid == kid, signing_keys.c.retired_at.is_(None))
            .values(retired_at=at, publish_until=publish_until)
        )
        with translated("retire signing key"):
            self._conn.execute(query)


class SQLRevocationStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def epoch(self) -> int:
        query = select(revocation_epoch.c.value).where(revocation_epoch.c.id == 1)
        with translated("read the revocation epoch"):
            value = self._conn.execute(query).scalar_one_or_none()
        return int(value or 0)

    def bump(self) -> int:
        c = revocation_epoch.c
        with translated("advance the revocation epoch"):
            self._conn.execute(update(revocation_epoch).where(c.id == 1).values(value=c.value + 1))
        return self.epoch()

    def revoke_token(self, token: RevokedToken) -> None:
        values = {
            "jti": token.jti,
            "tenant_id": token.tenant_id,
            "expires_at": token.expires_at,
            "revoked_at": token.revoked_at,
        }
        try:
            with translated("revoke access token"), self._conn.begin_nested():
                self._conn.execute(insert(revoked_tokens).values(values))
        except ConflictError:
            pass

    def is_token_revoked(self, jti: str) -> bool:
        query = select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)
        with translated("check access token revocation"):
            return self._conn.execute(query).first() is not None

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        statements = _FORGET_REVOKED
        return forget(self._conn, statements, before=before, limit=limit, what="revocations")
