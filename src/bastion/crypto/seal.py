"""Sealing reversible secrets at rest: AES-256-GCM under a key derived from the server pepper.

``seal(plaintext, aad=…)`` → ``version (1) ‖ nonce (12) ‖ ciphertext+tag``. The AAD binds the
sealed bytes to the record they belong to (for a signing key, its ``kid``), so a sealed value
copied onto another row does not open. Every failure to open is the one `SealError`.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag

from bastion.crypto import _hazmat

_VERSION = b"\x01"
_NONCE_LENGTH = 12


class SealError(ValueError):
    """A sealed value that does not open: wrong key, wrong record, truncated or tampered."""


class Sealer:
    """Seals and opens values under one purpose-specific key derived from the pepper."""

    __slots__ = ("_key",)

    def __init__(self, pepper: bytes, *, purpose: bytes) -> None:
        self._key = _hazmat.hkdf_sha256(pepper, info=b"bastion seal v1 " + purpose, length=32)

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        nonce = _hazmat.random_bytes(_NONCE_LENGTH)
        return _VERSION + nonce + _hazmat.aes_gcm_encrypt(self._key, nonce, plaintext, aad)

    def open(self, sealed: bytes, *, aad: bytes) -> bytes:
        if len(sealed) < 1 + _NONCE_LENGTH + 16 or sealed[:1] != _VERSION:
            raise SealError("sealed value cannot be opened")
        nonce, body = sealed[1 : 1 + _NONCE_LENGTH], sealed[1 + _NONCE_LENGTH :]
        try:
            return _hazmat.aes_gcm_decrypt(self._key, nonce, body, aad)
        except InvalidTag:
            raise SealError("sealed value cannot be opened") from None

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"
