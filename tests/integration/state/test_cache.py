"""entail.state.ResultCache against a real valkey-server."""

from __future__ import annotations

import redis.asyncio as aioredis

from entail.state import ResultCache

H = "a" * 64
R = "b" * 64


async def test_put_get_and_tenant_isolation(redis: aioredis.Redis) -> None:
    cache = ResultCache(redis)
    assert await cache.get("acme", H, R) is None
    await cache.put("acme", H, R, "dec_1", 60)
    assert await cache.get("acme", H, R) == "dec_1"
    assert await cache.get("globex", H, R) is None  # same ruleset and request, other tenant
    assert await cache.get("acme", "c" * 64, R) is None  # another ruleset version
    assert await cache.get("acme", H, "d" * 64) is None  # another request
    await cache.put("acme", H, R, "dec_2", 60)
    assert await cache.get("acme", H, R) == "dec_2"
    assert 0 < await redis.ttl(f"entail:cache:acme:{H}:{R}") <= 60
