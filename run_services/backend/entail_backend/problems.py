"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from entail.problems import MEDIA_TYPE, TITLES, encode_problem, problem_body

__all__ = ["MEDIA_TYPE", "Problem", "ProblemResponse", "install", "not_found", "problem_response"]


class Problem(Exception):
    """An API error: status, a stable type slug, a title and a precise detail."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str) -> dict[str, Any]:
        return problem_body(
            self.status, self.slug, self.detail, title=self.title, instance=instance, **self.extra
        )


class ProblemResponse(JSONResponse):
    """A problem as a response, written by :func:`entail.problems.encode_problem`."""

    def render(self, content: Any) -> bytes:
        return encode_problem(content)


def problem_response(problem: Problem, instance: str) -> JSONResponse:
    return ProblemResponse(
        problem.body(instance), status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE
    )


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"{what} does not exist")


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return "/" + "/".join(parts) if parts else "the request body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": _location(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        return problem_response(
            Problem(422, "invalid-request", "Invalid request", detail, errors=errors), request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = TITLES.get(exc.status_code, ("error", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        return problem_response(
            Problem(exc.status_code, slug, title, detail, headers=dict(exc.headers or {})), request.url.path
        )
