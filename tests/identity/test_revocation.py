"""The revocation epoch: fresh from the database without a broadcast, from Redis pub/sub with
one, and back to the database whenever the broadcast is not healthy."""

from __future__ import annotations

import time

import pytest

from bastion.backends.memory import MemoryStorage
from bastion.backends.redis.revocation import RedisRevocationBroadcast
from bastion.services.revocation import NullBroadcast, RevocationState, Revoker


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bump(storage: MemoryStorage) -> int:
    with storage.transaction() as tx:
        return tx.revocations.bump()


def test_without_a_listener_every_sync_reads_the_database() -> None:
    storage = MemoryStorage()
    state = RevocationState()
    with storage.transaction() as tx:
        assert state.sync(tx) == 0
    bump(storage)  # by another process
    with storage.transaction() as tx:
        assert state.sync(tx) == 1


def test_with_a_healthy_listener_the_database_is_read_at_least_every_second() -> None:
    storage, ticker = MemoryStorage(), Ticker()
    state = RevocationState(monotonic=ticker)
    state.listening(True)
    with storage.transaction() as tx:
        state.sync(tx)
    bump(storage)  # the broadcast message was lost
    ticker.now += 0.5
    with storage.transaction() as tx:
        assert state.sync(tx) == 0
    ticker.now += 0.6
    with storage.transaction() as tx:
        assert state.sync(tx) == 1


def test_losing_the_listener_falls_back_to_the_database() -> None:
    storage, ticker = MemoryStorage(), Ticker()
    state = RevocationState(monotonic=ticker)
    state.listening(True)
    with storage.transaction() as tx:
        state.sync(tx)
    bump(storage)
    state.listening(False)
    with storage.transaction() as tx:
        assert state.sync(tx) == 1


def test_local_revocation_is_seen_at_once_and_never_moves_back() -> None:
    state = RevocationState()
    revoker = Revoker(state, NullBroadcast())
    revoker.announce(7)
    state.observe(3)
    assert state.epoch == 7


@pytest.mark.redis
def test_redis_broadcast_reaches_another_replica_within_a_second(
    redis_url: str, redis_prefix: str
) -> None:
    publisher = RedisRevocationBroadcast(redis_url, prefix=redis_prefix)
    listener = RedisRevocationBroadcast(redis_url, prefix=redis_prefix)
    state = RevocationState()
    listener.listen(on_epoch=state.observe, on_health=state.listening)
    try:
        deadline = time.monotonic() + 5
        while not state._listening and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state._listening
        publisher.publish(42)
        deadline = time.monotonic() + 1
        while state.epoch != 42 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert state.epoch == 42
    finally:
        listener.close()
        publisher.close()
    assert not state._listening
