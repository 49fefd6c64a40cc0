"""Passwords: the policy from configuration, setting and importing hashes (an imported one
checked by its structure first, `core.password_hashes.hash_problem`), and the bounded pool
every hash runs in, so that a login storm cannot take the event loop or every core.

Storing a new hash ends the principal's sessions in the same transaction (`Sessions.end_all`),
whoever sets it (the admin API, the CLI, a login's ``newPassword``): a session started with the
old password, perhaps by whoever stole it, does not outlive it.

The common-password list is zxcvbn's (30,000 entries from leaked-password corpora).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from bastion.backends.protocols import UnitOfWork
from bastion.core.credentials import PasswordCredential
from bastion.core.model import Principal
from bastion.core.password_hashes import hash_problem
from bastion.core.password_policy import PasswordPolicy, normalised, policy_violations
from bastion.crypto.passwords import PasswordHasher
from bastion.errors import LoginBusyError, RequestRejectedError
from bastion.services.sessions import EndedSessions, Sessions

T = TypeVar("T")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The common-password list, case-folded; loaded once, on first use."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])


class HashingPool:
    """A few threads for password work, and a bound on how many logins may wait for them.

    Past ``max_waiting`` a caller is refused at once (`LoginBusyError`, HTTP 503) rather than
    queued without end. The pool has two sets of ``workers`` threads: ``step`` runs work that
    may hold database locks (a login's short transactions) at normal priority, and ``hash``
    runs pure hashing at nice +10 (Linux keeps a nice value per thread), so that when a hash
    and request handling want the same core the kernel gives it to request handling. No lock
    is ever held at the lower priority, which would let a storm stall every writer.
    """

    def __init__(self, *, workers: int = 1, max_waiting: int = 64) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bastion-pwd")
        self._hashers = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="bastion-hash", initializer=_yield_to_requests
        )
        self._slots = threading.BoundedSemaphore(workers + max_waiting)

    async def run(self, work: Callable[[], T]) -> T:
        """``work`` (which may hash and hold locks) at normal priority, admitted."""
        with self.admission():
            return await self.step(work)

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """One login's place in the pool; `LoginBusyError` at once when there is none."""
        if not self._slots.acquire(blocking=False):
            raise LoginBusyError("too many logins in progress")
        try:
            yield
        finally:
            self._slots.release()

    async def step(self, work: Callable[[], T]) -> T:
        """Work that may hold database locks, at normal priority (inside an admission)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def hash(self, work: Callable[[], T]) -> T:
        """Hashing that holds no lock, at the lower priority (inside an admission)."""
        return await asyncio.get_running_loop().run_in_executor(self._hashers, work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._hashers.shutdown(wait=False, cancel_futures=True)


# The nice value of hashing threads (weight 110 against request handling's 1024).
HASHING_NICE = 10


def _yield_to_requests() -> None:
    """Lower this hashing thread's scheduling priority; where that is not possible the pool
    still bounds the work, so it is best effort."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


class PasswordService:
    """Checks passwords against the policy and stores their Argon2id hashes with history."""

    def __init__(
        self, *, hasher: PasswordHasher, policy: PasswordPolicy, sessions: Sessions
    ) -> None:
        self.hasher = hasher
        self.policy = policy
        self.sessions = sessions

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
    ) -> EndedSessions:
        """Check the policy (and reuse), hash and store (`store_hash`). Blocking: run it in
        the pool."""
        previous = tx.passwords.get(principal.tenant_id, principal.id)
        problems = self.violations(password, login=principal.name, previous=previous)
        if problems:
            raise RequestRejectedError("the password " + "; ".join(problems))
        return self.store_hash(tx, principal, self.hasher.hash(normalised(password)), now=now)

    def store_hash(
        self, tx: UnitOfWork, principal: Principal, hashed: str, *, now: datetime
    ) -> EndedSessions:
        """Store a hash, moving the previous one into the history (newest first), and end the
        principal's sessions: its refresh-token families and their access tokens are revoked
        in ``tx``. The caller audits the change with `EndedSessions.details` and,
        after commit, announces the revocation (`Sessions.announce`). The password row is
        locked first, so a login that verified the old password and is starting a session
        either commits before (and its session is ended here) or sees the new hash."""
        previous = tx.passwords.lock(principal.tenant_id, principal.id)
        history: tuple[str, ...] = ()
        if previous is not None:
            keep = max(self.policy.history - 1, 0)
            history = (previous.hash, *previous.history)[:keep]
        tx.passwords.put(
            PasswordCredential(principal.tenant_id, principal.id, hashed, now, history)
        )
        return self.sessions.end_all(tx, principal, now=now)

    def import_hash(
        self, tx: UnitOfWork, principal: Principal, hashed: str, *, now: datetime
    ) -> EndedSessions:
        """Store an existing bcrypt or Argon2id hash (rehashed to Argon2id at the next login);
        one `hash_problem` refuses is a `RequestRejectedError` naming ``passwordHash``."""
        problem = hash_problem(hashed)
        if problem is not None:
            raise RequestRejectedError(f"passwordHash: {problem}")
        return self.store_hash(tx, principal, hashed, now=now)

    def rehash(self, credential: PasswordCredential, password: str) -> PasswordCredential | None:
        """An Argon2id replacement for a bcrypt or outdated hash, after a successful check."""
        if not self.hasher.needs_rehash(credential.hash):
            return None
        return replace(credential, hash=self.hasher.hash(normalised(password)))
