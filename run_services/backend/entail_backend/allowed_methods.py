"""405 for a method the API does not have at a path, with every method it has.

Starlette picks the first route whose path matches, so the API's paths answered
other methods in ways the OpenAPI document does not say: ``GET /v1/decisions``
fell through to the web app's catch-all (404), ``GET /v1/rulesets/validate``
reached ``GET /v1/rulesets/{name}`` with the name "validate", and a 405 named
only the first route's methods (``Allow: POST`` on /v1/rulesets, which also has
GET). Here a path is matched as OpenAPI matches it (a literal path before a
templated one) against the documented routes, before any route runs.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import Problem, problem_response

Routes = tuple[tuple[re.Pattern[str], int, frozenset[str]], ...]


def documented_routes(app: FastAPI) -> Routes:
    """(path regex, number of path parameters, methods) of every documented route;
    the web app's catch-all GET is not part of the API (include_in_schema=False)."""
    by_path: dict[str, set[str]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            by_path.setdefault(context.path_format or route.path_format, set()).update(route.methods or ())
    out = []
    for path, methods in by_path.items():
        regex, _, params = compile_path(path)
        out.append((regex, len(params), frozenset(methods)))
    return tuple(out)


def allowed_methods(routes: Routes, path: str) -> list[str]:
    """The methods of the most specific documented path matching ``path``, sorted;
    empty when no documented path matches."""
    matches = [(params, methods) for regex, params, methods in routes if regex.match(path)]
    if not matches:
        return []
    fewest = min(params for params, _ in matches)
    return sorted(set().union(*(methods for params, methods in matches if params == fewest)))


class MethodNotAllowed:
    """ASGI middleware: 405 problem+json with ``Allow`` for a documented path asked
    with another method. CORS preflights are answered outside it."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app, self.api = app, api
        self._routes: Routes | None = None  # the routes are complete once the app serves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._routes is None:
                self._routes = documented_routes(self.api)
            methods = allowed_methods(self._routes, scope["path"])
            if methods and scope["method"] not in methods:
                allow = ", ".join(methods)
                problem = Problem(
                    405,
                    "method-not-allowed",
                    "Method not allowed",
                    f"{scope['method']} is not allowed on {scope['path']}; allowed: {allow}",
                    headers={"Allow": allow},
                )
                await problem_response(problem, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)
