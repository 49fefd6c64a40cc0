"""Keyed hashes of credentials and the generation of new credentials.

Tokens and API keys are stored only as HMAC-SHA256 under a server pepper (DESIGN.md 7.4): a
stolen database alone does not let anyone test guesses offline. A secret is hashed as UTF-8 with
``surrogatepass``: a lone surrogate (valid in JSON, absent from UTF-8) is then just a secret
that matches nothing, never an error; every other string encodes exactly as plain UTF-8.
"""

from __future__ import annotations

import base64

from bastion.core.apikeys import BASE62, RANDOM_LENGTH, format_api_key
from bastion.crypto import _hazmat

MIN_PEPPER_LENGTH = 32


def secret_bytes(secret: str) -> bytes:
    """``secret`` as UTF-8, lone surrogates included (one-to-one, so no two secrets meet)."""
    return secret.encode("utf-8", "surrogatepass")


class WeakPepperError(ValueError):
    """The configured pepper is too short to be a key."""


class KeyedHasher:
    """HMAC-SHA256 of secrets under the server pepper."""

    __slots__ = ("_pepper",)

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < MIN_PEPPER_LENGTH:
            raise WeakPepperError(f"the pepper must be at least {MIN_PEPPER_LENGTH} bytes")
        self._pepper = pepper

    def digest(self, secret: str) -> bytes:
        return _hazmat.hmac_sha256(self._pepper, secret_bytes(secret))

    def matches(self, secret: str, expected: bytes) -> bool:
        return _hazmat.constant_time_equal(self.digest(secret), expected)

    def __repr__(self) -> str:
        return "KeyedHasher(<pepper hidden>)"


def new_api_key() -> str:
    """A fresh ``bk_live_…`` key with 32 base62 characters of randomness (~190 bits)."""
    return format_api_key(_hazmat.random_choice_string(BASE62, RANDOM_LENGTH))


def new_pepper() -> str:
    """A new pepper: 48 random bytes, URL-safe base64 (64 characters)."""
    return base64.urlsafe_b64encode(_hazmat.random_bytes(48)).decode()


def new_secret_token(prefix: str) -> str:
    """A fresh bearer secret: ``prefix`` + 40 base62 characters (~238 bits of randomness)."""
    return prefix + _hazmat.random_choice_string(BASE62, 40)


class CacheKeyer:
    """Keys of in-memory caches of verified secrets: keyed BLAKE2b under a random key made at
    start-up. Never stored; a process's cache keys mean nothing outside it."""

    __slots__ = ("_keyed",)

    def __init__(self) -> None:
        self._keyed = _hazmat.blake2b_keyed(_hazmat.random_bytes(32))

    def key(self, secret: str) -> bytes:
        mac = self._keyed.copy()
        mac.update(secret_bytes(secret))
        return mac.digest()

    def __repr__(self) -> str:
        return "CacheKeyer(<key hidden>)"
