"""`RedisRateLimitStore`: GCRA buckets in Redis, one atomic Lua script per decision.

The script reads every bucket of the request, decides with the Redis server's clock (so
replicas with skewed clocks agree), and writes all of them or none — the same steps as
`bastion.core.ratelimit.decide`. Keys are ``<storage.redisPrefix>rl:<bucket>`` and expire when
the bucket is full again. Redis errors become `RateLimitUnavailableError`; nothing from the
redis package leaves this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bastion.core.ratelimit import Bucket, BucketState
from bastion.errors import RateLimitUnavailableError

# ARGV holds interval and burst per key. TAT values are formatted with %.0f: Lua's own number
# to string conversion keeps 14 digits and would round microsecond timestamps.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats, news, ok = {}, {}, true
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = interval * tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then tat = now end
  tats[i] = tat
  news[i] = tat + interval
  if news[i] - now > tolerance then ok = false end
end
local out = {ok and 1 or 0}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = interval * tonumber(ARGV[2 * i])
  local diff = news[i] - now
  if diff > tolerance then
    table.insert(out, 0); table.insert(out, 0)
    table.insert(out, diff - tolerance); table.insert(out, tats[i] - now)
  else
    table.insert(out, 1); table.insert(out, math.floor((tolerance - diff) / interval))
    table.insert(out, 0)
    if ok then
      table.insert(out, diff)
      redis.call('SET', KEYS[i], string.format('%.0f', news[i]),
                 'PX', math.ceil(diff / 1000) + 1)
    else
      table.insert(out, tats[i] - now)
    end
  end
end
return out
"""


class RedisRateLimitStore:
    """Counters shared by every replica that points at the same Redis and prefix."""

    def __init__(self, url: str, *, prefix: str, timeout: float = 0.5) -> None:
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._prefix = prefix + "rl:"
        self._script = self._client.register_script(GCRA_SCRIPT)

    async def acquire(self, buckets: Sequence[Bucket]) -> list[BucketState]:
        if not buckets:
            return []
        keys = [self._prefix + b.key for b in buckets]
        args: list[int] = []
        for bucket in buckets:
            args += [bucket.quota.interval, bucket.quota.burst]
        try:
            reply = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise RateLimitUnavailableError(
                f"rate-limit store unreachable ({type(exc).__name__})"
            ) from None
        values = [int(v) for v in reply]
        return [
            BucketState(
                allowed=bool(values[1 + 4 * i]),
                tat=0,
                remaining=values[2 + 4 * i],
                retry_after=values[3 + 4 * i],
                reset_after=values[4 + 4 * i],
            )
            for i in range(len(buckets))
        ]

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
