"""The backend's app factory: ``create_app(settings)``; the lifespan owns Redis and the bus."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from starlette.responses import Response

from entail.bootstrap import Services, open_services
from entail.request_context import RequestContext
from entail.settings import Settings
from entail.state.durability import DurabilityNotConfirmed

from . import compute, openapi, problems, webapp
from .allowed_methods import MethodNotAllowed
from .edge import Edge
from .fast_decisions import FastDecisions
from .guard import RequestGuard
from .problems import Problem, problem_response
from .routes import audit, datasets, decisions, drafts, health, reports, rulesets, trail, whoami

log = logging.getLogger("entail.backend")

API_DESCRIPTION = """\
Entail answers decisions over case facts with a published Datalog ruleset, with
a proof for every answer. Authenticate with `Authorization: Bearer <api key>`.
Errors are RFC 9457 problem+json. Text anywhere in a request body (strings and
member names) must be Unicode without NUL characters or lone surrogates: 422
`invalid-text` with the JSON pointer of the string.
"""


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            open_services(settings, services) as app.state.services,
            compute.running(app.state, settings),  # heavy work: a process pool, not this loop
        ):
            yield

    app = FastAPI(
        title="Entail API",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(app)
    openapi.install(app, settings)  # every status, problem+json bodies, bearer security, links

    @app.exception_handler(DurabilityNotConfirmed)
    async def not_durable(request: Request, exc: DurabilityNotConfirmed) -> Response:
        """No replica confirmed the write in time: do not acknowledge it (it may be
        lost in a failover); the client retries."""
        return problem_response(
            Problem(
                503,
                "durability-not-confirmed",
                "Durability not confirmed",
                str(exc),
                headers={"Retry-After": "1"},
                required_replicas=exc.required,
                confirmed_replicas=exc.confirmed,
            ),
            request.url.path,
        )

    app.include_router(drafts.router)
    app.include_router(rulesets.router)
    app.include_router(datasets.router)
    app.include_router(rulesets.bindings_router)  # GET /v1/datasets/{name}/rulesets
    app.include_router(decisions.router)
    app.include_router(reports.router)
    app.include_router(audit.router)
    app.include_router(trail.router)
    app.include_router(health.router)
    app.include_router(whoami.router)

    dist = settings.static_dir or webapp.default_dist()
    if (dist / "index.html").is_file():
        # after every API route: it only answers what they do not
        webapp.mount(app, dist, source_maps=settings.webapp_source_maps)
    else:

        @app.get("/", include_in_schema=False)
        async def root() -> dict[str, Any]:
            return {"service": "entail-backend", "docs": "/docs", "openapi": "/openapi.json"}

    # innermost: a plain POST /v1/decisions without FastAPI's per-request work
    # (the route's own code; anything unusual goes to the route: fast_decisions.py)
    app.add_middleware(FastDecisions, api=app)
    # metrics, a 503 for Redis unreachable, the rate headers: one plain ASGI layer
    # (three BaseHTTPMiddleware layers cost more CPU than the decision route)
    app.add_middleware(Edge)
    # a documented path asked with another method: 405 with every method it has
    app.add_middleware(MethodNotAllowed, api=app)
    # authenticate before any body is read, bound and check the body (guard.py)
    app.add_middleware(RequestGuard, limit=settings.max_body_bytes)
    # outside the guard: its 401/413/422 are compressed like everything else;
    # server-sent events are never buffered (text/event-stream is excluded)
    # level 5, not Starlette's 9: it compresses on the event loop, and a 2 MB decision
    # record took 0.3 s at 9 (0.05 s at 5, for a body 1% larger): readers of big
    # records stalled every other request (bench/fairness.py, huge-answers)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    if settings.cors_origins:  # the web app served from another origin (the CDN) calls the API
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
            expose_headers=[
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
                "Location",
                "X-Request-Id",
                "Idempotent-Replayed",
                "ETag",
                "X-Entail-Report-Sha256",
                "X-Entail-Report-Source",
                "X-Entail-Report-Generated-At",
            ],
            max_age=600,
        )
    # outermost: every answer (a refusal of the guard, a CORS preflight, a 500)
    # carries the request id, and every line logged while serving it too
    app.add_middleware(RequestContext)
    return app
