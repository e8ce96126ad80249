"""The Redis client every service uses (async, with retries on connection errors)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..settings import Settings


def connect(settings: Settings) -> aioredis.Redis:
    """A pooled client for ``settings.redis_url``: bounded socket timeouts, a PING
    on connections idle for 30 s, and up to 3 retries with exponential backoff on
    connection errors and timeouts (a Redis failover or restart is a blip)."""
    timeout = settings.redis_socket_timeout_ms / 1000
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
