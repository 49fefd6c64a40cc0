"""Ed25519 keys that sign audit checkpoints, and the verification of their signatures.

The private key lives outside the database: a PKCS#8 PEM file referenced from
``security.audit.signingKey`` (``file:audit-signing.pem``, written 0600 by ``bastion init``),
or, when that is not set, a key derived from the server pepper with HKDF (separate label), so
that checkpoints are always signed. The public key (``bastion audit public-key``) verifies
exports offline; its id is the first 16 hex characters of SHA-256 over the raw public key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from bastion.core.audit_checkpoint import AuditCheckpoint, checkpoint_payload
from bastion.crypto import _hazmat

__all__ = [
    "CheckpointKeyError",
    "CheckpointSigner",
    "CheckpointVerifier",
    "generate_signing_key_pem",
    "key_id_of",
    "masking_hash_key",
]

_PEPPER_LABEL = b"bastion audit checkpoint key v1"
_MASKING_LABEL = b"bastion audit masking hash v1"


class CheckpointKeyError(ValueError):
    """A signing or public key that cannot be used (wrong type, not PEM, encrypted)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def masking_hash_key(pepper: bytes) -> bytes:
    """The key of ``security.dataProtection.masking.method: hash`` (HKDF from the pepper)."""
    return _hazmat.hkdf_sha256(pepper, info=_MASKING_LABEL)


def generate_signing_key_pem() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM (store it 0600)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


class CheckpointSigner:
    """Signs checkpoints with one Ed25519 private key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id_of(key.public_key())

    @classmethod
    def from_pem(cls, pem: bytes) -> CheckpointSigner:
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise CheckpointKeyError(
                "the audit signing key is not an unencrypted PEM private key"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointKeyError("the audit signing key must be an Ed25519 key")
        return cls(key)

    @classmethod
    def from_pepper(cls, pepper: bytes) -> CheckpointSigner:
        seed = _hazmat.hkdf_sha256(pepper, info=_PEPPER_LABEL)
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, seq: int, head_hash: str, *, now: datetime) -> AuditCheckpoint:
        moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
        payload = checkpoint_payload(seq, head_hash, moment, self.key_id)
        signature = _b64url(self._key.sign(payload))
        return AuditCheckpoint(seq, head_hash, moment, self.key_id, signature)

    def public_pem(self) -> bytes:
        public = self._key.public_key()
        return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def verifier(self) -> CheckpointVerifier:
        return CheckpointVerifier([self._key.public_key()])

    def __repr__(self) -> str:
        return f"CheckpointSigner(key_id={self.key_id!r}, <private key hidden>)"


class CheckpointVerifier:
    """Checks checkpoint signatures against a set of public keys, chosen by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(key): key for key in keys}

    @classmethod
    def from_pems(cls, pems: Iterable[bytes]) -> CheckpointVerifier:
        keys: list[Ed25519PublicKey] = []
        for pem in pems:
            try:
                key = load_pem_public_key(pem)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise CheckpointKeyError("not a PEM public key") from None
            if not isinstance(key, Ed25519PublicKey):
                raise CheckpointKeyError("the audit public key must be an Ed25519 key")
            keys.append(key)
        return cls(keys)

    @classmethod
    def merged(cls, *verifiers: CheckpointVerifier) -> CheckpointVerifier:
        merged = cls([])
        for verifier in verifiers:
            merged._keys.update(verifier._keys)
        return merged

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def valid(self, checkpoint: AuditCheckpoint) -> bool:
        key = self._keys.get(checkpoint.key_id)
        if key is None:
            return False
        payload = checkpoint_payload(
            checkpoint.seq, checkpoint.head_hash, checkpoint.timestamp, checkpoint.key_id
        )
        try:
            key.verify(_unb64url(checkpoint.signature), payload)
        except (InvalidSignature, ValueError):
            return False
        return True
