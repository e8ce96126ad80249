"""Result cache: (tenant, ruleset hash, canonical request hash) -> decision id."""

from __future__ import annotations

import redis.asyncio as aioredis

from . import keys


class ResultCache:
    """The tenant is part of the key: the same ruleset and request from another
    tenant never finds this tenant's decision.

    Lookups go to ``replica`` (a lagging replica only costs a miss: the decision is
    made again); entries are written to the primary and not waited for — a cache
    entry lost in a failover is a miss, nothing a client was promised."""

    def __init__(self, redis: aioredis.Redis, *, replica: aioredis.Redis | None = None) -> None:
        self.redis = redis
        self.replica = replica or redis

    async def get(self, tenant: str, ruleset_hash: str, request_hash: str) -> str | None:
        raw = await self.replica.get(keys.cache(tenant, ruleset_hash, request_hash))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def put(
        self, tenant: str, ruleset_hash: str, request_hash: str, decision_id: str, ttl_s: int
    ) -> None:
        """Remember ``decision_id`` for ``ttl_s`` seconds (a later put replaces it)."""
        await self.redis.set(keys.cache(tenant, ruleset_hash, request_hash), decision_id, ex=ttl_s)
