"""Shared fixtures of the integration tests: a real valkey-server from the
pinned wheel, one per xdist worker (session scope is per worker process),
emptied before each test that asks for ``settings`` or ``redis``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis import Redis

from entail.settings import Settings
from entail.state.client import connect
from entail.state.embedded import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test server, which is emptied first."""
    with Redis.from_url(redis_url) as client:
        client.flushall()
    return Settings(redis_url=redis_url, data_dir=tmp_path)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """The client the services use (:func:`entail.state.connect`), closed afterwards."""
    client = connect(settings)
    try:
        yield client
    finally:
        await client.aclose()
