"""Test helpers for the relay: a real HTTP push endpoint, a relay runner and a
deadline-bound wait.

The endpoint is uvicorn serving a small Starlette app on 127.0.0.1 in the test's
own event loop (a real socket, real HTTP; nothing mocked). It records every push
and answers what the test's ``plan`` says for it: a status, or ``HANG`` to hold
the request until the test releases it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from support.waiting import eventually

from entail.relay import Relay

T = TypeVar("T")
HANG = -1  # plan answer: hold the request until ``Receiver.release`` is set, then answer 200


@dataclass
class Push:
    """One request the endpoint received."""

    path: str
    envelope: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    client_port: int = 0  # the relay's end of the connection: which connection carried it

    @property
    def message_id(self) -> str:
        return str(self.envelope["message"]["messageId"])

    @property
    def attempt(self) -> int:
        return int(self.envelope["deliveryAttempt"])

    @property
    def attributes(self) -> dict[str, str]:
        return dict(self.envelope["message"].get("attributes", {}))

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.envelope["message"]["data"])


class Receiver:
    """A push subscriber endpoint: every path accepts POSTed envelopes."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []
        self.plan: Callable[[Push], int] = lambda push: 200
        self.body: Callable[[Push, int], str] = lambda push, status: f"status {status}"
        self.release = asyncio.Event()
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def push_url(self, path: str = "/push") -> str:
        return f"{self.url}{path}"

    def of(self, message_id: str) -> list[Push]:
        return [p for p in self.pushes if p.message_id == message_id]

    async def _handle(self, request: Request) -> PlainTextResponse:
        port = request.client.port if request.client is not None else 0
        push = Push(request.url.path, await request.json(), dict(request.headers), client_port=port)
        self.pushes.append(push)
        status = self.plan(push)
        if status == HANG:
            await self.release.wait()
            status = 200
        return PlainTextResponse(self.body(push, status), status_code=status)

    async def start(self) -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        server = _QuietServer(config)
        # proto IPPROTO_TCP, else asyncio does not set TCP_NODELAY on the accepted
        # connections and every answer waits ~40 ms for a delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        await eventually(lambda: server.started, what="the receiver to listen")
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: it runs inside the test's event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    """A relay running in a task of the test's loop."""

    relay: Relay
    stop: asyncio.Event
    task: asyncio.Task[None]

    def crash(self) -> None:
        """Cancel the relay like a killed process: no ack, no release, no cleanup in Redis."""
        self.task.cancel()

    async def stopped(self, timeout_s: float = 10.0) -> None:
        """Ask it to stop and wait until it has (in-flight deliveries finished)."""
        self.stop.set()
        await asyncio.wait_for(asyncio.shield(self.task), timeout_s)


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[Running]:
    stop = asyncio.Event()
    handle = Running(relay, stop, asyncio.create_task(relay.run(stop)))
    try:
        yield handle
    finally:
        if not handle.task.done():
            stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(handle.task, 10)
