"""The keys bastion signs its tokens with: created on first use, sealed at rest, rotated, and
published in the JWKS until the last token each one signed has expired.

Private keys are stored only sealed (AES-256-GCM under a key derived from the pepper, the AAD
binding each to its ``kid``). Every replica reads the same keys from the database; a replica
that meets an unknown ``kid`` (another one rotated) reloads them, at most once per cooldown.

A retired key vouches for a token only while it is published (`vouched_until`, the rule the
JWKS follows too) and only for a token issued before it was retired. A rotation advances the
revocation epoch, so every replica drops the tokens it verified before and reads the keys
again before it verifies the next one (within a second, as for any revocation).
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.credentials import SigningKey
from bastion.crypto.jwt import (
    SIGNING_ALGORITHMS,
    InvalidJwtError,
    JwtSigner,
    PinnedKey,
    generate_private_key,
    pinned_from_jwk,
    public_jwk,
)
from bastion.crypto.seal import Sealer
from bastion.errors import RequestRejectedError
from bastion.services.clock import Clock
from bastion.services.directory import record
from bastion.services.revocation import Revoker

SEAL_PURPOSE = b"signing keys"
# How often a replica re-reads the keys, so that it stops signing with a key another replica
# retired; a retired key stays published that long (and a minute more) after its last token
# could expire.
REFRESH_SECONDS = 30.0
PUBLISH_MARGIN = timedelta(seconds=REFRESH_SECONDS + 60)
# A replica that has not re-read the keys yet signs with a retired key for up to
# REFRESH_SECONDS after its retirement: such tokens are genuine.
SIGNED_AFTER_RETIREMENT = timedelta(seconds=REFRESH_SECONDS)


def _aad(kid: str) -> bytes:
    return b"bastion signing key:" + kid.encode()


class SigningKeys:
    def __init__(
        self,
        *,
        storage: Storage,
        sealer: Sealer,
        clock: Clock,
        algorithm: str,
        token_lifetime: timedelta,
        audit_tenant: str,
        revoker: Revoker,
        reload_cooldown: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if algorithm not in SIGNING_ALGORITHMS:
            raise ValueError(f"unsupported signing algorithm {algorithm!r}")
        self._storage = storage
        self._sealer = sealer
        self._clock = clock
        self.algorithm = algorithm
        self._lifetime = token_lifetime
        self._audit_tenant = audit_tenant
        self._revoker = revoker
        self._cooldown = reload_cooldown
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._pinned: dict[str, PinnedKey] = {}
        self._signer: JwtSigner | None = None
        self._loaded_at = float("-inf")
        # The revocation epoch under which `vouched_until` last read the keys.
        self._read_under: int | None = None

    def signer(self) -> JwtSigner:
        """The active key's signer, creating the first key if there is none.

        Opens its own transaction when it must (re)load: call it before opening one.
        """
        signer = self._signer
        if signer is not None and self._monotonic() - self._loaded_at < REFRESH_SECONDS:
            return signer
        with self._lock, self._storage.transaction() as tx:
            if not any(k.retired_at is None for k in tx.signing_keys.list()):
                self._create(tx, self.algorithm)
            self._load(tx)
        assert self._signer is not None
        return self._signer

    def known_key(self, kid: object) -> PinnedKey | None:
        """The public key named ``kid`` if this process already holds it; never reads."""
        return self._pinned.get(kid) if isinstance(kid, str) else None

    def verification_key(self, kid: object, tx: UnitOfWork) -> PinnedKey | None:
        """The public key named ``kid``, re-read through ``tx`` (at most once per cooldown)
        when unknown, so that keys another replica made are found."""
        key = self.known_key(kid)
        if key is not None or not isinstance(kid, str):
            return key
        with self._lock:
            if self._monotonic() - self._loaded_at >= self._cooldown:
                self._load(tx)
        return self._pinned.get(kid)

    def vouched_until(
        self,
        kid: object,
        claims: dict[str, Any],
        tx: UnitOfWork,
        *,
        now: datetime,
        epoch: int,
        leeway_seconds: float,
    ) -> datetime | None:
        """Whether the key named ``kid``, whose signature on ``claims`` has been checked, may
        vouch for them now: `InvalidJwtError` (``retired_key``) for a retired key past its
        ``publish_until`` or a token it signed (``iat``) after its retirement; else until when
        it vouches (None: an active key, no end). The keys are re-read through ``tx`` when the
        revocation epoch has moved since they were last read here, or they are older than
        REFRESH_SECONDS, so a rotation in another process holds on the next request."""
        stored = next((k for k in self._current(tx, epoch) if k.kid == kid), None)
        if stored is None:
            raise InvalidJwtError("unknown_kid")
        if stored.retired_at is None:
            return None
        issued = claims.get("iat")
        signed_in_time = (
            isinstance(issued, int | float)
            and not isinstance(issued, bool)
            and issued <= (stored.retired_at + SIGNED_AFTER_RETIREMENT).timestamp() + leeway_seconds
        )
        if not (signed_in_time and _published(stored, now)):
            raise InvalidJwtError("retired_key")
        return stored.publish_until

    def _current(self, tx: UnitOfWork, epoch: int) -> builtins.list[SigningKey]:
        """The keys, re-read through ``tx`` when this view may be stale. What is read is kept
        unless it is older than the view (another thread's newer read) or the lock is busy (a
        load in progress; blocking on it while holding ``tx`` could deadlock a writer)."""
        fresh = self._monotonic() - self._loaded_at < REFRESH_SECONDS
        if self._read_under == epoch and fresh:
            return self._keys
        keys = tx.signing_keys.list()
        if self._lock.acquire(blocking=False):
            try:
                if self._adopt(keys):
                    self._read_under = epoch
            finally:
                self._lock.release()
        return keys

    def jwks(self) -> dict[str, Any]:
        """The public keys of every key still published."""
        self.signer()
        now = self._clock.now()
        keys = [json.loads(k.public_jwk) for k in self._keys if _published(k, now)]
        return {"keys": keys}

    def list(self) -> list[SigningKey]:
        with self._storage.transaction() as tx:
            return tx.signing_keys.list()

    def rotate(self, *, algorithm: str | None, actor: dict[str, Any]) -> SigningKey:
        """Retire the active key (kept in the JWKS while its tokens live) and make a new one."""
        algorithm = algorithm or self.algorithm
        if algorithm not in SIGNING_ALGORITHMS:
            raise RequestRejectedError(
                f"the algorithm must be one of {', '.join(SIGNING_ALGORITHMS)}"
            )
        now = self._clock.now()
        with self._lock, self._storage.transaction() as tx:
            for key in tx.signing_keys.list():
                if key.retired_at is None:
                    until = now + self._lifetime + PUBLISH_MARGIN
                    tx.signing_keys.retire(key.kid, at=now, publish_until=until)
            created = self._create(tx, algorithm)
            record(
                tx,
                action="signingkey.rotate",
                tenant=self._audit_tenant,
                now=now,
                actor=actor,
                resource={"type": "signingkey", "id": created.kid},
                details={"algorithm": algorithm},
            )
            # Caches of verified tokens are dropped everywhere, and each replica re-reads the
            # keys before verifying again (`vouched_until`): the retired key's limits hold.
            epoch = self._revoker.bump(tx)
            self._load(tx)
        self._revoker.announce(epoch)
        return created

    def _create(self, tx: UnitOfWork, algorithm: str) -> SigningKey:
        private_pem = generate_private_key(algorithm)
        jwk = public_jwk(private_pem, algorithm)
        kid = str(jwk["kid"])
        key = SigningKey(
            kid=kid,
            algorithm=algorithm,
            public_jwk=json.dumps(jwk, sort_keys=True),
            sealed_private=self._sealer.seal(private_pem, aad=_aad(kid)),
            created_at=self._clock.now(),
        )
        tx.signing_keys.create(key)
        return key

    def _load(self, tx: UnitOfWork) -> None:
        self._adopt(tx.signing_keys.list())

    def _adopt(self, keys: builtins.list[SigningKey]) -> bool:
        """Make ``keys`` this view, as of now, unless they are older than it (False). Only a
        change is installed: opening the private key and loading its signer takes tens of
        milliseconds (RSA), too much for every re-read."""
        read, held = _generation(keys), _generation(self._keys)
        if read < held:
            return False
        if read > held or self._signer is None:
            self._install(keys)
        self._loaded_at = self._monotonic()
        return True

    def _install(self, keys: builtins.list[SigningKey]) -> None:
        pinned = {}
        for key in keys:
            pinned[key.kid] = pinned_from_jwk(json.loads(key.public_jwk), allowed=(key.algorithm,))
        active = [k for k in keys if k.retired_at is None]
        signer = None
        if active:
            newest = active[-1]
            pem = self._sealer.open(newest.sealed_private, aad=_aad(newest.kid))
            signer = JwtSigner(pem, algorithm=newest.algorithm, kid=newest.kid)
        self._keys, self._pinned, self._signer = keys, pinned, signer


def _published(key: SigningKey, now: datetime) -> bool:
    """In the JWKS, and able to vouch for a token: active, or retired less than its last
    token's lifetime ago."""
    return key.retired_at is None or (key.publish_until is not None and now < key.publish_until)


def _generation(keys: list[SigningKey]) -> tuple[int, int]:
    """Keys are only ever added and retired, never removed or restored: a later state of the
    table has at least as many of each."""
    return len(keys), sum(1 for k in keys if k.retired_at is not None)
