"""Rate limits through real processes: exact under concurrency in memory, shared through Redis by
two bastion processes, and the configured behaviour when Redis goes away and comes back.

Redis outages use a private redis-server started and stopped by the test (by PID); the shared
server is only used through the session's own key prefix.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import procs
from tests.e2e.gwstack import GatewayStack, gateway_stack, start_bastion, stopped, worker_pids

pytestmark = pytest.mark.e2e

TIGHT = {"requestsPerSecond": 0.001, "burstSize": 50}


async def burst(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(
                client.get(urls[i % len(urls)], headers={"Authorization": f"Bearer {key}"})
                for i in range(count)
            )
        )


def test_exactly_the_limit_passes_under_concurrency_in_memory(tmp_path: Path) -> None:
    config = {"security": {"rateLimit": {"enabled": True, "perClient": TIGHT}}}
    with gateway_stack(tmp_path, config) as stack:
        responses = asyncio.run(burst([stack.base + "/api/patterns"], stack.limited_key, 200))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 50, 429: 150}
        refused = next(r for r in responses if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-limit"] == "50"
        assert refused.headers["ratelimit-remaining"] == "0"
        [event] = stack.audit_for(refused.json()["requestId"])
        assert event["details"]["status"] == 429
        assert event["details"]["limit"] == "perClient"
        assert event["outcome"] == "denied"
        passed = next(r for r in responses if r.status_code == 200)
        assert int(passed.headers["ratelimit-remaining"]) < 50


def test_only_bastions_own_limit_reaches_the_client(tmp_path: Path) -> None:
    """Where bastion limits a request, the upstream's ``RateLimit-*`` would contradict it
    (two values, the client picking either): only bastion's reach the client. The upstream's
    ``Retry-After`` is its own to give (a 503, say) and passes."""
    config = {"security": {"rateLimit": {"enabled": True, "perClient": TIGHT}}}
    with gateway_stack(tmp_path, config) as stack:
        response = stack.get("/public/own-headers")
        assert response.status_code == 200
        assert response.headers.get_list("ratelimit-limit") == ["50"]
        assert response.headers.get_list("ratelimit-remaining") == ["49"]
        assert response.headers.get_list("retry-after") == ["7"]
        assert response.headers.get_list("x-bastion-request-id") != ["req_upstream"]


def test_workers_without_redis_share_one_limit(tmp_path: Path) -> None:
    """`--workers 2` without Redis: the workers count in one table, so the limit is the
    server's. Each worker is stopped in turn so that the other serves a burst."""
    config = {"security": {"rateLimit": {"enabled": True, "perClient": TIGHT}}}
    with gateway_stack(tmp_path, config, bastion_args=["--workers", "2"]) as stack:
        first, second = worker_pids(stack)
        url = [stack.base + "/api/patterns"]
        with stopped(first):
            served_by_second = asyncio.run(burst(url, stack.limited_key, 80))
        with stopped(second):
            served_by_first = asyncio.run(burst(url, stack.limited_key, 20))
    assert Counter(r.status_code for r in served_by_second) == {200: 50, 429: 30}
    # Counted apart, the first worker would have let all twenty through.
    assert Counter(r.status_code for r in served_by_first) == {429: 20}


@pytest.mark.redis
def test_two_processes_sharing_redis_allow_at_most_the_limit(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    config = {
        "storage": {"redisUrl": redis_url, "redisPrefix": redis_prefix + "two-procs:"},
        "security": {"rateLimit": {"enabled": True, "perClient": TIGHT}},
    }
    with gateway_stack(tmp_path, config) as stack:
        second_port = procs.free_port()
        stack.processes.append(start_bastion(tmp_path, second_port, name="bastion-2"))
        urls = [stack.base + "/api/patterns", f"http://127.0.0.1:{second_port}/api/patterns"]
        responses = asyncio.run(burst(urls, stack.limited_key, 200))
        statuses = Counter(r.status_code for r in responses)
        assert statuses[200] <= 50
        assert statuses[200] + statuses[429] == 200
        assert statuses[200] == 50  # one atomic script per decision: exact, not just bounded


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = procs.free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def wait_for_status(stack: GatewayStack, status: int, *, deadline: float = 15) -> httpx.Response:
    end = time.monotonic() + deadline
    while True:
        response = stack.get("/api/patterns", key=stack.limited_key)
        if response.status_code == status or time.monotonic() > end:
            return response
        time.sleep(0.2)


def test_redis_down_fails_closed_then_recovers_without_restart(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    config = {
        "storage": {"redisUrl": private_redis.url},
        "security": {
            "rateLimit": {
                "enabled": True,
                "perClient": {"requestsPerSecond": 1000, "burstSize": 1000},
            }
        },
    }
    with gateway_stack(tmp_path / "stack", config) as stack:
        assert stack.get("/api/patterns", key=stack.limited_key).status_code == 200
        private_redis.stop()
        down = stack.get("/api/patterns", key=stack.limited_key)
        assert down.status_code == 503
        assert down.json()["code"] == "ratelimit_unavailable"
        [event] = stack.audit_for(down.json()["requestId"])
        assert event["details"]["reason"] == "ratelimit_unavailable"
        metrics = httpx.get(stack.base + "/_bastion/metrics", timeout=5).text
        assert "bastion_rate_limit_store_up 0.0" in metrics
        private_redis.start()
        assert wait_for_status(stack, 200).status_code == 200


def test_redis_down_with_fail_open_uses_per_replica_share(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    config = {
        "storage": {"redisUrl": private_redis.url},
        "security": {
            "rateLimit": {
                "enabled": True,
                "failClosed": False,
                "replicas": 2,
                "perClient": {"requestsPerSecond": 0.001, "burstSize": 10},
            }
        },
    }
    with gateway_stack(tmp_path / "stack", config) as stack:
        private_redis.stop()
        statuses = Counter(
            stack.get("/api/patterns", key=stack.limited_key).status_code for _ in range(12)
        )
        assert statuses == {200: 5, 429: 7}  # burst 10 shared by 2 replicas → 5 here
        metrics = httpx.get(stack.base + "/_bastion/metrics", timeout=5).text
        assert "bastion_rate_limit_fallback_decisions_total 12.0" in metrics
        private_redis.start()
        assert wait_for_status(stack, 200).status_code == 200
        metrics = httpx.get(stack.base + "/_bastion/metrics", timeout=5).text
        assert "bastion_rate_limit_store_up 1.0" in metrics
