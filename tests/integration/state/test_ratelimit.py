"""entail.state.RateLimiter (one Lua token bucket per key) against a real valkey-server."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from entail.state import RateLimiter


async def test_burst_then_refused(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    decisions = [await limiter.take("key1", 10.0, 5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert all(d.limit == 5 for d in decisions)
    assert decisions[0].retry_after_s == 0.0
    assert 0 < decisions[0].reset_s <= 0.1 + 1e-6  # one token short of full
    refused = decisions[-1]
    # less than one token left: at 10/s the next one is under 0.1 s away
    assert 0 < refused.retry_after_s <= 0.1
    assert 0.4 < refused.reset_s <= 0.5  # five tokens to refill at 10/s
    assert (await limiter.take("key2", 10.0, 5)).allowed  # buckets are per key


async def test_retry_after_is_when_a_token_is_back(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    assert (await limiter.take("k", 2.0, 1)).allowed
    refused = await limiter.take("k", 2.0, 1)
    assert not refused.allowed and 0.4 < refused.retry_after_s <= 0.5
    await asyncio.sleep(refused.retry_after_s + 0.01)
    assert (await limiter.take("k", 2.0, 1)).allowed


async def test_refill_over_time(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    for _ in range(3):
        await limiter.take("k", 50.0, 3)
    assert not (await limiter.take("k", 50.0, 3)).allowed
    await asyncio.sleep(0.1)  # 5 tokens' worth at 50/s, capped at the burst of 3
    again = [await limiter.take("k", 50.0, 3) for _ in range(4)]
    assert [d.allowed for d in again] == [True, True, True, False]


async def test_refusals_do_not_drain_the_bucket(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    await limiter.take("k", 20.0, 1)
    for _ in range(5):
        await limiter.take("k", 20.0, 1)  # refused, and cost nothing
    await asyncio.sleep(0.06)
    assert (await limiter.take("k", 20.0, 1)).allowed


async def test_idle_buckets_vanish(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    await limiter.take("k", 10.0, 5)
    # full again after 0.5 s, plus a second of slack
    assert 1000 < await redis.pttl("entail:rl:k") <= 1500
    await limiter.take("slow", 0.000_001, 5)  # 5e6 s to refill: a TTL Redis still takes
    assert await redis.pttl("entail:rl:slow") > 0


async def test_uses_the_server_clock_in_microseconds(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    before = time.time()
    await limiter.take("k", 10.0, 5)
    raw = await redis.hget("entail:rl:k", "at")
    assert isinstance(raw, bytes)
    at = raw.decode()
    seconds, _, micros = at.partition(".")
    assert len(micros) == 6
    assert abs(float(at) - before) < 5  # the server's TIME (same host here)
    server_s, _ = await redis.time()
    assert abs(int(seconds) - server_s) <= 1


async def test_atomic_under_concurrency(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    results = await asyncio.gather(*(limiter.take("k", 0.001, 20) for _ in range(50)))
    assert sum(r.allowed for r in results) == 20


async def test_survives_a_script_flush(redis: aioredis.Redis) -> None:
    """EVALSHA with the script cached; a server that lost it (restart, failover) gets it again."""
    limiter = RateLimiter(redis)
    assert (await limiter.take("k", 10.0, 5)).allowed
    await redis.script_flush()
    assert (await limiter.take("k", 10.0, 5)).remaining == 3


async def test_rejects_nonsense_limits(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    for rate, burst in ((0.0, 5), (-1.0, 5), (1.0, 0)):
        with pytest.raises(ValueError, match="rate limit"):
            await limiter.take("k", rate, burst)
