"""Revocation that reaches every cache: an epoch in the database, announced over a broadcast.

Every revocation (a key revoked or rotated, a principal or tenant disabled or deleted, a token
or token family revoked) advances the epoch in the same transaction as the change. Caches of
verified credentials remember the epoch they were filled under and are void once it moves.

How fresh this process's view of the epoch is:

- its own revocations: at once (the next request on this replica sees them);
- with a healthy broadcast listener (Redis pub/sub): within milliseconds, and the database is
  re-read at least every ``backstop_seconds`` (1 s) in case a message was lost;
- with no listener, or one that lost its connection: the database is read on every check, so a
  revocation made by any other process (another replica, the CLI) holds on the next request.

The database stays the source of truth: losing the broadcast only makes checks read it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from bastion.backends.protocols import UnitOfWork

log = logging.getLogger("bastion.revocation")


class RevocationBroadcast(Protocol):
    def publish(self, epoch: int) -> None:
        """Tell other processes the epoch moved; best effort (the database is the truth)."""


class NullBroadcast:
    """No broadcast configured: other processes read the epoch from the database instead."""

    def publish(self, epoch: int) -> None:
        return None


class RevocationState:
    """This process's view of the revocation epoch."""

    def __init__(
        self,
        *,
        backstop_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch = 0
        self._backstop = backstop_seconds
        self._monotonic = monotonic
        self._listening = False
        self._last_read = float("-inf")
        self._lock = threading.Lock()

    def observe(self, epoch: int) -> None:
        """Move forward to ``epoch`` (never back)."""
        with self._lock:
            if epoch > self.epoch:
                self.epoch = epoch

    def listening(self, healthy: bool) -> None:
        """The broadcast listener reports whether it is connected and subscribed."""
        self._listening = healthy

    def is_fresh(self) -> bool:
        """True when the current epoch may be used without reading the database."""
        return self._listening and self._monotonic() - self._last_read < self._backstop

    def sync(self, tx: UnitOfWork) -> int:
        """The current epoch, read from ``tx`` unless the broadcast keeps it fresh."""
        if not (self._listening and self._monotonic() - self._last_read < self._backstop):
            self.observe(tx.revocations.epoch())
            self._last_read = self._monotonic()
        return self.epoch


class Revoker:
    """Advances the epoch inside a transaction and announces it once that has committed."""

    def __init__(self, state: RevocationState, broadcast: RevocationBroadcast) -> None:
        self.state = state
        self._broadcast = broadcast

    @property
    def broadcast_impl(self) -> RevocationBroadcast:
        return self._broadcast

    def bump(self, tx: UnitOfWork) -> int:
        return tx.revocations.bump()

    def announce(self, epoch: int) -> None:
        self.state.observe(epoch)
        try:
            self._broadcast.publish(epoch)
        except Exception:  # the broadcast is an optimisation; the database already has it
            log.warning("revocation broadcast failed; other replicas fall back to the database")
