"""The request guard: what every request passes before any route sees it.

In this order, so that nothing is parsed for a caller who is not allowed in:

1. a NUL in the path or query string: 400 (``/%00`` must not reach the file system);
2. a declared ``Content-Length`` over ``ENTAIL_MAX_BODY_BYTES``: 413;
3. an ``/v1/`` route (a path no route matches is the router's 404) without a
   known API key: 401, and the 401s of one client
   address are rate limited (429 past ``ENTAIL_UNAUTHENTICATED_BURST``);
4. the body is read here (except a dataset upload's, which its route streams to
   disk under the dataset caps), counted as it streams (a chunked body over the limit:
   413, not the 400 a route's body parser would make of it), and must be UTF-8
   whose JSON strings hold no NUL and no lone UTF-16 surrogate (``"\\ud800"``):
   422 with the JSON pointer of the offending string;
5. the response gets ``X-Content-Type-Options: nosniff``, and the JSON answers
   of authenticated routes ``Cache-Control: no-store``.

The routes' own dependencies still check scopes and take from the key's
rate-limit bucket; they reuse the key found here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entail.auth import ApiKey
from entail.state.ratelimit import address_bucket

from .problems import Problem, problem_response

log = logging.getLogger("entail.backend")

API_PREFIX = "/v1/"
WEB_APP_ROUTE = "/{path:path}"  # webapp.mount
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# a \u escape of NUL or of a UTF-16 surrogate: only then is the parsed body walked
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_NUL_QUERY = re.compile(rb"%00")
_JSON_TYPES = ("application/json", "application/problem+json")
# POST /v1/datasets/{name}: read by the route as it streams (routes/datasets.py)
STREAMED_UPLOAD = re.compile(r"/v1/datasets/[^/]+\Z")
ROUTABLE_PATHS_KEPT = 4096


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def bad_text(value: Any, pointer: str = "") -> tuple[str, str] | None:
    """The JSON pointer and the reason of the first string (key or value) holding a
    NUL or a lone surrogate, or None. Iterative: a deeply nested body cannot
    exhaust the stack."""
    stack: list[tuple[str, Any]] = [(pointer, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            reason = _text_problem(item)
            if reason:
                return where, reason
        elif isinstance(item, list):
            stack.extend((f"{where}/{i}", v) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            for k, v in reversed(list(item.items())):
                child = f"{where}/{_escape(k)}"
                reason = _text_problem(k)
                if reason:
                    return child, f"the member name {reason}"
                stack.append((child, v))
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    for ch in _surrogates(text):
        return f"contains a lone UTF-16 surrogate (\\u{ord(ch):04x}), which is not a character"
    return None


def _surrogates(text: str) -> Iterator[str]:
    # json.loads pairs valid surrogate escapes into one character: what is left is lone
    return (ch for ch in text if "\ud800" <= ch <= "\udfff")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def check_body(body: bytes) -> Problem | None:
    """A 4xx for a body that is not UTF-8 or whose JSON holds a NUL or a lone
    surrogate; None otherwise (JSON syntax is the route's to judge)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(
            400,
            "invalid-encoding",
            "Invalid encoding",
            f"the body is not UTF-8: byte {exc.start} ({body[exc.start : exc.start + 1]!r}) {exc.reason}",
            position=exc.start,
        )
    if not _SUSPECT.search(body):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None  # not JSON: the route answers that
    found = bad_text(data)
    if found is None:
        return None
    pointer, reason = found
    location = pointer or "the request body"
    return Problem(
        422,
        "invalid-text",
        "Invalid text",
        f"{location}: the string {reason}",
        pointer=pointer,
        errors=[{"location": location, "message": f"the string {reason}", "type": "invalid_text"}],
    )


class RequestGuard:
    """ASGI middleware; ``limit`` is the body size limit in bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        # path -> whether an API route matches it: the routes are fixed once the app
        # is built, and trying each one's pattern was a visible part of every request
        self._routable: dict[str, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path or _NUL_QUERY.search(scope.get("query_string", b"")):
            nul = Problem(400, "invalid-path", "Invalid path", "the URL contains a NUL character (%00)")
            await self._refuse(nul, scope, receive, send)
            return
        # a dataset upload streams to its store, which applies its own caps
        streamed = scope["method"] == "POST" and STREAMED_UPLOAD.match(path) is not None
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit and not streamed:
            await self._refuse(self._too_large(int(declared)), scope, receive, send)
            return
        api = path.startswith(API_PREFIX) and scope["method"] != "OPTIONS" and self._is_route(scope)
        if api:
            refused = await self._authenticate(scope)
            if refused is not None:
                await self._refuse(refused, scope, receive, send)
                return
        if scope["method"] in _BODY_METHODS and not streamed:
            try:
                body = await self._read(receive)
            except _TooLarge as exc:
                await self._refuse(self._too_large(exc.size), scope, receive, send)
                return
            invalid = check_body(body)
            if invalid is not None:
                await self._refuse(invalid, scope, receive, send)
                return
            receive = replay_body(body, receive)
        await self.app(scope, receive, _with_headers(send, no_store=api))

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: the route sees an empty body
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                raise _TooLarge(seen)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, size: int) -> Problem:
        return Problem(
            413,
            "payload-too-large",
            "Payload too large",
            f"the request body is {size} bytes or more; the limit is {self.limit}",
        )

    async def _authenticate(self, scope: Scope) -> Problem | None:
        """None with the key in the request state, or the 401 (429 when this
        address has had too many)."""
        services = scope["app"].state.services
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        key: ApiKey | None = None
        if not header:
            detail = "missing Authorization header: send 'Authorization: Bearer <api key>'"
        elif scheme.lower() != "bearer" or not token.strip():
            detail = "the Authorization header must be 'Bearer <api key>'"
        else:
            key = services.keys.lookup(token.strip())
            detail = "unknown or revoked API key"
        if key is not None:
            scope.setdefault("state", {})["api_key"] = key
            return None
        settings = services.settings
        client = scope.get("client")
        address = client[0] if client else "unknown"
        try:
            decision = await services.rate_limiter.take(
                address_bucket(address), settings.unauthenticated_rate_per_s, settings.unauthenticated_burst
            )
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("rate limiter unavailable for an unauthenticated request: %s", exc)
            return Problem(
                503,
                "unavailable",
                "Service unavailable",
                "state store unavailable; retry shortly",
                headers={"Retry-After": "1"},
            )
        if not decision.allowed:
            retry = max(1, round(decision.retry_after_s + 0.499))
            return Problem(
                429,
                "rate-limited",
                "Too many requests",
                f"too many unauthenticated requests from this address; retry after {retry} s",
                headers={"Retry-After": str(retry)},
            )
        return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})

    def _is_route(self, scope: Scope) -> bool:
        path: str = scope["path"]
        known = self._routable.get(path)
        if known is None:
            known = _is_route(scope)
            if len(self._routable) >= ROUTABLE_PATHS_KEPT:
                self._routable.clear()  # ids make paths unbounded: start over
            self._routable[path] = known
        return known

    async def _refuse(self, problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(problem, scope["path"])(scope, receive, _with_headers(send, no_store=True))


def _is_route(scope: Scope) -> bool:
    """An API route matches the path (with any method): a path that matches none
    is the router's 404 ("no route"), with or without a key."""
    for route in scope["app"].router.routes:
        if getattr(route, "path", None) == WEB_APP_ROUTE:
            continue  # matches every GET: the web app's fallback, which refuses /v1/ paths
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return True
    return False


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A body already read, once, then whatever the client sends next (a disconnect):
    the guard's and the fast decision path's (fast_decisions.py)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_headers(send: Send, *, no_store: bool) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.setdefault("X-Content-Type-Options", "nosniff")
            if no_store and headers.get("content-type", "").startswith(_JSON_TYPES):
                headers["Cache-Control"] = "no-store"
        await send(message)

    return wrapped
