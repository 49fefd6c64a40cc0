"""A bounded cache of verified credentials that honours expiry and the revocation epoch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

V = TypeVar("V")
K = TypeVar("K")


@dataclass(slots=True)
class Verified(Generic[V]):
    value: V
    epoch: int
    expires_at: datetime | None
    touched_at: datetime | None = None


class VerifiedCache(Generic[K, V]):
    """At most ``capacity`` entries; the oldest insertion goes first when full.

    An entry counts only while the epoch it was verified under is current and ``now`` is before
    its expiry, so a revoked, disabled or expired credential is never served from here.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._entries: dict[K, Verified[V]] = {}

    def get(self, key: K, *, epoch: int, now: datetime) -> Verified[V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.epoch != epoch or (entry.expires_at is not None and now >= entry.expires_at):
            self._entries.pop(key, None)
            return None
        return entry

    def put(self, key: K, entry: Verified[V]) -> None:
        if len(self._entries) >= self._capacity and key not in self._entries:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                self._entries.pop(next(iter(self._entries)))
        self._entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
