"""entail.state.connect: the client every service uses."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from entail.net import free_port
from entail.settings import Settings
from entail.state import connect
from entail.state.retry import DeadlineRetry


async def test_connect_options(settings: Settings) -> None:
    client = connect(settings.model_copy(update={"redis_socket_timeout_ms": 1500}))
    try:
        assert await client.ping()
        options = client.connection_pool.connection_kwargs
        assert options["socket_timeout"] == options["socket_connect_timeout"] == 1.5
        assert options["health_check_interval"] == 30
        retry = options["retry"]
        assert isinstance(retry, DeadlineRetry) and retry.window_s == 1.0  # one server: a short window
    finally:
        await client.aclose()


async def test_a_dropped_connection_is_retried(settings: Settings, redis: aioredis.Redis) -> None:
    client = connect(settings)
    try:
        await client.set("k", "v")
        own_id = await client.client_id()
        assert await redis.client_kill_filter(_id=str(own_id)) == 1  # the server drops our connection
        assert await client.get("k") == b"v"  # reconnected and retried, no error surfaced
    finally:
        await client.aclose()


async def test_no_server_fails_after_a_few_quick_retries(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = connect(nowhere)
    t0 = time.monotonic()
    try:
        with pytest.raises(RedisConnectionError):
            await client.ping()
    finally:
        await client.aclose()
    assert time.monotonic() - t0 < 3
