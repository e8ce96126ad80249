"""The composition root: every entry point builds its adapters here.

``bootstrap(settings)`` connects nothing at import time; the backend, the worker,
the relay and the tests call it from their lifespans and close what it returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from .audit.factory import open_audit_store
from .audit.port import AuditStore
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
    _audit: AuditStore | None = None
    _owns_redis: bool = True

    @property
    def audit(self) -> AuditStore:
        """Opened on first use: the worker and the relay never touch the audit file."""
        if self._audit is None:
            self._audit = open_audit_store(self.settings)
        return self._audit

    async def aclose(self) -> None:
        await self.bus.close()
        if self._audit is not None:
            self._audit.close()
        if self._owns_redis:
            await self.redis.aclose()


async def bootstrap(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    bus: Bus | None = None,
    audit: AuditStore | None = None,
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
        _audit=audit,
        _owns_redis=redis is None,
    )


@asynccontextmanager
async def open_services(settings: Settings, services: Services | None = None) -> AsyncIterator[Services]:
    """The services of an app's lifespan: built here and closed at the end, or
    given by the caller (tests) and left open."""
    if services is not None:
        yield services
        return
    owned = await bootstrap(settings)
    try:
        yield owned
    finally:
        await owned.aclose()


def serve_http(app: Any, settings: Settings, service: Literal["backend", "worker"]) -> None:
    """Run an ASGI app with uvicorn on 127.0.0.1 (``ENTAIL_HOST``) and ``PORT`` or the default."""
    import logging

    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port_for(service),
        log_level="info",
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )
