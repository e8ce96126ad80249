"""The composition root: every entry point builds its adapters here.

``bootstrap(settings)`` connects nothing at import time; the backend, the worker,
the relay and the tests call it from their lifespans and close what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from .auth import KeyRing
from .bus.port import Bus
from .bus.redis_streams import RedisStreamsBus
from .settings import Settings
from .state.cache import ResultCache
from .state.client import connect
from .state.decisions import DecisionStore
from .state.ratelimit import RateLimiter
from .state.registry import RulesetRegistry


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    bus: Bus
    decisions: DecisionStore
    cache: ResultCache
    registry: RulesetRegistry
    rate_limiter: RateLimiter
    keys: KeyRing
    _owns_redis: bool = True

    async def aclose(self) -> None:
        await self.bus.close()
        if self._owns_redis:
            await self.redis.aclose()


async def bootstrap(
    settings: Settings, *, redis: aioredis.Redis | None = None, bus: Bus | None = None
) -> Services:
    client = redis if redis is not None else connect(settings)
    return Services(
        settings=settings,
        redis=client,
        bus=bus if bus is not None else RedisStreamsBus(client, settings.stream_max_len),
        decisions=DecisionStore(client, settings.decision_ttl_s),
        cache=ResultCache(client),
        registry=RulesetRegistry(client),
        rate_limiter=RateLimiter(client),
        keys=KeyRing.from_settings(settings),
        _owns_redis=redis is None,
    )
