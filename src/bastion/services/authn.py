"""Authentication: turn a presented credential into a principal, whatever kind it is.

Each credential kind (API key, bearer JWT, agent token, …) is a `CredentialVerifier` that
recognises its own shape cheaply (`accepts`) and verifies it (`verify`). The first verifier that
accepts a credential decides; one that no verifier accepts is refused, never guessed at.

`Authenticator.screen` refuses, with no I/O at all, what cannot be a valid credential (none, a
shape no verifier knows, a bastion key whose checksum fails), so that such a request never takes
a worker thread, a database connection or SQLite's write lock. `Authenticator.prepare` then
does, before any unit of work, what needs none (an issuer's JWKS fetch, a JWT's signature
check). A credential whose verifier does not write (`Authenticator.writes`: API keys, bastion's
own tokens) is then verified in a read-only unit of work, which on SQLite neither waits for nor
blocks a writer; what such a verifier defers (an API key's last-used time) it writes in
`Authenticator.settle`, at most once a minute per key.
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
    its shape that cannot be valid, without I/O (see `Authenticator.screen`),
    ``prepare(presented)``: work done before the transaction (see `Authenticator.prepare`),
    ``writes(presented)``: False when verifying ``presented`` only reads (without it, a
    verifier is taken to write), and ``settle()``: writes it deferred (`Authenticator.settle`).
    """

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
        here what needs no unit of work, if it has any (an issuer's JWKS fetch, a JWT's
        signature check), because such work inside one would hold a connection (and, in a
        unit that writes, the database's write lock) for its whole length. It may refuse, with
        the reason `authenticate` would give. A credential no verifier takes is left for
        `authenticate` to refuse."""
        if not presented:
            return
        verifier = next((v for v in self._verifiers if v.accepts(presented)), None)
        prepare = getattr(verifier, "prepare", None)
        if prepare is not None:
            prepare(presented)

    def writes(self, presented: str | None) -> bool:
        """Whether `authenticate` may write for ``presented`` (an external issuer provisioning
        its user does); False lets the caller open a read-only unit of work. A credential no
        verifier takes writes nothing: `authenticate` refuses it."""
        if not presented:
            return False
        verifier = next((v for v in self._verifiers if v.accepts(presented)), None)
        if verifier is None:
            return False
        writes = getattr(verifier, "writes", None)
        return True if writes is None else bool(writes(presented))

    def settle(self) -> None:
        """Let each verifier write what it deferred from read-only verifications (in its own
        unit of work; a failure there is the verifier's to log, never the request's)."""
        for verifier in self._verifiers:
            settle = getattr(verifier, "settle", None)
            if settle is not None:
                settle()

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
