"""The credential records of identity: passwords, login throttles, tokens and signing keys.

Plain frozen dataclasses, as `bastion.core.model`; the identity stores read and write them.
No field ever holds a secret in clear: passwords are Argon2id (or imported bcrypt) hashes,
tokens are keyed hashes, private signing keys are sealed (AES-256-GCM) bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TenantState:
    """What may change about a tenant after it is created (its name never does)."""

    tenant_id: str
    display_name: str = ""
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class PasswordCredential:
    """A principal's password hash, when it was set, and the hashes it replaced (newest first)."""

    tenant_id: str
    principal_id: str
    hash: str
    changed_at: datetime
    history: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """Failed logins counted under one key (an account or a client address).

    ``lockouts`` is how many times the key has been locked in a row: each lock is longer.
    From ``forget_at`` on the counter acts exactly as a new one would, so a store may remove
    it (`bastion.core.lockout.forget_time`); None: not known, kept.
    """

    key: str
    failures: int
    window_start: datetime
    locked_until: datetime | None = None
    lockouts: int = 0
    forget_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a rotation family. Only its keyed hash is stored.

    ``used_at`` is set once, when it is exchanged for its successor; presenting it again after
    that is reuse, and revokes the whole family. ``session_ends_at`` is when the family's
    session ends however often it rotates (set at login, handed on to each successor; None on
    tokens stored before migration 0012, whose successors start counting).
    """

    id: str
    tenant_id: str
    principal_id: str
    family_id: str
    token_hash: bytes
    scopes: tuple[str, ...] | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    session_ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RegistrationToken:
    """A single-use agent registration token (``bat_…``); ``capabilities`` become scopes."""

    id: str
    tenant_id: str
    token_hash: bytes
    prefix: str
    capabilities: tuple[str, ...]
    roles: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    agent_id: str | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A key bastion signs tokens with. ``sealed_private`` is the AES-256-GCM sealed PEM.

    ``retired_at`` None is the active key; a retired key stays in the JWKS until
    ``publish_until``, when the last token it signed has expired.
    """

    kid: str
    algorithm: str
    public_jwk: str
    sealed_private: bytes
    created_at: datetime
    retired_at: datetime | None = None
    publish_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class RevokedToken:
    """An access token revoked before its expiry, remembered until it would have expired."""

    jti: str
    tenant_id: str
    expires_at: datetime
    revoked_at: datetime
