"""The backend's app factory: ``create_app(settings)``; the lifespan owns Redis and the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entail.bootstrap import Services, open_services
from entail.settings import Settings
from entail.state.durability import DurabilityNotConfirmed

from . import compute, problems, webapp
from .metrics import observe
from .problems import Problem, problem_response
from .routes import audit, decisions, drafts, health, rulesets, whoami

API_DESCRIPTION = """\
Entail answers decisions over case facts with a published Datalog ruleset, with
a proof for every answer. Authenticate with `Authorization: Bearer <api key>`.
Errors are RFC 9457 problem+json.
"""


class BodySizeLimit:
    """413 for bodies over ``limit`` bytes, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, receive, send, int(declared))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(seen)
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge as exc:
            await self._reject(scope, receive, send, exc.size)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        problem = Problem(
            413,
            "payload-too-large",
            "Payload too large",
            f"the request body is {size} bytes or more; the limit is {self.limit}",
        )
        await problem_response(problem, scope["path"])(scope, receive, send)


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


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
    app.include_router(decisions.router)
    app.include_router(audit.router)
    app.include_router(health.router)
    app.include_router(whoami.router)

    dist = settings.static_dir or webapp.default_dist()
    if (dist / "index.html").is_file():
        webapp.mount(app, dist)  # after every API route: it only answers what they do not
    else:

        @app.get("/", include_in_schema=False)
        async def root() -> dict[str, Any]:
            return {"service": "entail-backend", "docs": "/docs", "openapi": "/openapi.json"}

    @app.middleware("http")
    async def rate_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in getattr(request.state, "rate_headers", {}).items():
            response.headers.setdefault(name, value)
        return response

    @app.middleware("http")
    async def unavailable(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Redis unreachable is a 503 the client may retry, never a bare 500."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return await call_next(request)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            return problem_response(
                Problem(
                    503,
                    "unavailable",
                    "Service unavailable",
                    f"state store unavailable: {exc}",
                    headers={"Retry-After": "1"},
                ),
                request.url.path,
            )

    app.middleware("http")(observe)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:  # the web app served from another origin (the CDN) calls the API
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=[
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
                "Location",
            ],
            max_age=600,
        )
    return app
