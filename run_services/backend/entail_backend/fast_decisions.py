"""``POST /v1/decisions`` without FastAPI's per-request machinery, when nothing
about the request needs it.

The decision route is the API's hot path, and most of a cache hit's CPU was
FastAPI's, not the route's (bench/PROFILE.md, helper B3): trying the routes of
every router in turn, solving five dependencies (two of them nested), building
the sub-response. For a plain request this layer does what those steps do, with
the same code:

* the key the request guard found (guard.py), its ``decide`` scope;
* the body parsed as FastAPI parses it (``json.loads``) and validated by the same
  model (:class:`~.schemas.DecisionRequest`);
* the token and the ruleset version (:func:`.deps.take_token`), then the route's
  own body (:func:`.routes.decisions._decide`); a cache hit this process served a
  moment ago first tries :func:`.routes.decisions.repeat_hit` (the token, the
  version and the hit's record and audit message in one round trip);
* an exception answered by the app's own handler for it (problem+json), or
  raised on to the layers outside (edge.py's 503 when Redis is down).

Anything else goes to the FastAPI route unchanged, the body replayed: a body
that is not ``application/json``, does not parse or does not validate (FastAPI's
422 with its JSON pointers), a key without the scope (403), an
``Idempotency-Key``, no key at all. So every answer, status, header and problem
is the route's; the OpenAPI document is FastAPI's, from the route as declared.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from entail.auth import ApiKey

from .deps import take_token
from .guard import replay_body
from .routes.decisions import _decide, repeat_hit
from .schemas import DecisionRequest

PATH = "/v1/decisions"

Handler = Callable[[Request, Exception], Awaitable[Response]]


class FastDecisions:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self._route: APIRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key: ApiKey | None = scope.get("state", {}).get("api_key")
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if (
            key is None
            or not key.allows("decide")
            or media_type != "application/json"
            or "idempotency-key" in headers
        ):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        try:
            request_body = DecisionRequest.model_validate(json.loads(body))
        # the route's answer, with its pointers (RecursionError: nested past the
        # parser's limit, which FastAPI answers as a body it could not parse)
        except (ValueError, ValidationError, RecursionError):
            await self.app(scope, replay_body(body, receive), send)
            return
        scope["route"] = self._decision_route()  # what the router sets (metrics' label)
        scope.setdefault("path_params", {})
        request = Request(scope, replay_body(body, receive))
        app = scope["app"]
        services = app.state.services
        # FastAPI's sub-response: headers a route sets (Location) without a status
        response = Response()
        del response.headers["content-length"]
        response.status_code = None  # type: ignore[assignment]
        try:
            answer, taken, decoded = await repeat_hit(request_body, request, response, services, key)
            if answer is None:
                if not taken:
                    await take_token(request, services, key, ruleset=request_body.ruleset)
                compute = app.state.compute
                answer = await _decide(request_body, request, response, services, compute, key, decoded)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answer = await handler(request, exc)
        await answer(scope, request.receive, send)

    def _decision_route(self) -> APIRoute:
        if self._route is None:
            (self._route,) = [
                c.original_route
                for c in iter_route_contexts(self.api.routes)
                if isinstance(c.original_route, APIRoute)
                and c.original_route.path == PATH
                and "POST" in (c.original_route.methods or ())
            ]
        return self._route

    def _handler(self, exc: Exception) -> Handler | None:
        """The app's exception handler for ``exc``, looked up as Starlette does (the
        closest class in its MRO)."""
        handlers: dict[Any, Any] = self.api.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:  # the server error layer's, outside (never registered here)
                return None
            if cls in handlers:
                handler: Handler = handlers[cls]
                return handler
        return None


async def _read(receive: Receive) -> bytes:
    """The body (the guard has read and bounded it, and replays it whole)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
