"""The reasoning worker: a Pub/Sub push endpoint for topic ``reasoning-jobs``.

Each push is authenticated, decoded and handed to :func:`entail.jobs.handle_job`
(claim, lease, evaluate in this worker's pool of processes, store, publish);
this module maps its outcome to a status code.

Responses drive redelivery: 2xx acknowledges (done, failed-and-recorded, or a
duplicate); 400 a malformed envelope; 503 while another worker holds the claim
or on a transient failure (Redis unreachable, or no replica confirmed the stored
result), so the message comes back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.datastructures import Headers

from entail import fairness, logs
from entail.bootstrap import open_services
from entail.bus.push import BadEnvelope, decode_push
from entail.jobs import TRANSIENT, Handler, JobOutcome, handle_dead_letter, handle_job
from entail.request_context import RequestContext
from entail.services import Services
from entail.settings import Settings
from entail.sweeper import sweep_once

from .evaluation import Evaluations
from .push_auth import CertsUnavailable, PushAuthenticator
from .push_route import PushHandler, Reply, WorkerApp, answer

log = logging.getLogger("entail.worker")

REGISTRY = CollectorRegistry()
JOBS = Counter("entail_worker_jobs_total", "Push deliveries by outcome", ["outcome"], registry=REGISTRY)
EVAL_SECONDS = Histogram(
    "entail_worker_evaluation_seconds",
    "Engine time per decision",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30),
    registry=REGISTRY,
)


# the materialised reference data of decisions over datasets (entail/reference_cache.py),
# read at scrape time: how full the LRU is, and how often it materialises or evicts
REFERENCE_CACHE = {
    "bytes": Gauge(
        "entail_worker_reference_cache_bytes", "Bytes of materialised reference data kept", registry=REGISTRY
    ),
    "entries": Gauge("entail_worker_reference_cache_entries", "Materialised models kept", registry=REGISTRY),
    "loads": Gauge("entail_worker_reference_cache_loads", "Materialisations so far", registry=REGISTRY),
    "hits": Gauge(
        "entail_worker_reference_cache_hits", "Decisions served from a kept model", registry=REGISTRY
    ),
    "evictions": Gauge(
        "entail_worker_reference_cache_evictions", "Models evicted for room", registry=REGISTRY
    ),
}


def _watch_references(evaluations: Evaluations) -> None:
    def reader(field: str) -> Callable[[], float]:
        return lambda: float(getattr(evaluations.references.stats(), field))

    for field, gauge in REFERENCE_CACHE.items():
        gauge.set_function(reader(field))


def _reply(
    status: int, outcome: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Reply:
    JOBS.labels(outcome).inc()
    return answer(status, outcome, detail, headers=headers, **extra)


def _answer(outcome: JobOutcome) -> Reply:
    if outcome.evaluation_s is not None:
        EVAL_SECONDS.observe(outcome.evaluation_s)
    status = 503 if outcome.redeliver else 200
    return _reply(status, outcome.outcome, outcome.detail, **outcome.extra)


def _response(reply: Reply) -> Response:
    """A reply as a FastAPI route returns it (``/sweep``)."""
    return Response(
        reply.body, status_code=reply.status, media_type=reply.media_type, headers=dict(reply.headers)
    )


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> WorkerApp:
    settings = settings or Settings()
    evaluations = Evaluations(settings)  # decisions run in a pool of processes (evaluation.py)
    _watch_references(evaluations)
    authenticator = PushAuthenticator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        evaluations.start_in_background()
        try:
            async with (
                open_services(settings, services) as app.state.services,
                fairness.drainer(app.state.services, settings),
            ):
                yield
        finally:
            evaluations.close()

    app = WorkerApp(title="Entail reasoning worker", version="1.0.0", lifespan=lifespan)
    app.add_middleware(RequestContext)  # a request id and a log context per push (entail.logs)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        try:
            await request.app.state.services.redis.ping()
        except Exception as exc:
            # the exception names Redis's host and port: logged, never answered
            log.warning("readyz: Redis is unreachable: %s", exc)
            return JSONResponse({"status": "unavailable", "detail": "Redis is unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(REGISTRY).decode(), media_type=CONTENT_TYPE_LATEST)

    async def authenticate(headers: Headers) -> Reply | None:
        """None when the caller may push (or sweep), else the refusal to answer."""
        try:
            denied = await authenticator.check(headers)
        except CertsUnavailable as exc:
            log.warning("push not verified, it will be redelivered: %s", exc)
            return _reply(503, "transient-failure", str(exc))
        if denied is not None:
            outcome = "unauthorized" if denied.status == 401 else "forbidden"
            headers_out = {"WWW-Authenticate": "Bearer"} if denied.status == 401 else None
            return _reply(denied.status, outcome, denied.reason, headers=headers_out)
        return None

    def delivered(handle: Handler) -> PushHandler:
        """One push: authenticated, decoded, handled; an outcome to redeliver (a
        Redis outage, a claim held elsewhere) is a 503, so Pub/Sub (or the relay)
        delivers the message again. Served without FastAPI (push_route.py): one per decision."""

        async def push(headers: Headers, body: bytes) -> Reply:
            if (refused := await authenticate(headers)) is not None:
                return refused
            try:
                message = decode_push(body)
            except BadEnvelope as exc:
                return _reply(400, "malformed-envelope", str(exc))
            attributes = message.attributes
            logs.bind(tenant=attributes.get("tenant"), decision_id=attributes.get("decision_id"))
            return _answer(await handle(app.state.services, message))

        return push

    app.serve_pushes(
        {
            "/push/reasoning-jobs": delivered(lambda svc, m: handle_job(svc, settings, evaluations, m)),
            # the cloud's dead-letter path: Pub/Sub pushes each job it gave up on (topic
            # reasoning-jobs-dead-letter); its decision ends failed with code
            # delivery-failed. A no-op for a decision that ended or never existed
            "/push/dead-letters": delivered(handle_dead_letter),
        }
    )

    @app.post("/sweep")
    async def sweep(request: Request) -> Response:
        """Fail the decisions open past ``ENTAIL_DECISION_DEADLINE_S`` (Cloud Scheduler
        calls this every minute in the cloud, with the push service account's token)."""
        if (refused := await authenticate(request.headers)) is not None:
            return _response(refused)
        svc: Services = request.app.state.services
        try:
            failed = await sweep_once(svc.decisions, svc.bus, settings)
        except TRANSIENT as exc:
            log.warning("sweep failed, the next one retries: %s", exc)
            return _response(_reply(503, "transient-failure", "state store unavailable (logged)"))
        return _response(_reply(200, "swept", f"{failed} overdue decision(s) failed", failed=failed))

    return app
