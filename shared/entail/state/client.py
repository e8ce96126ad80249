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
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection

from ..settings import Settings
from .retry import DeadlineRetry, SyncDeadlineRetry

SENTINEL_TIMEOUT_S = 0.5  # one Sentinel that does not answer quickly is skipped for the next


class FailoverAwareConnection(SentinelManagedConnection):
    """Asks the Sentinels for the address on every socket connect.

    redis-py (8.1) reconnects a connection dropped inside a command's retry through
    ``connect_check_health``, which skips the Sentinel lookup ``connect`` makes: the
    retries would knock on the dead primary until the window closes. Here each
    attempt goes to the primary the Sentinels name now (for a replica connection,
    to the next live replica, then the primary)."""

    async def _connect(self) -> None:
        pool = self.connection_pool
        if pool.is_master:
            self.host, self.port = await pool.get_master_address()
            await super()._connect()  # type: ignore[no-untyped-call]
            return
        async for address in pool.rotate_slaves():  # ends with SlaveNotFoundError, a ConnectionError
            self.host, self.port = address
            try:
                await super()._connect()  # type: ignore[no-untyped-call]
                return
            except (TimeoutError, OSError):
                continue


class SyncFailoverAwareConnection(redis.sentinel.SentinelManagedConnection):
    """:class:`FailoverAwareConnection` for the synchronous client."""

    def _connect(self) -> Any:
        pool = self.connection_pool
        if pool.is_master:
            self.host, self.port = pool.get_master_address()
            return super()._connect()  # type: ignore[no-untyped-call]
        for address in pool.rotate_slaves():
            self.host, self.port = address
            try:
                return super()._connect()  # type: ignore[no-untyped-call]
            except OSError:
                continue
        raise redis.sentinel.SlaveNotFoundError(f"no replica of {pool.service_name!r} answers")


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
        primary = sentinel.master_for(
            settings.redis_master_name,
            retry=DeadlineRetry(window),
            connection_class=FailoverAwareConnection,
            **options,
        )
        replica = sentinel.slave_for(
            settings.redis_master_name,
            retry=DeadlineRetry(window),
            connection_class=FailoverAwareConnection,
            **options,
        )
        return RedisClients(primary, replica, sentinel)
    primary = _queueing_client(settings.redis_url, settings, retry=DeadlineRetry(window), **options)
    if settings.redis_read_url:
        replica = _queueing_client(settings.redis_read_url, settings, retry=DeadlineRetry(window), **options)
        return RedisClients(primary, replica)
    return RedisClients(primary, primary)


def _queueing_client(url: str, settings: Settings, **kwargs: Any) -> aioredis.Redis:
    """A client whose pool makes a call wait (up to the socket timeout) for a free
    connection when all ``ENTAIL_REDIS_MAX_CONNECTIONS`` are busy: a burst of
    requests queues for a moment instead of failing with "Too many connections"."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout_ms / 1000,
        **kwargs,
    )
    client = aioredis.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # closed with the client, as from_url's own pool
    return client


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
            settings.redis_master_name, retry=retry, connection_class=SyncFailoverAwareConnection, **options
        )
        return client
    return redis.Redis.from_url(settings.redis_url, retry=retry, **options)
