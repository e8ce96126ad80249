"""The backend app served by a real uvicorn on 127.0.0.1 inside the test's event
loop, on services whose Redis connections count what they send."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import httpx
import redis.asyncio as aioredis
import uvicorn
from entail_backend.app import create_app
from support.waiting import eventually

from entail.auth import key_entry
from entail.bootstrap import bootstrap
from entail.services import Services
from entail.settings import Settings

KEY = "b3-test-key"
READER = "b3-reader-key"  # no decide scope
SOURCE = "decision(A, approve) :- applicant(A), income(A, I), I >= 3000000.\n"
FACTS: dict[str, Any] = {"applicant": [["ann"]], "income": [["ann", 5200000]]}
HEADERS = {"Authorization": f"Bearer {KEY}"}


class CountingConnection(aioredis.Connection):
    """A real connection that names the first command of each request it sends (a
    pipeline is one request)."""

    names: ClassVar[list[str]] = []

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes | bytearray) else b"".join(command)
        type(self).names.append(bytes(packed).split(b"\r\n")[2].decode(errors="replace"))
        await super().send_packed_command(command, check_health)


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: it runs inside the test's event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    server = _QuietServer(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, what="the server to listen", timeout_s=30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def configured(settings: Settings, **update: Any) -> Settings:
    keys = [key_entry(KEY, "k1", "acme", ["decide", "author"]), key_entry(READER, "k2", "acme", ["audit"])]
    return settings.model_copy(update={"api_keys_json": json.dumps(keys), **update})


@contextlib.asynccontextmanager
async def backend(settings: Settings) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    pool = aioredis.ConnectionPool.from_url(settings.redis_url, connection_class=CountingConnection)
    client = aioredis.Redis(connection_pool=pool)
    services = await bootstrap(settings, redis=client)
    try:
        async with (
            serving(create_app(settings, services=services)) as url,
            httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as http,
        ):
            yield services, http
    finally:
        await services.aclose()
        await client.aclose()
