"""Counter stores: exact under concurrency in memory and in Redis (one script per decision),
and an unreachable Redis is an error the limiter can act on, never an allow."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bastion.backends.ratelimit.memory import MemoryRateLimitStore
from bastion.backends.ratelimit.redis import RedisRateLimitStore
from bastion.backends.ratelimit.shared import (
    PROBE,
    RateLimitTableError,
    SharedRateLimitStore,
    rate_limit_table,
)
from bastion.core.ratelimit import MICROS, Bucket, Quota
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


SHARED_WORKER = """
import sys
from pathlib import Path
from bastion.backends.ratelimit.shared import SharedRateLimitStore
from bastion.core.ratelimit import Bucket, Quota
store = SharedRateLimitStore(Path(sys.argv[1]))
bucket = Bucket(Quota("perClient", 0.001, 50), "client:shared")
sys.stdin.readline()  # every worker starts together
print(sum(store.acquire_now([bucket])[0].allowed for _ in range(200)))
"""


@pytest.fixture
def rate_table(tmp_path: Path) -> Iterator[Path]:
    with rate_limit_table(str(tmp_path)) as path:
        yield path


def test_shared_store_is_exact_across_worker_processes(rate_table: Path) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", SHARED_WORKER, str(rate_table)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [worker.communicate("go\n", timeout=60)[0] for worker in workers]
    assert sum(int(output) for output in outputs) == 50


def test_shared_store_refills_and_keeps_keys_apart(rate_table: Path) -> None:
    now = [0]
    store = SharedRateLimitStore(rate_table, now=lambda: now[0])
    quota = Quota("q", 1, 2)  # two at once, one more a second
    assert [store.acquire_now([Bucket(quota, "a")])[0].allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert store.acquire_now([Bucket(quota, "b")])[0].allowed
    now[0] += MICROS
    assert store.acquire_now([Bucket(quota, "a")])[0].allowed


def test_shared_store_never_puts_two_buckets_of_a_request_in_one_slot(tmp_path: Path) -> None:
    """In a table of two slots, of twenty pairs of keys some start their probe at the same
    slot: each bucket must still get a slot of its own, or one would be lost (a reset)."""
    quota = Quota("q", 0.001, 1)
    for pair in range(20):
        with rate_limit_table(str(tmp_path), slots=2) as path:
            store = SharedRateLimitStore(path, now=lambda: 0)
            a, b = Bucket(quota, f"a{pair}"), Bucket(quota, f"b{pair}")
            assert store.acquire_now([a, b])[0].allowed
            assert not store.acquire_now([a])[0].allowed
            assert not store.acquire_now([b])[0].allowed


def test_shared_store_forgets_the_bucket_closest_to_full_when_crowded(tmp_path: Path) -> None:
    now = [0]
    with rate_limit_table(str(tmp_path), slots=PROBE) as path:
        store = SharedRateLimitStore(path, now=lambda: now[0])
        # Every slot holds a refilling bucket; "heavy" has spent the most.
        for index in range(PROBE - 1):
            store.acquire_now([Bucket(Quota("q", 1, 1), f"light-{index}")])
        heavy = Bucket(Quota("q", 0.001, 1), "heavy")
        assert store.acquire_now([heavy])[0].allowed
        assert store.acquire_now([Bucket(Quota("q", 1, 1), "newcomer")])[0].allowed
        assert not store.acquire_now([heavy])[0].allowed  # a light one made room, not heavy


def test_a_file_that_is_not_a_rate_limit_table_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(b"x" * 4096)
    with pytest.raises(RateLimitTableError, match="is not a bastion rate-limit table"):
        SharedRateLimitStore(other)
