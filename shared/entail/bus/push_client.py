"""A lean keep-alive HTTP/1.1 client for push deliveries (the relay's POSTs).

:meth:`PushClient.request` sends other methods too (``GET``, ``HEAD``), so the
closed-loop load generator (``bench/load.py``) drives the backend with it: an
httpx client cost the generator as much CPU per request as the backend spent
answering, on the same two cores.

The relay makes one POST per message, to one or two local endpoints, and needs
only the status (and, for a nack, the start of the body). httpx did that at
about a third of the relay's CPU (anyio, httpcore's pool, h11, a request and a
response object per push), so the relay speaks HTTP/1.1 itself on asyncio
streams, with every bound a push needs:

* **connections** are kept alive per origin and reused (last in, first out,
  at most ``max_idle`` idle per origin, none idle longer than ``idle_s``, none
  holding unread bytes); a connection is closed on any protocol error, on ``Connection: close``, on an
  HTTP/1.0 answer, on a body read until the server closed it, or when a body
  is larger than ``max_body`` (its status still counts);
* a request on a **reused** connection that fails before a single byte of the
  answer arrived (the server closed the idle connection meanwhile) is sent
  once more on a new connection; at-least-once delivery allows the duplicate
  this can cause, as Pub/Sub does;
* the whole exchange (connect, write, every read) is bounded by ``timeout_s``;
  the answer's head by ``max_head`` bytes and ``MAX_HEADERS`` lines, a chunk
  line by :data:`MAX_LINE` bytes, interim (1xx) answers by
  :data:`MAX_INTERIM`;
* bodies: ``Content-Length``, ``chunked`` (trailers read and dropped), or read
  until the server closes; ``1xx``/``204``/``304`` carry none;
* header names and values with CR, LF or NUL are refused before anything is
  sent (no header injection from a message attribute).

Only ``http`` and ``https`` URLs; no redirects (a 3xx is a nack, as with
Pub/Sub), no proxies, no compression.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024  # bytes of status line + headers
MAX_HEADERS = 100
MAX_LINE = 1024  # a chunk-size line or a trailer line
MAX_INTERIM = 8  # 1xx answers before the final one
MAX_BODY = 64 * 1024  # bytes of a body read to keep the connection; beyond: read a prefix, close
BODY_PREFIX = 4096  # bytes kept of a body too large to read whole

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")
_NO_BODY = frozenset({204, 304})
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})  # no content-length unless a body


class PushProtocolError(Exception):
    """The server's answer is not HTTP/1.1 as we accept it (the connection is closed)."""


class _Stale(Exception):
    """A reused connection failed before the first byte of the answer."""


@dataclass(frozen=True, slots=True)
class PushResponse:
    """A final answer: its status and its body (a prefix of it when it was larger
    than the client's ``max_body``)."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port
    request_line: bytes  # " /path HTTP/1.1\r\nhost: h:p\r\n", after the method


class _Connection:
    __slots__ = ("idle_since", "reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0
        self.reused = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"push URL {url!r}: only http and https are supported")
    if not parts.hostname:
        raise ValueError(f"push URL {url!r} has no host")
    if parts.username or parts.password:
        raise ValueError(f"push URL {url!r}: credentials in the URL are not supported")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(c in path for c in " \r\n\x00"):
        raise ValueError(f"push URL {url!r}: the path must not hold blanks or control characters")
    line = f" {path} HTTP/1.1\r\nhost: {netloc}\r\n".encode("ascii", errors="strict")
    return _Target((parts.scheme, host, port), line)


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Header lines (``name: value\\r\\n`` each) of a request; ValueError for a name
    that is not a token or a value with CR, LF or NUL. ``host``, ``content-length``,
    ``transfer-encoding`` and ``connection`` are the client's own."""
    out = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"header name {name!r} is not an HTTP token")
        if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
            raise ValueError(f"header {name!r} is set by the client")
        if _UNSAFE_VALUE.search(value):
            raise ValueError(f"header {name!r}: the value holds CR, LF or NUL")
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("latin-1")


class PushClient:
    """POSTs over kept-alive HTTP/1.1 connections (see the module doc). Use one per
    process (or per relay), from one event loop; ``aclose`` closes the idle ones."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_idle: int = 16,
        idle_s: float = 4.0,
        max_head: int = MAX_HEAD,
        max_body: int = MAX_BODY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self.max_idle = max(0, max_idle)
        self.idle_s = idle_s
        self.max_head = max_head
        self.max_body = max_body
        self._ssl = ssl_context
        self._targets: dict[str, _Target] = {}
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False
        self.opened = 0  # connections opened so far (tests, logs)

    async def __aenter__(self) -> PushClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        idle = [c for conns in self._idle.values() for c in conns]
        self._idle.clear()
        for conn in idle:
            conn.close()
        for conn in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.writer.wait_closed(), 1.0)

    @property
    def idle_connections(self) -> int:
        return sum(len(c) for c in self._idle.values())

    async def post(self, url: str, body: bytes, headers: Mapping[str, str] | bytes = b"") -> PushResponse:
        """POST ``body`` to ``url``; the final answer, whatever its status. Raises
        OSError (refused, reset), TimeoutError, :class:`PushProtocolError` or
        ValueError (a bad URL or header)."""
        return await self.request("POST", url, body, headers)

    async def request(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | bytes = b""
    ) -> PushResponse:
        """``method`` (an HTTP token, e.g. ``GET``) on ``url`` with ``body``, as
        :meth:`post`. ``GET``, ``HEAD``, ``DELETE`` and ``OPTIONS`` carry no
        ``content-length`` when ``body`` is empty; an answer to ``HEAD`` has no body.
        A reused connection found closed is retried once whatever the method (the
        relay's deliveries are at-least-once; callers of other methods must accept
        the same)."""
        if self._closed:
            raise RuntimeError("the push client is closed")
        if not _TOKEN.fullmatch(method):
            raise ValueError(f"method {method!r} is not an HTTP token")
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = _target(url)
        extra = headers if isinstance(headers, bytes) else encode_headers(headers)
        length = b"" if not body and method in _BODYLESS_METHODS else b"content-length: %d\r\n" % len(body)
        request = b"".join((method.encode("ascii"), target.request_line, extra, length, b"\r\n", body))
        head_only = method == "HEAD"
        async with asyncio.timeout(self.timeout_s):
            conn = self._take(target.origin)
            if conn is not None:
                try:
                    return await self._exchange(target.origin, conn, request, head_only)
                except _Stale:
                    pass  # closed by the server while idle: once more, on a new connection
            conn = await self._open(target.origin)
            return await self._exchange(target.origin, conn, request, head_only)  # a new one is never _Stale

    def _take(self, origin: tuple[str, str, int]) -> _Connection | None:
        conns = self._idle.get(origin)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            # an idle connection holds nothing to read: bytes there are an answer
            # nobody asked for (a server's 408 before it closes), which would be
            # taken for the next request's
            unread = len(getattr(conn.reader, "_buffer", b""))
            if now - conn.idle_since < self.idle_s and not conn.reader.at_eof() and not unread:
                return conn
            conn.close()
        return None

    async def _open(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        if scheme == "https":
            context = self._ssl or ssl.create_default_context()
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host, limit=self.max_head
            )
        else:
            reader, writer = await asyncio.open_connection(host, port, limit=self.max_head)
        self.opened += 1
        return _Connection(reader, writer)

    def _give_back(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        conns = self._idle.setdefault(origin, [])
        if self._closed or len(conns) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conn.reused = True
        conns.append(conn)

    async def _exchange(
        self, origin: tuple[str, str, int], conn: _Connection, request: bytes, head_only: bool = False
    ) -> PushResponse:
        keep = False
        try:
            try:
                conn.writer.write(request)
                await conn.writer.drain()
                status, version, fields = await self._head(conn)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if conn.reused and (not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial):
                    raise _Stale from exc
                raise
            response, keep = await self._body(conn, status, version, fields, head_only)
            return response
        except asyncio.IncompleteReadError as exc:
            raise PushProtocolError(
                f"connection closed after {len(exc.partial)} bytes of an incomplete answer"
            ) from None
        except asyncio.LimitOverrunError:
            raise PushProtocolError(f"a line of the answer exceeds {self.max_head} bytes") from None
        finally:
            if keep:
                self._give_back(origin, conn)
            else:
                conn.close()

    async def _head(self, conn: _Connection) -> tuple[int, int, dict[bytes, bytes]]:
        """The final answer's status, minor version and header fields (names lower
        case; repeated ones joined with ``,``), interim answers skipped."""
        for _ in range(MAX_INTERIM + 1):
            head = await conn.reader.readuntil(b"\r\n\r\n")
            if len(head) > self.max_head:
                raise PushProtocolError(f"the answer's head exceeds {self.max_head} bytes")
            lines = head[:-4].split(b"\r\n")
            matched = _STATUS_LINE.fullmatch(lines[0])
            if matched is None:
                raise PushProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
            if len(lines) - 1 > MAX_HEADERS:
                raise PushProtocolError(f"more than {MAX_HEADERS} header lines")
            fields: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, colon, value = line.partition(b":")
                if not colon or not name or name != name.strip() or b" " in name or b"\t" in name:
                    raise PushProtocolError(f"malformed header line: {line[:80]!r}")
                key = name.lower()
                value = value.strip(b" \t")
                fields[key] = fields[key] + b"," + value if key in fields else value
            status = int(matched.group(2))
            if status == 101:
                raise PushProtocolError("the server switched protocols")
            if status >= 200:
                return status, int(matched.group(1)), fields
        raise PushProtocolError(f"more than {MAX_INTERIM} interim (1xx) answers")

    async def _body(
        self,
        conn: _Connection,
        status: int,
        version: int,
        fields: dict[bytes, bytes],
        head_only: bool = False,
    ) -> tuple[PushResponse, bool]:
        """The body and whether the connection may be reused (``head_only``: the
        answer to a HEAD, whose framing headers describe a body not sent)."""
        keep = version == 1 and b"close" not in _tokens(fields.get(b"connection", b""))
        if head_only or status in _NO_BODY:
            return PushResponse(status, b""), keep
        coding = fields.get(b"transfer-encoding")
        if coding is not None:
            codings = _tokens(coding)
            if codings and codings[-1] == b"chunked":
                body, whole = await self._chunked(conn)
                # with both framings, Content-Length is ignored and the connection not trusted
                return PushResponse(status, body), keep and whole and b"content-length" not in fields
            return PushResponse(status, await self._until_close(conn)), False
        length = fields.get(b"content-length")
        if length is None:
            return PushResponse(status, await self._until_close(conn)), False
        values = {v.strip() for v in length.split(b",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise PushProtocolError(f"bad Content-Length: {length[:40]!r}")
        size = int(next(iter(values)))
        if size > self.max_body:
            prefix = await conn.reader.readexactly(min(size, BODY_PREFIX))
            return PushResponse(status, prefix), False
        return PushResponse(status, await conn.reader.readexactly(size)), keep

    async def _line(self, conn: _Connection) -> bytes:
        line = await conn.reader.readuntil(b"\r\n")
        if len(line) > MAX_LINE:
            raise PushProtocolError(f"a chunk or trailer line exceeds {MAX_LINE} bytes")
        return line[:-2]

    async def _chunked(self, conn: _Connection) -> tuple[bytes, bool]:
        """A chunked body (at most ``max_body`` bytes kept) and whether it was read whole."""
        parts: list[bytes] = []
        kept = 0
        while True:
            size_text = (await self._line(conn)).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
                if size < 0 or not size_text.isalnum():
                    raise ValueError
            except ValueError:
                raise PushProtocolError(f"bad chunk size: {size_text[:20]!r}") from None
            if size == 0:
                break
            if kept + size > self.max_body:
                parts.append(await conn.reader.readexactly(min(size, max(0, BODY_PREFIX - kept))))
                return b"".join(parts), False
            parts.append(await conn.reader.readexactly(size))
            kept += size
            if await conn.reader.readexactly(2) != b"\r\n":
                raise PushProtocolError("a chunk is not followed by CRLF")
        for _ in range(MAX_HEADERS + 1):  # trailers, up to the empty line
            if not await self._line(conn):
                return b"".join(parts), True
        raise PushProtocolError(f"more than {MAX_HEADERS} trailer lines")

    async def _until_close(self, conn: _Connection) -> bytes:
        """A body delimited by the end of the connection (at most ``max_body`` bytes kept)."""
        parts: list[bytes] = []
        kept = 0
        while kept <= self.max_body:
            piece = await conn.reader.read(65536)
            if not piece:
                break
            parts.append(piece)
            kept += len(piece)
        return b"".join(parts)[: self.max_body]


def _tokens(value: bytes) -> list[bytes]:
    return [t.strip().lower() for t in value.split(b",") if t.strip()]
