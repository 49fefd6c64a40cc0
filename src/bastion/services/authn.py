"""Authentication: turn a presented credential into a principal, whatever kind it is.

Each credential kind (API key, bearer JWT, agent token, …) is a `CredentialVerifier` that
recognises its own shape cheaply (`accepts`) and verifies it (`verify`). The first verifier that
accepts a credential decides; one that no verifier accepts is refused, never guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bastion.backends.protocols import UnitOfWork
from bastion.core.model import Principal
from bastion.errors import AuthenticationError


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A verified credential: who, which credential, and the scopes it narrows to.

    ``scopes`` None means the credential carries no scopes of its own (it acts with the full
    permissions of its principal's roles).
    """

    principal: Principal
    credential_id: str
    method: str
    scopes: tuple[str, ...] | None
    # RFC 8693 delegation: who acts on the principal's behalf (the ``act`` claim). When set,
    # a request must be allowed for both, so the effective permissions are the intersection.
    actor: Authenticated | None = None
    # When the credential stops being valid (None: it does not expire by itself).
    expires_at: datetime | None = None
    # True when the verifier allows this result to be reused for the same presented credential
    # until ``expires_at``, for as long as the revocation epoch does not move.
    reusable: bool = False
    # True when the credential proved a second factor (no verifier issues such credentials yet).
    mfa: bool = False


class CredentialVerifier(Protocol):
    """May also have ``prepare(presented)``: work done before the transaction (see
    `Authenticator.prepare`)."""

    def accepts(self, presented: str) -> bool:
        """True when ``presented`` has this verifier's shape (no I/O)."""

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated:
        """The principal behind the credential; `AuthenticationError` with the real reason."""


class Authenticator:
    def __init__(self, verifiers: Sequence[CredentialVerifier]) -> None:
        self._verifiers = tuple(verifiers)

    def prepare(self, presented: str | None) -> None:
        """Run before `authenticate`'s transaction opens: the verifier that will decide does
        its network I/O (an issuer's JWKS) here, if it has any, because a fetch while a
        transaction holds the database's write lock would stall every writer behind it."""
        if not presented:
            return
        for verifier in self._verifiers:
            if verifier.accepts(presented):
                prepare = getattr(verifier, "prepare", None)
                if prepare is not None:
                    prepare(presented)
                return

    def authenticate(self, tx: UnitOfWork, presented: str | None) -> Authenticated:
        if not presented:
            raise AuthenticationError("missing_credential")
        for verifier in self._verifiers:
            if verifier.accepts(presented):
                return verifier.verify(tx, presented)
        raise AuthenticationError("malformed_credential")
