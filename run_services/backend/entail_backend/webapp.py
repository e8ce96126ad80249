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
# the built app is one module script and one stylesheet from this origin and
# calls the API on this origin: no inline or foreign script, never framed. Styles
# may be inline: the code editor injects its own (a style cannot run code).
# 'wasm-unsafe-eval' lets the playground's browser engine (Pyodide) compile its
# WebAssembly; it allows no eval of JavaScript
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def default_dist() -> Path:
    """The repository's static/dist (run_services/backend/entail_backend/ → repo root)."""
    return Path(__file__).resolve().parents[3] / "static" / "dist"


def reserved(path: str) -> bool:
    head = path.strip("/").split("/", 1)[0]
    return head in RESERVED


def mount(app: FastAPI, dist: Path, *, source_maps: bool = False) -> None:
    """Route every GET that no API route matched to the app in ``dist``; ``*.map``
    files (the build's source maps) only with ``source_maps``."""
    root = dist.resolve()
    index = root / "index.html"

    @app.get("/{path:path}", include_in_schema=False)
    async def web_app(path: str) -> Response:
        if reserved(path) or "\x00" in path:
            raise HTTPException(404)  # the API's own "no route" problem
        if path:
            hidden = path.endswith(".map") and not source_maps
            candidate = (root / path).resolve()
            if not hidden and candidate.is_relative_to(root) and candidate.is_file():
                cache = IMMUTABLE if path.startswith("assets/") else REVALIDATE
                return FileResponse(candidate, headers={"Cache-Control": cache, **SECURITY_HEADERS})
            if "." in path.rsplit("/", 1)[-1]:  # a missing file, not a client route
                raise HTTPException(404)
        return FileResponse(index, headers={"Cache-Control": REVALIDATE, **SECURITY_HEADERS})
