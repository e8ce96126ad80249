"""The outermost HTTP middleware of the backend and the worker: one request id
and one log context per request, an access line, and no bare 500.

* The request id is the client's ``X-Request-Id`` when it is a short token
  (:func:`entail.logs.accept_request_id`), else a fresh one; it goes back in the
  ``X-Request-Id`` header of every response (errors too), into every
  problem+json body (``request_id``, :func:`entail.problems.problem_body`) and
  into every log line of the request.
* The trace comes from ``traceparent`` or ``X-Cloud-Trace-Context`` (an active
  OpenTelemetry span wins when the line is written).
* The access line (logger ``entail.access``, on in production) carries Cloud
  Logging's ``httpRequest``: method, path (never the query string), status,
  latency, user agent, remote address, response size.
* An exception no handler took becomes a logged traceback and a 500
  problem+json with the request id, instead of a plain-text 500.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import logs
from .problems import MEDIA_TYPE, encode_problem, problem_body

log = logging.getLogger("entail.http")
access = logging.getLogger(logs.ACCESS_LOGGER)
_READ = frozenset({b"x-request-id", b"traceparent", b"x-cloud-trace-context", b"user-agent"})


class RequestContext:
    """ASGI middleware; add it last so it wraps every other layer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # one pass over the raw headers (ASGI names are lower case): this runs on every request
        wanted: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _READ:
                wanted[name] = value.decode("latin-1")
        request_id = logs.accept_request_id(wanted.get(b"x-request-id"))
        # the trace headers are parsed only if a line is written (logs.LogContext.trace)
        ctx = logs.LogContext(
            request_id=request_id,
            trace_headers=(wanted.get(b"traceparent"), wanted.get(b"x-cloud-trace-context")),
        )
        id_header = (b"x-request-id", request_id.encode())
        status, size, started = 500, 0, False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, size, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        token = logs.enter(ctx)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise  # part of the answer is out: only closing the connection is left
            await _internal_error(scope["path"], send_with_id)
        finally:
            if access.isEnabledFor(logging.INFO):
                access.info(
                    "%s %s %d %.1f ms",
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - start) * 1000,
                    extra={
                        "http_request": _http_request(scope, wanted.get(b"user-agent"), status, size, start)
                    },
                )
            logs.leave(token)


async def _internal_error(path: str, send: Send) -> None:
    body = encode_problem(
        problem_body(500, "internal-error", "an internal error occurred; it is logged", instance=path)
    )
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _http_request(
    scope: Scope, user_agent: str | None, status: int, size: int, start: float
) -> dict[str, object]:
    """Cloud Logging's HttpRequest: the path only (a query string may carry anything)."""
    client = scope.get("client")
    entry: dict[str, object] = {
        "requestMethod": scope["method"],
        "requestUrl": scope["path"],
        "status": status,
        "responseSize": str(size),
        "latency": f"{time.perf_counter() - start:.6f}s",
        "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
    }
    if user_agent:
        entry["userAgent"] = user_agent[:256]
    if client:
        entry["remoteIp"] = client[0]
    return entry
