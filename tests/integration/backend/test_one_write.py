"""The backend's HTTP protocol (one_write.py) sends an answer's head and body in
one write, over a real uvicorn on 127.0.0.1: answers arrive whole on a kept-alive
connection, a streamed answer's chunks still go out as they come, and a
``Connection: close`` answer is sent before the socket closes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import uvicorn
from entail_backend.one_write import OneWriteHttpTools
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from support.waiting import eventually


class CountingTransport:
    """The real transport, counting its writes."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport, self._writes = transport, writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Counted(OneWriteHttpTools):
    writes: ClassVar[list[bytes]] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        counted: Any = CountingTransport(transport, type(self).writes)
        super().connection_made(counted)


async def small(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "n": request.query_params.get("n")})


async def streamed(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first\n"
        await asyncio.sleep(0.2)
        yield b"second\n"

    return StreamingResponse(chunks(), media_type="text/plain")


async def large(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(8):  # never suspends: only the size sends them on
            yield bytes([65 + i]) * 32 * 1024

    return StreamingResponse(chunks(), media_type="application/octet-stream")


APP = Starlette(routes=[Route("/small", small), Route("/streamed", streamed), Route("/large", large)])


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[int]:
    server = _QuietServer(uvicorn.Config(APP, http=Counted, log_level="warning", timeout_graceful_shutdown=1))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, what="the server to listen", timeout_s=30)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:]
    )
    return head, await reader.readexactly(length)


async def test_each_answer_is_one_write_on_a_kept_alive_connection() -> None:
    Counted.writes.clear()
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in range(3):
            writer.write(f"GET /small?n={n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head, body = await asyncio.wait_for(read_answer(reader), 5)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert body == b'{"ok":true,"n":"%d"}' % n
        assert len(Counted.writes) == 3  # was six: a head and a body each
        assert all(w.startswith(b"HTTP/1.1 200 OK") and w.endswith(b"}") for w in Counted.writes)

        # closing: the answer is sent before the socket closes
        writer.write(b"GET /small?n=9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = await asyncio.wait_for(reader.read(), 5)
        assert rest.startswith(b"HTTP/1.1 200 OK") and rest.endswith(b'"n":"9"}')
        writer.close()


async def test_a_streamed_answer_sends_each_chunk_as_it_comes() -> None:
    Counted.writes.clear()
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /streamed HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"first\n"), 5)  # before the second chunk exists
        assert len(Counted.writes) == 1  # the head and the first chunk, together
        await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        writer.close()


async def test_a_large_answer_is_not_held_for_the_end_of_the_turn() -> None:
    # held back, 256 KiB written in one turn would reach the socket in one piece
    # after the producer finished, and the transport's high-water mark could
    # never pause it (flow control)
    Counted.writes.clear()
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
        assert len(Counted.writes) >= 8
        assert max(len(w) for w in Counted.writes) < 64 * 1024
        writer.close()
