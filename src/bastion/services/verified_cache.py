"""A bounded cache of verified credentials that honours expiry and the revocation epoch, and
the slot in which a verifier's ``prepare`` hands what it checked to its ``verify``."""

from __future__ import annotations

import contextlib
import threading
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


class Prechecked(Generic[V]):
    """What a verifier's ``prepare`` checked before the caller's transaction (a token's verified
    claims), kept for its ``verify`` of the same credential in the same thread; handed out once,
    so nothing checked for one call is ever taken by another."""

    def __init__(self) -> None:
        self._slot = threading.local()

    def put(self, presented: str, value: V | None) -> None:
        self._slot.item = (presented, value) if value is not None else None

    def take(self, presented: str) -> V | None:
        item: tuple[str, V] | None = getattr(self._slot, "item", None)
        self._slot.item = None
        return item[1] if item is not None and item[0] == presented else None
