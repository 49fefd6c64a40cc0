"""The keys bastion signs its tokens with: created on first use, sealed at rest, rotated, and
published in the JWKS until the last token each one signed has expired.

Private keys are stored only sealed (AES-256-GCM under a key derived from the pepper, the AAD
binding each to its ``kid``). Every replica reads the same keys from the database; a replica
that meets an unknown ``kid`` (another one rotated) reloads them, at most once per cooldown.
"""

from __future__ import annotations

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

SEAL_PURPOSE = b"signing keys"
# How often a replica re-reads the keys, so that it stops signing with a key another replica
# retired; a retired key stays published that long (and a minute more) after its last token
# could expire.
REFRESH_SECONDS = 30.0
PUBLISH_MARGIN = timedelta(seconds=REFRESH_SECONDS + 60)


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
        self._cooldown = reload_cooldown
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._pinned: dict[str, PinnedKey] = {}
        self._signer: JwtSigner | None = None
        self._loaded_at = float("-inf")

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
            self._load(tx)
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
        keys = tx.signing_keys.list()
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
        self._loaded_at = self._monotonic()


def _published(key: SigningKey, now: datetime) -> bool:
    return key.retired_at is None or (key.publish_until is not None and now < key.publish_until)
