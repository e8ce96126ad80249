"""The composition root: the services and the relay build their adapters here.

``bootstrap(settings)`` connects nothing at import time; the backend, the worker,
the relay and the tests call it from their lifespans and close what it returns.
The functions need only an audit store and open it with
:func:`entail.audit.factory.open_audit_store`, the same choice ``bootstrap`` makes
(docs/architecture.md, "The services", lists every entry point).
"""

from __future__ import annotations

__all__ = ["Services", "bootstrap", "open_services", "serve_http"]

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import redis.asyncio as aioredis

from .audit.port import AuditStore
from .auth import KeyRing
from .bus.port import Bus
from .bus.redis_streams import RedisStreamsBus
from .services import Services
from .settings import Settings
from .state.cache import ResultCache
from .state.client import connect_clients
from .state.decisions import DecisionStore
from .state.durability import Durability
from .state.ratelimit import RateLimiter
from .state.registry import RulesetRegistry


async def bootstrap(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    bus: Bus | None = None,
    audit: AuditStore | None = None,
) -> Services:
    """The services ``settings`` ask for. A ``redis`` client given by the caller
    (tests) serves as primary and replica and stays the caller's to close."""
    if bus is None and settings.bus == "pubsub":
        from .bus.pubsub import PubSubBus  # the gcp extra: loaded only in cloud mode

        bus = PubSubBus.from_settings(settings)
    clients = connect_clients(settings) if redis is None else None
    primary = clients.primary if clients is not None else redis
    replica = clients.replica if clients is not None else redis
    assert primary is not None and replica is not None
    durability = Durability.from_settings(primary, settings)
    return Services(
        settings=settings,
        redis=primary,
        bus=bus
        if bus is not None
        else RedisStreamsBus(primary, settings.stream_max_len, durability=durability),
        decisions=DecisionStore(primary, settings.decision_ttl_s, durability=durability),
        cache=ResultCache(primary, replica=replica),
        registry=RulesetRegistry(primary, replica=replica, durability=durability),
        rate_limiter=RateLimiter(primary),
        keys=KeyRing.from_settings(settings),
        durability=durability,
        redis_read=replica if replica is not primary else None,
        _audit=audit,
        _clients=clients,
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
    import uvicorn

    from .logs import configure

    configure(settings, service)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port_for(service),
        log_config=None,  # uvicorn's lines go through entail.logs (JSON in production)
        log_level=settings.log_level.lower(),
        access_log=False,  # entail.request_context writes the access lines
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )
