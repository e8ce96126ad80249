"""Every write is safe to retry blindly: a TCP proxy in front of the real test
server lets a command through and drops its reply (the connection closes, as in
a failover), the client retries, the command runs twice — and the outcome is
what one run would have given."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from support.records import open_record as record

from entail.settings import Settings
from entail.state import DecisionStore, Durability, RateLimiter, RulesetRegistry, connect


class ReplyDropper:
    """Forwards 127.0.0.1 connections to ``upstream``; when armed, the next reply
    from the server is swallowed and the client's connection closed."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.armed = False
        self.dropped = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> ReplyDropper:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def requests() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()

        async def replies() -> None:
            while data := await up_reader.read(65536):
                if self.armed:
                    self.armed = False
                    self.dropped += 1
                    return
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(ConnectionError, OSError):
            _, pending = await asyncio.wait(
                [asyncio.create_task(requests()), asyncio.create_task(replies())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
        for w in (writer, up_writer):
            w.close()


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[ReplyDropper]:
    port = int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    dropper = await ReplyDropper(port).start()
    yield dropper
    await dropper.close()


@pytest.fixture
async def client(settings: Settings, proxy: ReplyDropper) -> AsyncIterator[aioredis.Redis]:
    """The services' client, through the proxy, connected before a reply is dropped."""
    through = connect(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0"}))
    assert await through.ping()
    yield through
    await through.aclose()


def durability(client: aioredis.Redis) -> Durability:
    return Durability(client, replicas=0)  # no INFO call: the dropped reply is the write's


async def test_create(client: aioredis.Redis, proxy: ReplyDropper, redis: aioredis.Redis) -> None:
    store = DecisionStore(client, 60, durability=durability(client))
    pending = record()
    proxy.armed = True
    assert await store.create(pending)  # the retry found its own record: created, not "id taken"
    assert proxy.dropped == 1
    assert await DecisionStore(redis, 60).get("acme", pending.decision_id) == pending


async def test_complete(client: aioredis.Redis, proxy: ReplyDropper) -> None:
    store = DecisionStore(client, 60, durability=durability(client))
    pending = record()
    await store.create(pending)
    final = pending.model_copy(update={"status": "succeeded", "result_hash": "c" * 64})
    proxy.armed = True
    assert await store.complete(final)  # stored by this call (the first run), not by "another worker"
    assert proxy.dropped == 1
    assert not await store.complete(final.model_copy(update={"status": "failed"}))


async def test_claim(client: aioredis.Redis, proxy: ReplyDropper) -> None:
    store = DecisionStore(client, 60, durability=durability(client))
    proxy.armed = True
    assert await store.claim("dec_x", "worker-1", 5_000)  # still ours after the retry
    assert proxy.dropped == 1
    assert not await store.claim("dec_x", "worker-2", 5_000)


async def test_publish_and_tag(client: aioredis.Redis, proxy: ReplyDropper) -> None:
    registry = RulesetRegistry(client, durability=durability(client))
    proxy.armed = True
    version, created = await registry.publish("acme", "loan", "a(1).", "", [], "k1")
    assert proxy.dropped == 1
    assert created and version.version == 1  # the retry reports the version it made
    again, created = await registry.publish("acme", "loan", "a(1).", "", [], "k1")
    assert not created and again == version  # a second call is still idempotent publishing
    proxy.armed = True
    move = await registry.set_tag("acme", "loan", "prod", 1, "k1")
    assert proxy.dropped == 2
    history = await registry.tag_history("acme", "loan")
    assert history == [move] and move.previous is None  # logged once


async def test_rate_limit_take(client: aioredis.Redis, proxy: ReplyDropper) -> None:
    limiter = RateLimiter(client)
    proxy.armed = True
    first = await limiter.take("key-1", 0.001, 5)  # refills nothing during the test
    assert proxy.dropped == 1
    assert first.allowed and first.remaining == 4  # one token, not two
    assert (await limiter.take("key-1", 0.001, 5)).remaining == 3
