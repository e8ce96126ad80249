"""The relay's HTTP/1.1 client (entail.bus.push_client) against a real server on
127.0.0.1 that writes exactly the bytes each test scripts: keep-alive reuse, a
server closing idle connections, chunked and oversized answers, interim answers,
slow servers, malformed answers, refused headers, and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from entail.bus.push_client import MAX_HEAD, PushClient, PushProtocolError, encode_headers

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
CLOSE = b"<close>"  # script answer: close the connection without answering
HANG = b"<hang>"  # script answer: never answer


@dataclass
class Request:
    connection: int  # which accepted connection (0, 1, ...) carried it
    head: bytes
    body: bytes


@dataclass
class RawServer:
    """Answers request ``n`` (over all connections) with ``script(n, request)``:
    raw bytes written as they are, then ``after`` decides whether the
    connection is closed (``"close"``) or kept for the next request."""

    script: Callable[[int, Request], bytes] = lambda n, request: OK
    close_after: Callable[[int], bool] = lambda n: False
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                request = Request(number, head, await reader.readexactly(length))
                self.requests.append(request)
                n = len(self.requests) - 1
                answer = self.script(n, request)
                if answer == CLOSE:
                    return
                if answer == HANG:
                    await asyncio.sleep(3600)
                writer.write(answer)
                await writer.drain()
                if self.close_after(n):
                    return
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push/x?y=1"


@contextlib.asynccontextmanager
async def serving(server: RawServer) -> AsyncIterator[RawServer]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listener.wait_closed(), 2)


async def test_the_request_on_the_wire_and_a_kept_alive_connection() -> None:
    async with serving(RawServer()) as server, PushClient(timeout_s=5) as client:
        for i in range(3):
            response = await client.post(server.url, b'{"n": %d}' % i, {"x-entail-push-secret": "s"})
            assert (response.status, response.body) == (200, b"ok")
        assert server.connections == 1 and client.opened == 1
        first = server.requests[0]
        lines = first.head.split(b"\r\n")
        assert lines[0] == b"POST /push/x?y=1 HTTP/1.1"
        assert f"host: 127.0.0.1:{server.port}".encode() in lines
        assert b"x-entail-push-secret: s" in lines and b"content-length: 8" in lines
        assert first.body == b'{"n": 0}'


async def test_a_get_carries_no_content_length_and_keeps_the_connection() -> None:
    # bench/load.py's GET /healthz: no body, no content-length, then a POST on the same connection
    async with serving(RawServer()) as server, PushClient(timeout_s=5) as client:
        response = await client.request("GET", server.url, headers={"authorization": "Bearer k"})
        assert (response.status, response.body) == (200, b"ok")
        assert (await client.request("POST", server.url, b"{}")).status == 200
        assert server.connections == 1 and client.opened == 1
        get, post = (r.head.split(b"\r\n") for r in server.requests)
        assert get[0] == b"GET /push/x?y=1 HTTP/1.1" and b"authorization: Bearer k" in get
        assert not any(line.lower().startswith(b"content-length") for line in get)
        assert post[0] == b"POST /push/x?y=1 HTTP/1.1" and b"content-length: 2" in post


async def test_a_head_answer_has_no_body_whatever_its_content_length_says() -> None:
    # the content-length of a HEAD answer describes the body a GET would get: read
    # as a body, it would wait for bytes that never come (a timeout), or eat the
    # next answer's head; the connection stays usable
    head_answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    server = RawServer(script=lambda n, request: head_answer if n == 0 else OK)
    async with serving(server), PushClient(timeout_s=2) as client:
        response = await client.request("HEAD", server.url)
        assert (response.status, response.body) == (200, b"")
        assert (await client.request("GET", server.url)).body == b"ok"
        assert server.connections == 1


@pytest.mark.parametrize("method", ["GE T", "POST\r\nx: y", ""])
async def test_a_method_that_is_not_a_token_is_refused_before_anything_is_sent(method: str) -> None:
    server = RawServer()
    async with serving(server), PushClient(timeout_s=5) as client:
        with pytest.raises(ValueError, match="not an HTTP token"):
            await client.request(method, server.url)
        assert server.requests == []


async def test_a_connection_closed_by_the_server_while_idle_is_replaced() -> None:
    # the server answers, then closes (as a keep-alive timeout does): the next
    # post finds a dead connection, and goes out once more on a new one
    server = RawServer(close_after=lambda n: True)
    async with serving(server), PushClient(timeout_s=5) as client:
        assert (await client.post(server.url, b"a")).status == 200
        await asyncio.sleep(0.05)
        assert (await client.post(server.url, b"b")).status == 200
        assert [r.body for r in server.requests] == [b"a", b"b"]
        assert client.opened == 2


async def test_an_answer_nobody_asked_for_is_not_taken_for_the_next_one() -> None:
    # the server answers, then writes a 408 on the idle connection and closes it
    # (as some servers do on their keep-alive timeout): not the next push's answer
    unsolicited = OK + b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    server = RawServer(script=lambda n, request: unsolicited if n == 0 else OK, close_after=lambda n: n == 0)
    async with serving(server), PushClient(timeout_s=5) as client:
        assert (await client.post(server.url, b"a")).status == 200
        await asyncio.sleep(0.05)
        assert (await client.post(server.url, b"b")).status == 200
        assert [r.connection for r in server.requests] == [0, 1]


async def test_a_reused_connection_dropped_before_the_answer_is_retried_once() -> None:
    # the second request is read and dropped unanswered on the reused connection:
    # sent again on a new one (at least once: the server saw it twice)
    server = RawServer(script=lambda n, request: CLOSE if n == 1 else OK)
    async with serving(server), PushClient(timeout_s=5) as client:
        assert (await client.post(server.url, b"a")).status == 200
        assert (await client.post(server.url, b"b")).status == 200
        assert [r.body for r in server.requests] == [b"a", b"b", b"b"]
        assert [r.connection for r in server.requests] == [0, 0, 1]


async def test_a_new_connection_dropped_before_the_answer_is_an_error() -> None:
    server = RawServer(script=lambda n, request: CLOSE)
    async with serving(server), PushClient(timeout_s=5) as client:
        with pytest.raises(PushProtocolError, match="incomplete answer"):
            await client.post(server.url, b"a")
        assert len(server.requests) == 1  # not retried: the caller's backoff decides


async def test_connection_close_and_http_1_0_answers_are_not_reused() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
        OK,
    ]
    server = RawServer(script=lambda n, request: answers[n])
    async with serving(server), PushClient(timeout_s=5) as client:
        for _ in answers:
            assert (await client.post(server.url, b"")).status == 200
        assert server.connections == 3
        assert client.idle_connections == 1


async def test_a_chunked_answer_with_trailers_keeps_the_connection() -> None:
    chunked = (
        b"HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"
    )
    server = RawServer(script=lambda n, request: chunked if n == 0 else OK)
    async with serving(server), PushClient(timeout_s=5) as client:
        response = await client.post(server.url, b"x")
        assert (response.status, response.text) == (503, "hello world")
        assert (await client.post(server.url, b"y")).status == 200
        assert server.connections == 1


async def test_an_oversized_body_keeps_its_status_and_a_prefix_and_closes() -> None:
    big = b"HTTP/1.1 500 Error\r\ncontent-length: 100000\r\n\r\n" + b"E" * 100_000
    big_chunked = b"HTTP/1.1 500 Error\r\ntransfer-encoding: chunked\r\n\r\n186a0\r\n" + b"C" * 100_000
    answers = [big, big_chunked, OK]
    server = RawServer(script=lambda n, request: answers[n])
    async with serving(server), PushClient(timeout_s=5, max_body=1000) as client:
        first = await client.post(server.url, b"")
        assert first.status == 500 and first.body == b"E" * 4096
        second = await client.post(server.url, b"")
        assert second.status == 500 and second.body == b"C" * 4096
        assert (await client.post(server.url, b"")).status == 200
        assert server.connections == 3  # the oversized answers' connections were closed


async def test_a_body_delimited_by_the_end_of_the_connection() -> None:
    server = RawServer(
        script=lambda n, request: b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close_after=lambda n: True
    )
    async with serving(server), PushClient(timeout_s=5) as client:
        response = await client.post(server.url, b"")
        assert (response.status, response.body) == (200, b"until the end")
        assert client.idle_connections == 0


async def test_interim_answers_are_skipped_for_the_final_one() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + OK
    server = RawServer(script=lambda n, request: interim)
    async with serving(server), PushClient(timeout_s=5) as client:
        response = await client.post(server.url, b"")
        assert (response.status, response.body) == (200, b"ok")
        assert (await client.post(server.url, b"")).status == 200
        assert server.connections == 1


async def test_a_slow_server_times_out_and_its_connection_is_dropped() -> None:
    server = RawServer(script=lambda n, request: HANG if n == 0 else OK)
    async with serving(server), PushClient(timeout_s=0.3) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await client.post(server.url, b"")
        assert loop.time() - started < 2
        assert client.idle_connections == 0
        assert (await client.post(server.url, b"")).status == 200
        assert server.connections == 2


async def test_a_trickling_answer_is_bounded_by_the_same_timeout() -> None:
    """A server that answers a byte at a time never resets a per-read timer."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for byte in b"HTTP/1.1 200 OK\r\n" + b"x-slow: " + b"y" * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.01)
        writer.close()

    listener = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with PushClient(timeout_s=0.3) as client:
        with pytest.raises(TimeoutError):
            await client.post(f"http://127.0.0.1:{port}/", b"")
    listener.close()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP/1.x status line"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nok", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", "not followed by CRLF"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 10, "interim"),
        (b"HTTP/1.1 200 OK\r\n" + b"x-h: v\r\n" * 101 + b"\r\n", "more than 100 header lines"),
        (b"HTTP/1.1 200 OK\r\nx-big: " + b"v" * (MAX_HEAD + 10) + b"\r\n\r\n", "exceeds"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "incomplete answer"),
    ],
)
async def test_malformed_answers_are_protocol_errors_and_close_the_connection(
    answer: bytes, error: str
) -> None:
    server = RawServer(script=lambda n, request: answer if n == 0 else OK, close_after=lambda n: n == 0)
    async with serving(server), PushClient(timeout_s=5) as client:
        with pytest.raises(PushProtocolError, match=error):
            await client.post(server.url, b"")
        assert client.idle_connections == 0
        assert (await client.post(server.url, b"")).status == 200


async def test_refused_connections_raise_the_os_error() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with PushClient(timeout_s=5) as client:
        with pytest.raises(ConnectionRefusedError):
            await client.post(f"http://127.0.0.1:{port}/", b"")


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"x-a": "v\r\nx-injected: 1"}, "CR, LF or NUL"),
        ({"x-a": "v\nx"}, "CR, LF or NUL"),
        ({"x a": "v"}, "not an HTTP token"),
        ({"x-a\r\n": "v"}, "not an HTTP token"),
        ({"Content-Length": "5"}, "set by the client"),
        ({"host": "elsewhere"}, "set by the client"),
    ],
)
async def test_unsafe_headers_are_refused_before_anything_is_sent(
    headers: dict[str, str], error: str
) -> None:
    server = RawServer()
    async with serving(server), PushClient(timeout_s=5) as client:
        with pytest.raises(ValueError, match=error):
            await client.post(server.url, b"", headers)
        assert server.requests == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://127.0.0.1/x", "only http and https"),
        ("http:///x", "has no host"),
        ("http://user:pw@127.0.0.1/x", "credentials"),
        ("http://127.0.0.1/a b", "blanks or control characters"),
    ],
)
async def test_unsupported_urls_are_refused(url: str, error: str) -> None:
    async with PushClient(timeout_s=5) as client:
        with pytest.raises(ValueError, match=error):
            await client.post(url, b"")


def test_encode_headers_writes_one_line_per_header() -> None:
    assert encode_headers({"a": "1", "ce-id": "x y"}) == b"a: 1\r\nce-id: x y\r\n"


LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_https_pushes_verify_the_server_and_reuse_the_connection(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    server = RawServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=server_tls)
    port = listener.sockets[0].getsockname()[1]
    url = f"https://127.0.0.1:{port}/push"
    try:
        trusting = ssl.create_default_context(cafile=str(cert_file))
        async with PushClient(timeout_s=5, ssl_context=trusting) as client:
            assert (await client.post(url, b"a")).status == 200
            assert (await client.post(url, b"b")).status == 200
            assert server.connections == 1
        async with PushClient(timeout_s=5) as client:  # the system's roots do not know it
            with pytest.raises(ssl.SSLCertVerificationError):
                await client.post(url, b"c")
        assert [r.body for r in server.requests] == [b"a", b"b"]
    finally:
        listener.close()
