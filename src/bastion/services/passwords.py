"""Passwords: the policy from configuration, setting and importing hashes, and the bounded
pool every hash runs in, so that a login storm cannot take the event loop or every core.

The common-password list is zxcvbn's (30,000 entries from leaked-password corpora).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from bastion.backends.protocols import UnitOfWork
from bastion.core.credentials import PasswordCredential
from bastion.core.model import Principal
from bastion.core.password_policy import PasswordPolicy, normalised, policy_violations
from bastion.crypto.passwords import PasswordHasher, is_supported_hash
from bastion.errors import LoginBusyError, RequestRejectedError

T = TypeVar("T")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The common-password list, case-folded; loaded once, on first use."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])


class HashingPool:
    """A few threads for password hashing, and a bound on how many checks may wait for them.

    Past ``max_waiting`` a caller is refused at once (`LoginBusyError`, HTTP 503) rather than
    queued without end.
    """

    def __init__(self, *, workers: int = 1, max_waiting: int = 64) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bastion-pwd")
        self._slots = threading.BoundedSemaphore(workers + max_waiting)

    async def run(self, work: Callable[[], T]) -> T:
        if not self._slots.acquire(blocking=False):
            raise LoginBusyError("too many logins in progress")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self._slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class PasswordService:
    """Checks passwords against the policy and stores their Argon2id hashes with history."""

    def __init__(self, *, hasher: PasswordHasher, policy: PasswordPolicy) -> None:
        self.hasher = hasher
        self.policy = policy

    def violations(
        self, password: str, *, login: str = "", previous: PasswordCredential | None = None
    ) -> list[str]:
        def reused(candidate: str) -> bool:
            if previous is None:
                return False
            hashes = (previous.hash, *previous.history)[: self.policy.history]
            return any(self.hasher.verify(h, candidate) for h in hashes)

        return policy_violations(
            password, self.policy, common=common_passwords(), reused=reused, login=login
        )

    def set_password(
        self, tx: UnitOfWork, principal: Principal, password: str, *, now: datetime
    ) -> None:
        """Check the policy (and reuse), hash and store. Blocking: run it in the pool."""
        previous = tx.passwords.get(principal.tenant_id, principal.id)
        problems = self.violations(password, login=principal.name, previous=previous)
        if problems:
            raise RequestRejectedError("the password " + "; ".join(problems))
        self.store_hash(tx, principal, self.hasher.hash(normalised(password)), now=now)

    def store_hash(
        self, tx: UnitOfWork, principal: Principal, hashed: str, *, now: datetime
    ) -> None:
        """Store a hash, moving the previous one into the history (newest first)."""
        previous = tx.passwords.get(principal.tenant_id, principal.id)
        history: tuple[str, ...] = ()
        if previous is not None:
            keep = max(self.policy.history - 1, 0)
            history = (previous.hash, *previous.history)[:keep]
        tx.passwords.put(
            PasswordCredential(principal.tenant_id, principal.id, hashed, now, history)
        )

    def import_hash(
        self, tx: UnitOfWork, principal: Principal, hashed: str, *, now: datetime
    ) -> None:
        """Store an existing bcrypt or Argon2id hash (rehashed to Argon2id at the next login)."""
        if not is_supported_hash(hashed):
            raise RequestRejectedError("the hash must be bcrypt ($2b$…) or Argon2id ($argon2id$…)")
        self.store_hash(tx, principal, hashed, now=now)

    def rehash(self, credential: PasswordCredential, password: str) -> PasswordCredential | None:
        """An Argon2id replacement for a bcrypt or outdated hash, after a successful check."""
        if not self.hasher.needs_rehash(credential.hash):
            return None
        return replace(credential, hash=self.hasher.hash(normalised(password)))
