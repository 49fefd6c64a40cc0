"""The rate-limit stages: a global bucket before any work, then per client, tenant and pattern.

Buckets: ``global``; ``perClient`` keyed by the authenticated principal, or by the client
address for anonymous and failed requests (so credential guessing is throttled too; an IPv6
address by its /64, as `bastion.core.netrules.client_key` counts clients);
``perTenant`` keyed by the caller's tenant; ``perPattern`` keyed by route and resource id,
shared by every client. All buckets of one stage are charged together or not at all.

When the shared store (Redis) fails: ``failClosed`` → `RateLimitUnavailableError` (503);
otherwise this replica decides alone with every quota divided by ``replicas``, counted in
``bastion_rate_limit_fallback_decisions_total``. After a failure the store is retried once a
second, so service recovers without a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bastion.backends.ratelimit import RateLimitStore
from bastion.backends.ratelimit.memory import MemoryRateLimitStore
from bastion.core.netrules import client_key
from bastion.core.ratelimit import Bucket, LimitDecision, Quota, summarise
from bastion.errors import RateLimitedError, RateLimitUnavailableError
from bastion.gateway.metrics import GatewayMetrics
from bastion.services.access import Verdict

log = logging.getLogger("bastion.gateway.ratelimit")

RETRY_STORE_AFTER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RatePolicy:
    global_: Quota | None = None
    per_client: Quota | None = None
    per_tenant: Quota | None = None
    per_pattern: Quota | None = None
    fail_closed: bool = True
    replicas: int = 1

    @property
    def active(self) -> bool:
        return any((self.global_, self.per_client, self.per_tenant, self.per_pattern))


class RateLimiter:
    def __init__(
        self,
        policy: RatePolicy,
        *,
        store: RateLimitStore,
        shared: bool,
        metrics: GatewayMetrics,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._store = store
        self._shared = shared
        self._fallback = MemoryRateLimitStore()
        self._metrics = metrics
        self._monotonic = monotonic
        self._store_down_until = 0.0

    async def check_global(self) -> LimitDecision:
        if self.policy.global_ is None:
            return LimitDecision.unlimited()
        return await self._decide([Bucket(self.policy.global_, "global")])

    async def check_request(self, verdict: Verdict) -> LimitDecision:
        return await self._decide(self.buckets_for(verdict))

    async def check_client(self, verdict: Verdict) -> LimitDecision:
        """Charge the perClient bucket alone, for a call to bastion's admin API: a flood of
        gateway traffic (``global``) or another client of the tenant (``perTenant``) must not
        keep an administrator from revoking it; ``perPattern`` is for ``gateway.routes``."""
        return await self._decide(self._client_bucket(verdict))

    def _client_bucket(self, verdict: Verdict) -> list[Bucket]:
        quota, identity = self.policy.per_client, verdict.identity
        if quota is None:
            return []
        if identity is not None:
            return [Bucket(quota, f"client:p:{identity.principal.id}")]
        # Counted like the connection caps: an IPv6 client by its /64, which it could otherwise
        # rotate through for a fresh bucket each request.
        address = client_key(verdict.facts.client_ip) or "unknown"
        return [Bucket(quota, f"client:ip:{address}")]

    def buckets_for(self, verdict: Verdict) -> list[Bucket]:
        policy, identity = self.policy, verdict.identity
        buckets = self._client_bucket(verdict)
        if not verdict.allowed:
            return buckets
        if policy.per_tenant is not None and identity is not None:
            buckets.append(Bucket(policy.per_tenant, f"tenant:{identity.tenant}"))
        if policy.per_pattern is not None and verdict.match is not None:
            route = verdict.match.route
            key = f"pattern:{route.method} {route.path}:{verdict.match.resource_id or ''}"
            buckets.append(Bucket(policy.per_pattern, key))
        return buckets

    async def _decide(self, buckets: Sequence[Bucket]) -> LimitDecision:
        if not buckets:
            return LimitDecision.unlimited()
        if self._shared and self._monotonic() < self._store_down_until:
            decision = self._degraded(buckets)
        else:
            try:
                states = await self._store.acquire(buckets)
            except RateLimitUnavailableError:
                self._mark_down()
                decision = self._degraded(buckets)
            else:
                self._mark_up()
                decision = summarise(states, buckets)
        if not decision.allowed:
            self._metrics.rate_limit_hits.labels(decision.denied_by or "?").inc()
        return decision

    def _degraded(self, buckets: Sequence[Bucket]) -> LimitDecision:
        if self.policy.fail_closed:
            raise RateLimitUnavailableError("rate-limit store unreachable; failClosed is set")
        self._metrics.rate_limit_fallback.inc()
        scaled = [Bucket(b.quota.scaled(self.policy.replicas), b.key) for b in buckets]
        return summarise(self._fallback.acquire_now(scaled), scaled)

    def _mark_down(self) -> None:
        if self._store_down_until == 0.0:
            mode = "failing closed (503)" if self.policy.fail_closed else "per-replica fallback"
            log.warning("rate-limit store unreachable: %s", mode)
        self._store_down_until = self._monotonic() + RETRY_STORE_AFTER_SECONDS
        self._metrics.rate_limit_store_up.set(0)

    def _mark_up(self) -> None:
        if self._store_down_until != 0.0:
            log.warning("rate-limit store reachable again")
            self._store_down_until = 0.0
            self._metrics.rate_limit_store_up.set(1)

    async def close(self) -> None:
        await self._store.close()


def limited_error(decision: LimitDecision) -> RateLimitedError:
    return RateLimitedError(
        decision.denied_by or "rate",
        limit=decision.limit,
        retry_after=decision.retry_after,
        reset_after=decision.reset_after,
        window=decision.window,
    )


def rate_headers(decision: LimitDecision) -> list[tuple[bytes, bytes]]:
    """``RateLimit-*`` (draft-ietf-httpapi-ratelimit-headers) and, on a refusal, Retry-After."""
    if decision.limit <= 0:
        return []
    headers = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(decision.reset_after).encode()),
        (b"ratelimit-policy", f"{decision.limit};w={decision.window}".encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    return headers
