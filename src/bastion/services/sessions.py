"""Sessions: a refresh-token family and the access tokens issued from it (they carry its id as
``fam``). Revoking one family (reuse, logout), or every family of a principal (a new password),
and telling whether a family was revoked.

A family's revocation is two records, both written in the revoking transaction: its refresh
tokens marked revoked, and a ``fam:<id>`` entry in the revoked-token list that the access-token
verifier checks. On PostgreSQL a successor being inserted concurrently is not in the revoking
``UPDATE``'s snapshot and is left unmarked; `family_revoked` is what `TokenService.refresh`
checks after taking a token, so such a successor never refreshes either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bastion.backends.protocols import UnitOfWork
from bastion.core.credentials import RevokedToken
from bastion.core.model import Principal
from bastion.services.revocation import Revoker

FAMILY_JTI = "fam:"
# A revocation is kept this long after the tokens it names have expired: far past any leeway
# a verifier allows (at most a minute), so a revoked token can never verify again. Each new
# revocation removes two older than that, so logouts do not grow the table without end.
REVOCATION_AFTERLIFE = timedelta(hours=1)
FORGET_PER_REVOCATION = 2


def remember_revoked(tx: UnitOfWork, revoked: RevokedToken) -> None:
    """Store a revocation, and remove two whose tokens expired long ago."""
    tx.revocations.revoke_token(revoked)
    before = revoked.revoked_at - REVOCATION_AFTERLIFE
    tx.revocations.forget_expired(before=before, limit=FORGET_PER_REVOCATION)


def family_revoked(tx: UnitOfWork, family_id: str) -> bool:
    """True once any revocation of the family has committed (or is this transaction's own)."""
    return tx.refresh_tokens.family_revoked(family_id) or tx.revocations.is_token_revoked(
        FAMILY_JTI + family_id
    )


@dataclass(frozen=True, slots=True)
class EndedSessions:
    """What `Sessions.end_all` revoked: how many families, and the epoch to announce once the
    transaction has committed (None when there was nothing to revoke)."""

    families: int
    epoch: int | None

    def details(self) -> dict[str, Any]:
        """For the audit event of the change that ended them."""
        return {"sessionsEnded": self.families}


class Sessions:
    """Revokes refresh-token families together with the access tokens issued from them."""

    def __init__(self, *, access_ttl: timedelta, revoker: Revoker) -> None:
        self._access_ttl = access_ttl
        self._revoker = revoker

    def revoke_family(
        self, tx: UnitOfWork, tenant_id: str, family_id: str, *, now: datetime
    ) -> None:
        """Revoke a family's refresh tokens and, until the last can expire, its access tokens."""
        tx.refresh_tokens.revoke_family(family_id, at=now)
        self._remember_family(tx, tenant_id, family_id, now)

    def end_all(self, tx: UnitOfWork, principal: Principal, *, now: datetime) -> EndedSessions:
        """Revoke every family of ``principal`` not revoked yet, with its access tokens, and
        advance the revocation epoch, in the caller's transaction (a password set: whoever held
        a session under the old password loses it). Announce the result after commit
        (`announce`)."""
        families = tx.refresh_tokens.revoke_for_principal(principal.tenant_id, principal.id, at=now)
        for family_id in families:
            self._remember_family(tx, principal.tenant_id, family_id, now)
        epoch = self._revoker.bump(tx) if families else None
        return EndedSessions(len(families), epoch)

    def announce(self, ended: EndedSessions) -> None:
        """Tell this process and the other replicas at once (they would see it within a second
        anyway, from the database)."""
        if ended.epoch is not None:
            self._revoker.announce(ended.epoch)

    def _remember_family(
        self, tx: UnitOfWork, tenant_id: str, family_id: str, now: datetime
    ) -> None:
        expires = now + self._access_ttl  # the last access token of the family expires by then
        remember_revoked(tx, RevokedToken(FAMILY_JTI + family_id, tenant_id, expires, now))
