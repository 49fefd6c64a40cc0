"""The identity assertion bastion hands to the upstream: a short-lived EdDSA-signed JWT.

The upstream can verify ``X-Bastion-Identity`` against ``/.well-known/jwks.json`` instead of
trusting a plain header. The signing key is derived from the server pepper with HKDF, so every
replica signs with the same key and nothing extra is stored; a signature is made once per
identity per half-lifetime and reused, which keeps signing off the per-request cost.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bastion.crypto import _hazmat

ALGORITHM = "EdDSA"
LIFETIME_SECONDS = 60
_REUSE_SECONDS = LIFETIME_SECONDS // 2
_CACHE_LIMIT = 10_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IdentitySigner:
    def __init__(self, pepper: bytes, *, issuer: str) -> None:
        seed = _hazmat.hkdf_sha256(pepper, info=b"bastion identity assertion key v1")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.kid = _b64url(hashlib.sha256(public).digest()[:12])
        self._public_jwk = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(public),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }
        self.issuer = issuer
        self._cache: dict[tuple[Any, ...], tuple[str, float]] = {}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._public_jwk)]}

    def assertion(
        self, claims: Mapping[str, Any], *, now: datetime, key: tuple[Any, ...] | None = None
    ) -> str:
        """A signed token for ``claims`` (sub, tenant, roles, …), reused while fresh.

        ``key`` identifies the claims in the reuse cache when the caller has a cheaper one than
        the sorted claims (it must differ whenever the claims do).
        """
        timestamp = now.timestamp()
        cache_key = (
            key if key is not None else tuple(sorted((k, str(v)) for k, v in claims.items()))
        )
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] - timestamp > _REUSE_SECONDS:
            return cached[0]
        issued = int(timestamp)
        payload = {**claims, "iss": self.issuer, "iat": issued, "exp": issued + LIFETIME_SECONDS}
        token = jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[cache_key] = (token, float(issued + LIFETIME_SECONDS))
        return token
