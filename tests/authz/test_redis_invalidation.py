"""Across replicas through Redis: a binding removed on one replica stops granting on another
at once (before its once-a-second version check would notice)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bastion.config import parse_config
from bastion.services.access import RequestFacts
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services
from tests.authz.golden import GoldenClock

pytestmark = pytest.mark.redis


def replica(tmp_path: Path, redis_url: str, prefix: str) -> Services:
    config = parse_config(
        f"storage:\n  url: sqlite:///{tmp_path}/b.db\n  redisUrl: {redis_url}\n"
        f"  redisPrefix: '{prefix}'\n"
        f"security:\n  pepper: {'p' * 40}\n"
        "gateway:\n  routes:\n    - {method: GET, path: /p, resource: patterns, action: read}\n",
        source="test",
        environ={},
    )
    services = build_services(config, clock=GoldenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    services.storage.migrate()
    return services


def wait_for(condition: object, what: str) -> None:
    for _ in range(200):
        if callable(condition) and condition():
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_unbind_on_one_replica_denies_on_another_through_redis(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    first = replica(tmp_path, redis_url, redis_prefix)
    second = replica(tmp_path, redis_url, redis_prefix)
    key = initialise(
        storage=first.storage,
        api_keys=first.api_keys,
        clock=first.clock,
        tenant_name="default",
        admin_name="admin@example.com",
        actor={"type": "operator", "id": "t"},
    ).admin_key.secret
    facts = RequestFacts("GET", "/p", key, "127.0.0.1", "t", "r")
    try:
        second.authz.start()
        wait_for(lambda: second.authorizer._poll_seconds == 1.0, "the Redis subscription")
        assert second.access.check(facts).allowed  # compiled and cached on the second replica
        generation = second.authorizer._generation
        [binding] = first.authz.admin.list_bindings("default")
        first.authz.admin.unbind(tenant_name="default", binding_id=binding.id, actor={"id": "t"})
        wait_for(lambda: second.authorizer._generation > generation, "the broadcast")
        assert not second.access.check(facts).allowed
    finally:
        second.authz.close()
        first.authz.close()
