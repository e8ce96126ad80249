"""uvicorn's HTTP protocol (httptools) with each answer sent in one write.

uvicorn writes an answer's status line and headers, then its body, as two
transport writes, so a small JSON answer costs two ``send`` system calls and
the client is woken twice. On the 2-core machine of the benches those two
writes were a fifth of the backend's busy samples for a cache hit
(bench/PROFILE.md, helper B3). Here the transport gathers what is written
while a callback of the event loop runs and sends it at the end of that turn
(``call_soon``): a head and a body written one after the other (Starlette's
``Response`` sends them without waiting in between) go out together. Nothing
waits longer than the loop's current turn; closing the connection sends what
is gathered first; flow control and everything else is the real transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# gathered bytes that are sent at once instead of at the end of the turn: above
# an answer's usual size, below the transport's default high-water mark (64 KiB)
FLUSH_AT = 16 * 1024


class GatheringTransport:
    """A transport that sends the writes of one event-loop turn as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            # a large answer goes out now: the real transport's buffer limits then
            # pause the writer (uvicorn's flow control), which a body held back for
            # the end of the turn would never do
            self._flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, ...
        return getattr(self._transport, name)


class OneWriteHttpTools(HttpToolsProtocol):
    """``uvicorn.run(..., http=OneWriteHttpTools)``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gathering: Any = GatheringTransport(transport, self.loop)
        super().connection_made(gathering)
