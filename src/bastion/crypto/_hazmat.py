"""Raw primitives. Hazardous: call these only from the recipes in `bastion.crypto`.

Misused, they leak secrets (a non-constant-time compare) or weaken keys (a short pepper).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    # The one-shot C implementation: about three times faster than hmac.new().digest().
    return hmac.digest(key, message, hashlib.sha256)


def constant_time_equal(left: bytes, right: bytes) -> bool:
    return hmac.compare_digest(left, right)


def random_choice_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_bytes(length: int) -> bytes:
    return secrets.token_bytes(length)


def hkdf_sha256(secret: bytes, *, info: bytes, length: int = 32) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Raises `cryptography.exceptions.InvalidTag` for a wrong key, nonce, AAD or any tamper."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(nonce, ciphertext, aad)


def blake2b_keyed(key: bytes, *, size: int = 16) -> hashlib.blake2b:
    """Keyed BLAKE2b (a MAC in its own right, RFC 7693) with nothing hashed yet: callers
    ``copy()`` it per message, which skips the key set-up a new keyed object repeats."""
    return hashlib.blake2b(key=key, digest_size=size)
