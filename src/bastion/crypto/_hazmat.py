"""Raw primitives. Hazardous: call these only from the recipes in `bastion.crypto`.

Misused, they leak secrets (a non-constant-time compare) or weaken keys (a short pepper).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


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
