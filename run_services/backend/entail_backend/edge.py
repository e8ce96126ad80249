"""The backend's innermost request layers, as one plain ASGI middleware.

Three small jobs around every request, which were three ``@app.middleware("http")``
functions: Starlette runs each such layer through ``BaseHTTPMiddleware``, a task
and a pair of memory streams per request, and under load those three layers
took more of the backend's CPU than the decision route itself (py-spy,
bench/PROFILE.md). Here they are one pass over the ASGI messages:

* **metrics**: the request's count and latency by method, route template and
  status (:mod:`.metrics`);
* **Redis unreachable** → a 503 problem with ``Retry-After`` that says whether
  Pub/Sub or the state store failed, never a bare 500 (the address is logged,
  never answered);
* **rate headers**: the ``RateLimit-*`` headers the rate limiter left on
  ``request.state`` go on the response (not on such a 503, as before).
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import LATENCY, REQUESTS
from .problems import Problem, problem_response

log = logging.getLogger("entail.backend")


class Edge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_rate_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                rate = scope.get("state", {}).get("rate_headers")
                if rate:
                    headers = MutableHeaders(scope=message)
                    for name, value in rate.items():
                        headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_rate_headers)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if started:
                raise
            # the Pub/Sub adapter raises the same classes; say which part failed
            from entail.bus.pubsub import BusTimeout, BusUnavailable

            part = "Pub/Sub" if isinstance(exc, BusUnavailable | BusTimeout) else "state store"
            path = scope.get("path", "")
            log.warning("%s unavailable on %s %s: %s", part, scope.get("method"), path, exc)
            status = 503
            problem = Problem(
                503,
                "unavailable",
                "Service unavailable",
                f"{part} unavailable; retry shortly",
                headers={"Retry-After": "1"},
            )
            await problem_response(problem, path)(scope, receive, send)
        finally:
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            method = scope.get("method", "")
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - start)
