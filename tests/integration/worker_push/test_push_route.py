"""The worker's push endpoints served without FastAPI (entail_worker/push_route.py),
on a real uvicorn on 127.0.0.1 and the embedded Redis: the same answers as the
FastAPI routes gave (problem+json, status codes, the request id, the push
secret), a body bound, and a job pushed end to end. The rest of the app
(/healthz, /sweep) is still FastAPI's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from entail_worker.app import create_app
from entail_worker.push_route import PUSH_MAX_BYTES, PushRoutes, Reply
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from support.waiting import eventually

from entail import decisions
from entail.bootstrap import bootstrap
from entail.bus.port import REASONING_JOBS
from entail.bus.push import push_envelope
from entail.bus.redis_streams import decode_entry, stream_key
from entail.settings import Settings

SECRET = "push-secret"
SOURCE = "decision(A, approve) :- applicant(A), income(A, I), I >= 3000000.\n"


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: it runs inside the test's event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Any, lifespan: str = "on") -> AsyncIterator[str]:
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=1)
    server = _QuietServer(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, what="the server to listen", timeout_s=30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[str]:
    app = create_app(
        settings.model_copy(update={"push_auth": "secret", "push_secret": SECRET, "worker_processes": 1})
    )
    async with serving(app) as url:
        yield url


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"]
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["request_id"] == response.headers["x-request-id"]
    return body


async def raw_request(url: str, head: bytes) -> bytes:
    """Send ``head`` (a request line and headers, no body) and read the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_a_push_is_refused_as_before_without_fastapi(worker: str) -> None:
    push = f"{worker}/push/reasoning-jobs"
    async with httpx.AsyncClient(timeout=10) as client:
        anonymous = await client.post(push, json={"message": {"data": ""}}, headers={"X-Request-Id": "req-1"})
        body = problem(anonymous, 401)
        assert body["request_id"] == "req-1" and "x-entail-push-secret" in body["detail"]
        assert body["outcome"] == "unauthorized"
        for envelope in ({}, {"message": {}}, {"message": {"data": "%%%not base64"}}):
            bad = await client.post(push, json=envelope, headers={"X-Entail-Push-Secret": SECRET})
            assert problem(bad, 400)["outcome"] == "malformed-envelope", envelope
        not_json = await client.post(push, content=b"{", headers={"X-Entail-Push-Secret": SECRET})
        assert "not a Pub/Sub push envelope" in problem(not_json, 400)["detail"]
        wrong_method = await client.get(push)
        assert problem(wrong_method, 405)["outcome"] == "method-not-allowed"
        assert wrong_method.headers["allow"] == "POST"
        dead_letter = await client.post(f"{worker}/push/dead-letters", json={})
        assert problem(dead_letter, 401)["outcome"] == "unauthorized"
        # the rest of the app is FastAPI's, as before
        assert (await client.get(f"{worker}/healthz")).json() == {"status": "ok"}
        assert problem(await client.post(f"{worker}/sweep"), 401)["outcome"] == "unauthorized"
        swept = await client.post(f"{worker}/sweep", headers={"X-Entail-Push-Secret": SECRET})
        assert swept.status_code == 200 and swept.json()["outcome"] == "swept"
        assert (await client.get(f"{worker}/push/unknown")).status_code == 404


async def test_an_envelope_declared_over_the_bound_is_refused_before_it_is_read(worker: str) -> None:
    head = (
        b"POST /push/reasoning-jobs HTTP/1.1\r\nHost: w\r\nX-Entail-Push-Secret: " + SECRET.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(PUSH_MAX_BYTES + 1).encode()
        + b"\r\n\r\n"
    )  # fmt: skip
    answer = await raw_request(worker, head)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:200]
    assert b"content-type: application/problem+json" in rest.lower()
    assert b'"outcome":"envelope-too-large"' in rest


async def test_a_chunked_body_over_the_bound_is_413_and_the_handler_never_runs() -> None:
    handled: list[bytes] = []

    async def handle(headers: Headers, body: bytes) -> Reply:
        handled.append(body)
        return Reply(200, b'{"outcome":"ok"}')

    fallback = Starlette(routes=[Route("/other", lambda request: PlainTextResponse("other"))])
    app = PushRoutes(fallback, {"/push": handle}, max_bytes=1000)

    async def chunks(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"x" * 300

    async with serving(app, lifespan="off") as url, httpx.AsyncClient(timeout=10) as client:
        over = await client.post(f"{url}/push", content=chunks(4))  # chunked: no Content-Length
        assert problem(over, 413)["detail"] == "a push envelope is at most 1000 bytes"
        assert handled == []
        under = await client.post(f"{url}/push", content=chunks(3))
        assert (under.status_code, under.json()) == (200, {"outcome": "ok"})
        assert handled == [b"x" * 900]
        assert under.headers["x-request-id"]
        assert (await client.get(f"{url}/other")).text == "other"


async def test_a_pushed_job_is_evaluated_and_acknowledged(worker: str, settings: Settings) -> None:
    svc = await bootstrap(settings)
    try:
        version, _ = await svc.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        limits = decisions.service_limits(settings, {})
        facts = {"applicant": [["ann"]], "income": [["ann", 5200000]]}
        sub = await decisions.submit(svc, "acme", version, facts, ["decision(A, D)"], False, limits)
        (message,) = [decode_entry(i, f) for i, f in await svc.redis.xrange(stream_key(REASONING_JOBS))]
        envelope = push_envelope(message, "reasoning-jobs", 1)
        async with httpx.AsyncClient(timeout=30) as client:
            pushed = await client.post(
                f"{worker}/push/reasoning-jobs", json=envelope, headers={"X-Entail-Push-Secret": SECRET}
            )
            assert pushed.status_code == 200, pushed.text
            assert pushed.headers["content-type"] == "application/json"
            assert pushed.json() == {
                "outcome": "succeeded",
                "detail": f"decision {sub.record.decision_id} succeeded",
            }
            # a redelivery evaluates nothing (the record is not the pending one any more)
            again = await client.post(
                f"{worker}/push/reasoning-jobs", json=envelope, headers={"X-Entail-Push-Secret": SECRET}
            )
            assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
        stored = await svc.decisions.get("acme", sub.record.decision_id)
        assert stored is not None and stored.status == "succeeded"
        assert (
            json.loads(stored.model_dump_json())["answers"][0]["answers"][0]["atom"]
            == 'decision("ann",approve)'
        )
    finally:
        await svc.aclose()
