"""Counter stores: exact under concurrency in memory and in Redis (one script per decision),
and an unreachable Redis is an error the limiter can act on, never an allow."""

from __future__ import annotations

import asyncio

import pytest
import redis

from bastion.backends.ratelimit.memory import MemoryRateLimitStore
from bastion.backends.ratelimit.redis import RedisRateLimitStore
from bastion.core.ratelimit import Bucket, Quota
from bastion.errors import RateLimitUnavailableError
from tests.e2e.procs import free_port

FIFTY = Quota("perClient", 0.001, 50)


async def charge(stores: list[object], bucket: Bucket, count: int) -> int:
    results = await asyncio.gather(
        *(stores[i % len(stores)].acquire([bucket]) for i in range(count))  # type: ignore[attr-defined]
    )
    return sum(1 for states in results if states[0].allowed)


def test_memory_store_exact_under_concurrency() -> None:
    store = MemoryRateLimitStore()
    assert asyncio.run(charge([store], Bucket(FIFTY, "client:a"), 200)) == 50


def test_memory_store_sweeps_full_buckets() -> None:
    now = [0]
    store = MemoryRateLimitStore(now=lambda: now[0], sweep_at=10)
    quota = Quota("q", 1000, 1)
    for i in range(20):
        store.acquire_now([Bucket(quota, f"k{i}")])
        now[0] += 10_000
    assert len(store._tats) <= 10


@pytest.mark.redis
def test_redis_stores_sharing_a_prefix_are_exact_together(
    redis_url: str, redis_prefix: str
) -> None:
    async def scenario() -> tuple[int, list[bytes]]:
        # Exactness is the point here, not the outage timeout: a loaded machine may take longer
        # than the production 0.5 s to open 200 connections.
        first = RedisRateLimitStore(redis_url, prefix=redis_prefix + "unit:", timeout=5.0)
        second = RedisRateLimitStore(redis_url, prefix=redis_prefix + "unit:", timeout=5.0)
        try:
            allowed = await charge([first, second], Bucket(FIFTY, "client:shared"), 200)
        finally:
            await first.close()
            await second.close()
        keys = redis.Redis.from_url(redis_url).keys(redis_prefix + "unit:*")
        return allowed, keys

    allowed, keys = asyncio.run(scenario())
    assert allowed == 50
    assert keys == [(redis_prefix + "unit:rl:client:shared").encode()]


@pytest.mark.redis
def test_redis_refusal_by_one_bucket_charges_none(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> list[bool]:
        store = RedisRateLimitStore(redis_url, prefix=redis_prefix + "pair:")
        roomy, tight = Bucket(Quota("a", 0.001, 10), "roomy"), Bucket(Quota("b", 0.001, 1), "tight")
        try:
            outcomes = []
            for _ in range(3):
                states = await store.acquire([roomy, tight])
                outcomes.append(all(s.allowed for s in states))
            states = await store.acquire([roomy])
            return [*outcomes, states[0].allowed and states[0].remaining == 8]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [True, False, False, True]


def test_unreachable_redis_is_an_error_not_an_allow() -> None:
    async def scenario() -> None:
        store = RedisRateLimitStore(f"redis://127.0.0.1:{free_port()}/0", prefix="x:")
        try:
            await store.acquire([Bucket(FIFTY, "k")])
        finally:
            await store.close()

    with pytest.raises(RateLimitUnavailableError):
        asyncio.run(scenario())
