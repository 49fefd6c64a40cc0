"""Rate-limit counter stores: the protocol the gateway uses, with memory, shared-table and Redis
backends.

`memory.MemoryRateLimitStore` serves one process, `shared.SharedRateLimitStore` the workers of
one `bastion serve --workers N`; `redis.RedisRateLimitStore` is shared by replicas. All run the
GCRA of `bastion.core.ratelimit`, all buckets of a request at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bastion.core.ratelimit import Bucket, BucketState


class RateLimitStore(Protocol):
    async def acquire(self, buckets: Sequence[Bucket]) -> list[BucketState]:
        """Charge every bucket or none; `RateLimitUnavailableError` when the store fails."""

    async def close(self) -> None:
        """Release connections."""
