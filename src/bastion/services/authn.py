"""Authentication: turn a presented credential into a principal, whatever kind it is.

Each credential kind (API key, bearer JWT, agent token, …) is a `CredentialVerifier` that
recognises its own shape cheaply (`accepts`) and verifies it (`verify`). The first verifier that
accepts a credential decides; one that no verifier accepts is refused, never guessed at.

`Authenticator.screen` refuses, with no I/O at all, what cannot be a valid credential (none, a
shape no verifier knows, a bastion key whose checksum fails), so that such a request never takes
a worker thread, a database connection or SQLite's write lock. `Authenticator.prepare` then
refuses, before the write transaction, what reads alone can refuse (a forged JWT, an API key no
one holds).
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
    """May also have ``screen(presented)``, raising `AuthenticationError` for a credential of
    its shape that cannot be valid, without I/O (see `Authenticator.screen`), and
    ``prepare(presented)``: work done before the transaction (see `Authenticator.prepare`)."""

    def accepts(self, presented: str) -> bool:
        """True when ``presented`` has this verifier's shape (no I/O)."""

    def verify(self, tx: UnitOfWork, presented: str) -> Authenticated:
        """The principal behind the credential; `AuthenticationError` with the real reason."""


class Authenticator:
    def __init__(self, verifiers: Sequence[CredentialVerifier]) -> None:
        self._verifiers = tuple(verifiers)

    def screen(self, presented: str | None) -> None:
        """`AuthenticationError` for a credential that cannot be valid, decided without I/O:
        none at all, one no verifier accepts, or one its verifier's own ``screen`` refuses.
        The reason is the one `authenticate` would give, so the audit trail is the same."""
        verifier, credential = self._deciding(presented)
        screen = getattr(verifier, "screen", None)
        if screen is not None:
            screen(credential)

    def prepare(self, presented: str | None) -> None:
        """Run before `authenticate`'s transaction opens: the verifier that will decide does
        here what need not hold the database's write lock, if it has any (an issuer's JWKS
        fetch, a JWT's signature check, an API key's read-only look-up), because such work
        inside the transaction would stall every writer behind it. It may refuse, with the
        reason `authenticate` would give. A credential no verifier takes is left for
        `authenticate` to refuse."""
        if not presented:
            return
        verifier = next((v for v in self._verifiers if v.accepts(presented)), None)
        prepare = getattr(verifier, "prepare", None)
        if prepare is not None:
            prepare(presented)

    def authenticate(self, tx: UnitOfWork, presented: str | None) -> Authenticated:
        verifier, credential = self._deciding(presented)
        return verifier.verify(tx, credential)

    def _deciding(self, presented: str | None) -> tuple[CredentialVerifier, str]:
        """The first verifier that accepts ``presented``, and the credential; none at all is
        `missing_credential`, a shape no verifier accepts `malformed_credential`."""
        if not presented:
            raise AuthenticationError("missing_credential")
        for verifier in self._verifiers:
            if verifier.accepts(presented):
                return verifier, presented
        raise AuthenticationError("malformed_credential")
