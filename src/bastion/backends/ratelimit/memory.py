"""`MemoryRateLimitStore`: GCRA buckets in a dict, exact for one process (one event loop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from bastion.core.ratelimit import Bucket, BucketState, decide


def monotonic_micros() -> int:
    return time.monotonic_ns() // 1000


class MemoryRateLimitStore:
    """Buckets live in this process only (`shared.SharedRateLimitStore` serves several workers).

    A decision reads and writes every bucket under one lock, so concurrent requests are
    counted exactly. Buckets that are full again (TAT in the past) equal absent ones and are
    swept when the table grows, which bounds memory under a flood of distinct clients.
    """

    def __init__(
        self, *, now: Callable[[], int] = monotonic_micros, sweep_at: int = 100_000
    ) -> None:
        self._now = now
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()
        self._sweep_at = sweep_at

    async def acquire(self, buckets: Sequence[Bucket]) -> list[BucketState]:
        return self.acquire_now(buckets)

    def acquire_now(self, buckets: Sequence[Bucket]) -> list[BucketState]:
        with self._lock:
            now = self._now()
            states = decide([self._tats.get(b.key) for b in buckets], now, buckets)
            if states and states[0].allowed:
                for bucket, state in zip(buckets, states, strict=True):
                    self._tats[bucket.key] = state.tat
                if len(self._tats) > self._sweep_at:
                    self._sweep(now)
            return states

    def _sweep(self, now: int) -> None:
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        if len(self._tats) > self._sweep_at:
            # Still too many live buckets: forget the ones closest to full (least information).
            keep = sorted(self._tats.items(), key=lambda item: item[1])[-self._sweep_at // 2 :]
            self._tats = dict(keep)

    async def close(self) -> None:
        return None
