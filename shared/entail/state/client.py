"""The Redis clients every service uses: one factory for the three topologies.

* ``ENTAIL_REDIS_URL`` alone — one server (``make run``, the tests), or a managed
  primary endpoint that fails over behind a stable address (Memorystore);
* ``ENTAIL_REDIS_SENTINELS`` + ``ENTAIL_REDIS_MASTER_NAME`` — the primary and the
  replicas are asked of the Sentinels, again after every connection error, so a
  call retried after a failover reaches the new primary (``make run-ha``);
* ``ENTAIL_REDIS_READ_URL`` — a read endpoint for the stale-tolerant reads
  (Memorystore's read replicas).

:class:`RedisClients` holds a ``primary`` client for everything and a ``replica``
client for reads that may lag (cache lookups, ruleset sources by hash); without
replicas both are the same client. Every call retries connection, timeout and
read-only errors for ``settings.redis_retry_window_s`` (:mod:`entail.state.retry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.sentinel
from redis.asyncio.sentinel import Sentinel

from ..settings import Settings
from .retry import DeadlineRetry, SyncDeadlineRetry

SENTINEL_TIMEOUT_S = 0.5  # one Sentinel that does not answer quickly is skipped for the next


def sentinel_addresses(setting: str) -> list[tuple[str, int]]:
    """``"127.0.0.1:26379,10.0.0.2:26379"`` as (host, port) pairs; ValueError if malformed."""
    out: list[tuple[str, int]] = []
    for item in (part.strip() for part in setting.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"ENTAIL_REDIS_SENTINELS: {item!r} is not host:port")
        out.append((host, int(port)))
    if not out:
        raise ValueError("ENTAIL_REDIS_SENTINELS names no Sentinel")
    return out


def _options(settings: Settings) -> dict[str, Any]:
    timeout = settings.redis_socket_timeout_ms / 1000
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
    }


@dataclass
class RedisClients:
    """The primary client, the replica client (possibly the same object), and the
    Sentinel manager when there is one. :meth:`aclose` closes each once."""

    primary: aioredis.Redis
    replica: aioredis.Redis
    sentinel: Sentinel | None = None

    async def aclose(self) -> None:
        await self.primary.aclose()
        if self.replica is not self.primary:
            await self.replica.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()


def connect_clients(settings: Settings) -> RedisClients:
    """Clients for the topology ``settings`` describe; nothing connects before the first call."""
    options = _options(settings)
    window = settings.redis_retry_window_s
    if settings.redis_sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            sentinel_addresses(settings.redis_sentinels),
            sentinel_kwargs={
                "socket_timeout": SENTINEL_TIMEOUT_S,
                "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            },
        )
        primary = sentinel.master_for(settings.redis_master_name, retry=DeadlineRetry(window), **options)
        replica = sentinel.slave_for(settings.redis_master_name, retry=DeadlineRetry(window), **options)
        return RedisClients(primary, replica, sentinel)
    primary = aioredis.Redis.from_url(settings.redis_url, retry=DeadlineRetry(window), **options)
    if settings.redis_read_url:
        replica = aioredis.Redis.from_url(settings.redis_read_url, retry=DeadlineRetry(window), **options)
        return RedisClients(primary, replica)
    return RedisClients(primary, primary)


def connect(settings: Settings) -> aioredis.Redis:
    """The primary client alone (the relay, tools and tests); close it with ``aclose``.

    With Sentinels, the Sentinel connections belong to the returned client's pool
    and are not closed with it; long-lived services use :func:`connect_clients`."""
    return connect_clients(settings).primary


def connect_sync(settings: Settings) -> redis.Redis:
    """A synchronous primary client with the same topology and retry policy (tools, benches)."""
    options = _options(settings)
    retry = SyncDeadlineRetry(settings.redis_retry_window_s)
    if settings.redis_sentinels:
        sync_sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            sentinel_addresses(settings.redis_sentinels),
            sentinel_kwargs={
                "socket_timeout": SENTINEL_TIMEOUT_S,
                "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            },
        )
        client: redis.Redis = sync_sentinel.master_for(  # type: ignore[no-untyped-call]
            settings.redis_master_name, retry=retry, **options
        )
        return client
    return redis.Redis.from_url(settings.redis_url, retry=retry, **options)
