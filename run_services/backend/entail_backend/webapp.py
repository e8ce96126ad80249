"""Serve the built web app (static/dist) at ``/`` with a fallback to index.html.

Locally the backend stands in for the CDN bucket that serves the app in the
cloud. Files under the dist folder are served as they are; any other GET path
is a client-side route of the single-page app and gets index.html — except the
API's own paths, which keep their problem+json 404s and are never shadowed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

# path prefixes that belong to the API: never answered with the app
RESERVED = ("v1", "healthz", "readyz", "metrics", "docs", "redoc", "openapi.json")
# hashed file names under assets/ never change; everything else is revalidated
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def default_dist() -> Path:
    """The repository's static/dist (run_services/backend/entail_backend/ → repo root)."""
    return Path(__file__).resolve().parents[3] / "static" / "dist"


def reserved(path: str) -> bool:
    head = path.strip("/").split("/", 1)[0]
    return head in RESERVED


def mount(app: FastAPI, dist: Path) -> None:
    """Route every GET that no API route matched to the app in ``dist``."""
    root = dist.resolve()
    index = root / "index.html"

    @app.get("/{path:path}", include_in_schema=False)
    async def web_app(path: str) -> Response:
        if reserved(path):
            raise HTTPException(404)  # the API's own "no route" problem
        if path:
            candidate = (root / path).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                cache = IMMUTABLE if path.startswith("assets/") else REVALIDATE
                return FileResponse(candidate, headers={"Cache-Control": cache})
            if "." in path.rsplit("/", 1)[-1]:  # a missing file, not a client route
                raise HTTPException(404)
        return FileResponse(index, headers={"Cache-Control": REVALIDATE})
