"""The worker's push endpoints as plain ASGI handlers, beside the FastAPI app.

Every decision is one push (the relay's POST locally, Pub/Sub's in the cloud), so
what a push costs before :func:`entail.jobs.handle_job` runs is paid per
decision. Through FastAPI a push went through Starlette's error and exception
middleware, the exit stack, the router's match of every route, the endpoint's
dependency solving and a ``Response`` object: about a fifth of the worker's
samples under load (bench/PROFILE.md, helper W3). :class:`PushRoutes` answers the
push paths itself and hands every other request to the FastAPI app.

What a push gets is what it got through FastAPI:

* :class:`~entail.request_context.RequestContext` around it: the request id
  (``X-Request-Id`` back), the log context, the access line, and a 500
  problem+json instead of a bare one for an error no one handled;
* a body of at most :data:`PUSH_MAX_BYTES` (413 problem+json; Content-Length is
  checked before anything is read, a chunked body as it arrives);
* ``POST`` only (405 problem+json with ``Allow: POST``);
* with tracing on, a span per push, a child of the request's ``traceparent``
  (the relay's push span), so ``job.handle`` nests under it as it did under the
  FastAPI instrumentation's server span;
* the status codes and bodies of :func:`answer`, which the FastAPI routes use too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from entail import tracing
from entail.problems import MEDIA_TYPE, encode_problem, problem_body
from entail.request_context import RequestContext

PUSH_MAX_BYTES = 16 * 1024 * 1024
"""The largest push envelope read. Pub/Sub's largest message (10 MB of data) is
about 13.4 MB once base64-encoded in the envelope; a job carries at most the
backend's request body (``ENTAIL_MAX_BODY_BYTES``), far less."""

JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """One answer: status, body bytes, media type and extra headers."""

    status: int
    body: bytes
    media_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def answer(
    status: int, outcome: str, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> Reply:
    """A push's (or a sweep's) answer: a problem+json for a 4xx/5xx (Pub/Sub reads only
    the status; a person reading the log gets a problem), else ``{"outcome", "detail", ...}``."""
    pairs = tuple((headers or {}).items())
    if status >= 400:
        problem = problem_body(status, outcome, detail, title=outcome, outcome=outcome, **extra)
        return Reply(status, encode_problem(problem), MEDIA_TYPE, pairs)
    body = {"outcome": outcome, "detail": detail, **extra}
    return Reply(status, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), JSON, pairs)


PushHandler = Callable[[Headers, bytes], Awaitable[Reply]]
"""One push's handling: the request's headers and body in, the answer out."""


class WorkerApp(FastAPI):
    """The worker's FastAPI app, with the push paths answered before it by plain
    handlers (:meth:`serve_pushes`). Still a FastAPI app for everything else:
    its state, lifespan, routes and the tracing instrumentation."""

    _pushes: PushRoutes | None = None

    def serve_pushes(self, paths: Mapping[str, PushHandler]) -> None:
        self._pushes = PushRoutes(partial(FastAPI.__call__, self), paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._pushes is None:
            await super().__call__(scope, receive, send)
        else:
            await self._pushes(scope, receive, send)


class PushRoutes:
    """ASGI: ``paths`` (exact) answered by their :data:`PushHandler`, anything else by ``app``."""

    def __init__(
        self, app: ASGIApp, paths: Mapping[str, PushHandler], *, max_bytes: int = PUSH_MAX_BYTES
    ) -> None:
        self.app = app
        self.paths = dict(paths)
        self.max_bytes = max_bytes
        self._served = RequestContext(self._serve)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self._served(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["method"] != "POST":
            reply = answer(405, "method-not-allowed", f"{path} takes POST only", headers={"Allow": "POST"})
            await _send(send, reply)
            return
        headers = Headers(scope=scope)
        try:
            body = await _read_body(headers, receive, self.max_bytes)
        except _ClientGone:
            return  # nobody to answer; the relay (or Pub/Sub) delivers the message again
        if body is None:
            detail = f"a push envelope is at most {self.max_bytes} bytes"
            await _send(send, answer(413, "envelope-too-large", detail))
            return
        handle = self.paths[path]
        if not tracing.enabled():
            await _send(send, await handle(headers, body))
            return
        # the server span the FastAPI instrumentation made for a request, made here:
        # a child of the caller's traceparent (the relay's push), the parent of job.handle
        with tracing.span(f"POST {path}", {"http.route": path}, parent=tracing.extract(headers)) as span:
            reply = await handle(headers, body)
            tracing.record(span, **{"http.status_code": reply.status})
        await _send(send, reply)


class _ClientGone(Exception):
    """The client closed the connection before its request's body was in."""


async def _read_body(headers: Headers, receive: Receive, max_bytes: int) -> bytes | None:
    """The request body, or None when it is over ``max_bytes`` (declared or sent);
    :class:`_ClientGone` when the client went away before sending it all."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Send, reply: Reply) -> None:
    headers = [
        (b"content-type", reply.media_type.encode()),
        (b"content-length", str(len(reply.body)).encode()),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
