"""Prometheus metrics of the backend process (one registry per process)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "entail_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "entail_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
DECISIONS = Counter(
    "entail_decisions_total",
    "Decisions seen by this backend: submitted, cached, and the final status of those it answered",
    ["status"],
    registry=REGISTRY,
)
BUS_LAG = Gauge(
    "entail_bus_lag_messages",
    "Messages of a subscription not yet delivered or not yet acknowledged",
    ["subscription"],
    registry=REGISTRY,
)


def route_of(request: Request) -> str:
    """The route template (``/v1/decisions/{decision_id}``), never the raw path,
    so label cardinality stays bounded."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    start = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = route_of(request)
        REQUESTS.labels(request.method, route, str(status)).inc()
        LATENCY.labels(request.method, route).observe(time.perf_counter() - start)
