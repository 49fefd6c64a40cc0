"""Rate-limit maths: the generic cell rate algorithm (GCRA) over integer microseconds.

A bucket is one number, its theoretical arrival time (TAT). With emission interval ``T`` (one
request's share of time) and a burst of ``B`` requests, a request at ``now`` is allowed when
``max(TAT, now) + T - now <= B * T``; allowing it moves TAT to ``max(TAT, now) + T``. At one
instant exactly ``B`` requests pass. Integers keep the arithmetic exact and identical to the
Redis script, which runs the same steps (``backends/ratelimit/redis.py``).

Several buckets can gate one request (global, per client, per tenant, per route): either every
one of them admits it and all move, or none moves — so a request refused by one limit does not
spend the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Quota:
    """A sustained ``rate`` (requests per second) with a ``burst`` of requests at once."""

    name: str
    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError("a quota needs a positive rate and a burst of at least 1")

    @property
    def interval(self) -> int:
        """Emission interval in microseconds (at least 1)."""
        return max(1, round(MICROS / self.rate))

    @property
    def tolerance(self) -> int:
        return self.interval * self.burst

    @property
    def window_seconds(self) -> int:
        """How long an empty bucket takes to refill completely."""
        return max(1, math.ceil(self.tolerance / MICROS))

    def scaled(self, divisor: int) -> Quota:
        """This quota shared by ``divisor`` replicas that cannot coordinate (at least 1 each)."""
        if divisor <= 1:
            return self
        return Quota(self.name, self.rate / divisor, max(1, self.burst // divisor))


@dataclass(frozen=True, slots=True)
class Bucket:
    """One counter to charge: a quota and the key naming who or what it counts."""

    quota: Quota
    key: str


@dataclass(frozen=True, slots=True)
class BucketState:
    """One bucket after a decision: its new TAT and what the client may be told."""

    allowed: bool
    tat: int
    remaining: int
    retry_after: int  # microseconds until a request would pass (0 when allowed)
    reset_after: int  # microseconds until the bucket is full again


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """The outcome over every bucket of a request."""

    allowed: bool
    limit: int = 0
    remaining: int = 0
    retry_after: int = 0  # seconds, rounded up
    reset_after: int = 0  # seconds, rounded up
    window: int = 1  # seconds
    denied_by: str | None = None  # the quota name that refused

    @classmethod
    def unlimited(cls) -> LimitDecision:
        return cls(allowed=True, limit=0)


def gcra(tat: int | None, now: int, quota: Quota) -> BucketState:
    """One bucket's answer for one request at ``now`` (microseconds), given its stored TAT."""
    interval, tolerance = quota.interval, quota.tolerance
    base = now if tat is None or tat < now else tat
    new_tat = base + interval
    diff = new_tat - now
    if diff > tolerance:
        return BucketState(False, base, 0, diff - tolerance, base - now)
    remaining = (tolerance - diff) // interval
    return BucketState(True, new_tat, remaining, 0, diff)


def decide(tats: Sequence[int | None], now: int, buckets: Sequence[Bucket]) -> list[BucketState]:
    """Every bucket's state; when any refuses, every state keeps its old TAT (none is charged)."""
    states = [gcra(tat, now, b.quota) for tat, b in zip(tats, buckets, strict=True)]
    if all(s.allowed for s in states):
        return states
    kept = [max(now, tat) if tat is not None else now for tat in tats]
    return [
        BucketState(False, old, 0, s.retry_after, max(0, old - now))
        if not s.allowed
        else BucketState(True, old, s.remaining, 0, max(0, old - now))
        for s, old in zip(states, kept, strict=True)
    ]


def summarise(states: Sequence[BucketState], buckets: Sequence[Bucket]) -> LimitDecision:
    """The headline for the client: the refusing bucket, or the one with least room left."""
    if not buckets:
        return LimitDecision.unlimited()
    refused = [(s, b) for s, b in zip(states, buckets, strict=True) if not s.allowed]
    if refused:
        state, bucket = max(refused, key=lambda pair: pair[0].retry_after)
        return LimitDecision(
            allowed=False,
            limit=bucket.quota.burst,
            remaining=0,
            retry_after=max(1, math.ceil(state.retry_after / MICROS)),
            reset_after=math.ceil(state.reset_after / MICROS),
            window=bucket.quota.window_seconds,
            denied_by=bucket.quota.name,
        )
    state, bucket = min(zip(states, buckets, strict=True), key=lambda pair: pair[0].remaining)
    return LimitDecision(
        allowed=True,
        limit=bucket.quota.burst,
        remaining=state.remaining,
        reset_after=math.ceil(state.reset_after / MICROS),
        window=bucket.quota.window_seconds,
    )
