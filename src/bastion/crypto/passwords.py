"""Password hashes: Argon2id with OWASP's parameters, and bcrypt hashes accepted for import.

Argon2id m=19 MiB, t=2, p=1 (OWASP Password Storage Cheat Sheet). A bcrypt hash (``$2a$``,
``$2b$``, ``$2y$``) verifies as well and reports `needs_rehash`, so the caller can replace it
with Argon2id at the next successful login. `verify_dummy` spends the same time as a real
check, for an unknown or disabled account, and `pause_as_verify` waits that long without the
work, for an attempt a lock refused before any password was looked at (DESIGN.md 7.5).

A password reaches the hashes as UTF-8 with ``surrogatepass`` (`secret_bytes`): a lone
surrogate, which JSON can carry but UTF-8 cannot, is then an ordinary wrong password that
costs the same work, never an exception after the attempt was counted. Any other string
encodes exactly as before, so no stored hash changes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import bcrypt
from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bastion.crypto import _hazmat
from bastion.crypto.keys import secret_bytes

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
# bcrypt considers only the first 72 bytes; longer passwords are refused rather than truncated.
BCRYPT_MAX_BYTES = 72
# How much each new Argon2 verification moves the typical time (an exponential average).
_PACE_WEIGHT = 0.2


class PasswordHasher:
    """Hashes and verifies passwords. Blocking and CPU-bound: call it off the event loop."""

    def __init__(
        self,
        *,
        memory_kib: int = MEMORY_KIB,
        time_cost: int = TIME_COST,
        parallelism: int = PARALLELISM,
    ) -> None:
        self._argon2 = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._dummy = self._argon2.hash(_hazmat.random_bytes(24).hex())
        self._typical = 0.0
        self.verify_dummy("")  # the first measure of a verification's time

    @property
    def typical_verify_seconds(self) -> float:
        """An average of the recent Argon2 verifications' wall time (queueing not included)."""
        return self._typical

    def hash(self, password: str) -> str:
        return self._argon2.hash(secret_bytes(password))

    def verify(self, stored: str, password: str) -> bool:
        """True when ``password`` matches ``stored`` (Argon2id or bcrypt); never raises."""
        encoded = secret_bytes(password)
        if stored.startswith(_BCRYPT_PREFIXES):
            if len(encoded) > BCRYPT_MAX_BYTES:
                self.verify_dummy(password)
                return False
            try:
                return bcrypt.checkpw(encoded, stored.encode())
            except ValueError:
                return False
        started = time.perf_counter()
        try:
            return self._argon2.verify(stored, encoded)
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeError):
            return False  # UnicodeError: a stored hash that is not ASCII (never a valid one)
        finally:
            self._observe(time.perf_counter() - started)

    def verify_dummy(self, password: str) -> None:
        """Spend a real verification's time and learn nothing (an unknown or disabled account:
        a real one would be checked, so the work itself must look alike)."""
        started = time.perf_counter()
        with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
            self._argon2.verify(self._dummy, secret_bytes(password))
        self._observe(time.perf_counter() - started)

    def pause_as_verify(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Take a verification's typical time without its work: for an attempt refused by a
        lock, which says nothing about the account (unknown accounts are counted and locked
        alike), so only the answer's timing must match. A login storm against locked
        accounts or from a locked address then costs the cores nothing."""
        sleep(self._typical)

    def _observe(self, seconds: float) -> None:
        # Plain float updates: a lost one among concurrent verifications changes nothing.
        typical = self._typical
        self._typical = seconds if typical == 0.0 else typical + (seconds - typical) * _PACE_WEIGHT

    def needs_rehash(self, stored: str) -> bool:
        if stored.startswith(_BCRYPT_PREFIXES):
            return True
        try:
            return self._argon2.check_needs_rehash(stored)
        except InvalidHashError:
            return True
