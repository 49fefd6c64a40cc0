"""The rate-limit stages: which buckets a request is charged, fail-closed versus per-replica
fallback when the shared store fails, and recovery without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from bastion.backends.ratelimit.memory import MemoryRateLimitStore
from bastion.core.model import Principal, PrincipalKind
from bastion.core.netrules import client_key
from bastion.core.ratelimit import Bucket, BucketState, Quota
from bastion.core.routes import RouteMatch, RouteSpec
from bastion.errors import AuthenticationError, RateLimitUnavailableError
from bastion.gateway.limits import RateLimiter, RatePolicy, rate_headers
from bastion.gateway.metrics import GatewayMetrics
from bastion.services.access import Identity, RequestFacts, Verdict
from tests.gateway.conftest import GatewayFactory


class FlakyStore:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.inner = MemoryRateLimitStore()

    async def acquire(self, buckets: Sequence[Bucket]) -> list[BucketState]:
        self.calls += 1
        if not self.up:
            raise RateLimitUnavailableError("down")
        return await self.inner.acquire(buckets)

    async def close(self) -> None:
        return None


ROUTE = RouteSpec(
    "GET", "/api/patterns/{id}", "patterns", "read", "patterns:read", "p.read", "{id}"
)
IDENTITY = Identity(
    Principal(
        "prn_1", "ten_1", PrincipalKind.USER, "a@example.com", datetime(2026, 1, 1, tzinfo=UTC)
    ),
    "acme",
    ("viewer",),
    "key_1",
)


def verdict(
    *, identity: Identity | None = IDENTITY, allowed: bool = True, ip: str | None = "10.0.0.1"
) -> Verdict:
    facts = RequestFacts("GET", "/api/patterns/x", None, ip, None, "req_1")
    error = None if allowed else AuthenticationError("unknown_key")
    return Verdict(facts, RouteMatch(ROUTE, {"id": "x"}), identity, error)


POLICY = RatePolicy(
    per_client=Quota("perClient", 0.001, 4),
    per_tenant=Quota("perTenant", 0.001, 100),
    per_pattern=Quota("perPattern", 0.001, 100),
)


def limiter(
    policy: RatePolicy = POLICY, store: object | None = None, clock: list[float] | None = None
) -> RateLimiter:
    moment = clock if clock is not None else [0.0]
    return RateLimiter(
        policy,
        store=store or MemoryRateLimitStore(),  # type: ignore[arg-type]
        shared=store is not None,
        metrics=GatewayMetrics(),
        monotonic=lambda: moment[0],
    )


def test_buckets_for_authenticated_request() -> None:
    keys = [b.key for b in limiter().buckets_for(verdict())]
    assert keys == ["client:p:prn_1", "tenant:acme", "pattern:GET /api/patterns/{id}:x"]


@pytest.mark.parametrize(
    ("ip", "key"), [("10.0.0.1", "client:ip:10.0.0.1"), (None, "client:ip:unknown")]
)
def test_failed_or_anonymous_request_is_counted_by_address_only(ip: str | None, key: str) -> None:
    keys = [b.key for b in limiter().buckets_for(verdict(identity=None, allowed=False, ip=ip))]
    assert keys == [key]


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("2001:db8:1:2::1", "client:ip:2001:db8:1:2::/64"),
        ("2001:db8:1:2:dead:beef:0:9", "client:ip:2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "client:ip:192.0.2.1"),
    ],
)
def test_an_ipv6_client_cannot_rotate_addresses_in_its_64_for_fresh_buckets(
    ip: str, key: str
) -> None:
    """Counted like the connection caps (`client_key`), not by the full address."""
    keys = [b.key for b in limiter().buckets_for(verdict(identity=None, allowed=False, ip=ip))]
    assert keys == [key]
    assert key == f"client:ip:{client_key(ip)}"


def test_rotating_ipv6_client_is_refused_at_the_edge_once_its_64_is_spent(
    gateway: GatewayFactory,
) -> None:
    config = {
        "gateway": {"trustedProxies": ["127.0.0.1/32"]},
        "security": {
            "rateLimit": {
                "enabled": True,
                "perClient": {"requestsPerSecond": 0.001, "burstSize": 3},
            }
        },
    }
    with gateway(config) as gw:
        statuses = [
            gw.client.get(
                "/api/patterns", headers={"X-Forwarded-For": f"2001:db8:1:2::{i + 100:x}"}
            ).status_code
            for i in range(5)
        ]
        other = gw.client.get("/api/patterns", headers={"X-Forwarded-For": "2001:db8:1:3::1"})
    assert statuses == [401, 401, 401, 429, 429]
    assert other.status_code == 401  # another /64 is another client


def test_fail_closed_when_store_is_down() -> None:
    store = FlakyStore()
    store.up = False
    with pytest.raises(RateLimitUnavailableError):
        asyncio.run(limiter(store=store).check_request(verdict()))


def test_fallback_divides_the_limit_and_recovers_after_the_retry_window() -> None:
    store, clock = FlakyStore(), [0.0]
    policy = RatePolicy(per_client=Quota("perClient", 0.001, 4), fail_closed=False, replicas=2)
    gate = limiter(policy, store, clock)
    store.up = False

    async def burst(n: int) -> list[bool]:
        return [(await gate.check_request(verdict())).allowed for _ in range(n)]

    assert asyncio.run(burst(4)) == [True, True, False, False]  # 4 shared by 2 replicas
    assert store.calls == 1  # not retried inside the retry window
    store.up = True
    clock[0] = 2.0
    assert asyncio.run(burst(1)) == [True]
    assert store.calls == 2


def test_rate_headers_on_refusal() -> None:
    gate = limiter(RatePolicy(per_client=Quota("perClient", 0.001, 1)))
    asyncio.run(gate.check_request(verdict()))
    refused = asyncio.run(gate.check_request(verdict()))
    headers = dict(rate_headers(refused))
    assert headers[b"ratelimit-limit"] == b"1"
    assert headers[b"ratelimit-remaining"] == b"0"
    assert int(headers[b"retry-after"]) >= 1
