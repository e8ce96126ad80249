"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from entail.bus.port import REASONING_JOBS

from ..deps import ServicesDep
from ..metrics import BUS_LAG, REGISTRY
from ..problems import Problem

log = logging.getLogger("entail.backend")

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}})
async def healthz() -> dict[str, str]:
    """The process is up (no dependencies checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ready", "redis": "ok"}}}},
        503: {"description": "Redis unreachable"},
    },
)
async def readyz(services: ServicesDep) -> dict[str, str]:
    """Ready to serve: Redis answers."""
    try:
        await services.redis.ping()
    except Exception as exc:
        # the exception names the host and port (and a URL may carry a password): logged only
        log.warning("readyz: Redis is unreachable: %s", exc)
        raise Problem(503, "unavailable", "Service unavailable", "Redis is unreachable") from None
    return {"status": "ready", "redis": "ok"}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"example": "entail_http_requests_total{...} 3.0"}}}},
)
async def metrics(services: ServicesDep) -> PlainTextResponse:
    """Prometheus text format: requests, latency, decisions by status, bus lag
    (local mode only: with Pub/Sub the backlog is Cloud Monitoring's
    ``subscription/num_undelivered_messages``, which the alert policies watch)."""
    try:
        lag = await services.bus.backlog(REASONING_JOBS, "reasoning-worker")
    except Exception:  # metrics stay available while Redis is down
        BUS_LAG.labels("reasoning-worker").set(float("nan"))
    else:
        if lag is not None:  # None: Pub/Sub, whose backlog Cloud Monitoring has
            BUS_LAG.labels("reasoning-worker").set(lag)
    return PlainTextResponse(generate_latest(REGISTRY).decode(), media_type=CONTENT_TYPE_LATEST)
