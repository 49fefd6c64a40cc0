"""The storage protocols of credentials: passwords, login throttles, refresh and registration
tokens, signing keys and revoked tokens (re-exported by `bastion.backends.protocols`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bastion.core.credentials import (
    PasswordCredential,
    RefreshToken,
    RegistrationToken,
    RevokedToken,
    SigningKey,
    ThrottleState,
)

__all__ = [
    "PasswordStore",
    "RefreshTokenStore",
    "RegistrationTokenStore",
    "RevocationStore",
    "SigningKeyStore",
    "ThrottleStore",
]


class PasswordStore(Protocol):
    def get(self, tenant_id: str, principal_id: str) -> PasswordCredential | None:
        """The principal's password hash, or None when it has no password."""

    def lock(self, tenant_id: str, principal_id: str) -> PasswordCredential | None:
        """`get`, with the principal's password row locked until this unit of work ends: a
        login about to start a session and a change of the password take turns (the one
        that comes second sees what the first committed)."""

    def put(self, credential: PasswordCredential) -> None:
        """Set (insert or replace); `NotFoundError` if the principal is not in the tenant."""

    def delete(self, tenant_id: str, principal_id: str) -> None:
        """Remove the principal's password, if any."""


class ThrottleStore(Protocol):
    def lock(self, key: str, *, at: datetime) -> ThrottleState:
        """The counter under ``key``, locked until this unit of work ends (created empty at
        ``at`` if absent), so that concurrent failures are all counted."""

    def put(self, state: ThrottleState) -> None:
        """Store a counter returned by `lock` in this unit of work."""

    def forget(self, *, now: datetime, limit: int) -> int:
        """Remove at most ``limit`` counters whose ``forget_at`` is not after ``now`` (they
        act as new ones), soonest first, skipping any another unit of work holds; how many."""


class RefreshTokenStore(Protocol):
    def create(self, token: RefreshToken) -> None:
        """Store a token; `ConflictError` for a hash taken, `NotFoundError` for an unknown owner."""

    def find_by_hash(self, token_hash: bytes) -> RefreshToken | None:
        """The token with this keyed hash, used or revoked or not; None if unknown."""

    def mark_used(self, token_id: str, *, at: datetime) -> bool:
        """Atomically mark an unused, unrevoked token used; False if another caller did first
        (or it is revoked): that is the single-use guarantee across processes."""

    def revoke_family(self, family_id: str, *, at: datetime) -> int:
        """Revoke every token of a rotation family not revoked yet; how many were."""

    def family_revoked(self, family_id: str) -> bool:
        """True when any token of the family is revoked (as committed now, or by this unit of
        work): a revocation marks the tokens it sees, and may miss a successor being stored
        concurrently."""

    def revoke_for_principal(self, tenant_id: str, principal_id: str, *, at: datetime) -> list[str]:
        """Revoke every token of a principal not revoked yet; the families they belong to,
        each once, in id order."""

    def delete_owned(self, tenant_id: str, principal_id: str) -> None:
        """Remove every token of a principal."""

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        """Remove at most ``limit`` tokens that expired before ``before``, soonest first,
        skipping any another unit of work holds; how many."""


class RegistrationTokenStore(Protocol):
    def create(self, token: RegistrationToken) -> None:
        """Store a token; `ConflictError` if its hash is taken."""

    def find_by_hash(self, token_hash: bytes) -> RegistrationToken | None:
        """The token with this keyed hash; None if unknown."""

    def claim(self, token_id: str, *, agent_id: str, at: datetime) -> bool:
        """Atomically mark an unused, unrevoked, unexpired token used by ``agent_id``; False if
        it was already used (by a concurrent caller too), revoked or expired at ``at``."""

    def get(self, tenant_id: str, token_id: str) -> RegistrationToken:
        """The tenant's token with this id; `NotFoundError` if absent from the tenant."""

    def list(self, tenant_id: str) -> list[RegistrationToken]:
        """Every token of the tenant, oldest first."""

    def revoke(self, tenant_id: str, token_id: str, *, at: datetime) -> RegistrationToken:
        """Revoke (idempotent); `NotFoundError` if absent from the tenant."""

    def delete(self, tenant_id: str, token_id: str) -> None:
        """Remove a token (its tenant is being deleted); `NotFoundError` if absent."""

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        """Remove at most ``limit`` tokens, of any tenant and state, that expired before
        ``before``, soonest first; how many went."""


class SigningKeyStore(Protocol):
    def create(self, key: SigningKey) -> None:
        """Store a new signing key; `ConflictError` if the kid is taken."""

    def list(self) -> list[SigningKey]:
        """Every signing key, oldest first."""

    def retire(self, kid: str, *, at: datetime, publish_until: datetime) -> None:
        """Retire a key: it signs no more, and leaves the JWKS after ``publish_until``."""


class RevocationStore(Protocol):
    def epoch(self) -> int:
        """A counter that grows with every revocation; caches compare against it."""

    def bump(self) -> int:
        """Advance the epoch inside this unit of work and return the new value."""

    def revoke_token(self, token: RevokedToken) -> None:
        """Remember a revoked access token (idempotent)."""

    def is_token_revoked(self, jti: str) -> bool:
        """Whether the access token with this id was revoked."""

    def forget_expired(self, *, before: datetime, limit: int) -> int:
        """Remove at most ``limit`` revocations of tokens that expired before ``before``,
        soonest first, skipping any another unit of work holds; how many."""
