"""The backend's request layers: no ``BaseHTTPMiddleware`` (a task and two memory
streams per request), and the plain ASGI layer that replaced three of them still
does their jobs (metrics by route template, rate headers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from entail_backend import guard as guard_module
from entail_backend.app import create_app
from entail_backend.edge import Edge
from entail_backend.guard import RequestGuard
from entail_backend.metrics import REQUESTS
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.testclient import TestClient

from entail.settings import Settings


def test_no_request_layer_is_a_base_http_middleware(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    classes = [m.cls for m in app.user_middleware]
    assert Edge in classes
    assert not [c for c in classes if isinstance(c, type) and issubclass(c, BaseHTTPMiddleware)]


def test_edge_counts_requests_by_route_template_and_adds_rate_headers() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        scope["state"] = {"rate_headers": {"RateLimit-Limit": "7", "RateLimit-Remaining": "3"}}
        scope["route"] = type("R", (), {"path": "/v1/things/{thing_id}"})()
        await send({"type": "http.response.start", "status": 204, "headers": [(b"ratelimit-limit", b"9")]})
        await send({"type": "http.response.body", "body": b""})

    before = REQUESTS.labels("GET", "/v1/things/{thing_id}", "204")._value.get()
    response = TestClient(Edge(app)).get("/v1/things/42")  # no lifespan: the app has none
    assert response.status_code == 204
    assert response.headers["ratelimit-limit"] == "9"  # set by the route: kept (setdefault)
    assert response.headers["ratelimit-remaining"] == "3"
    assert REQUESTS.labels("GET", "/v1/things/{thing_id}", "204")._value.get() == before + 1


def test_the_guard_remembers_which_paths_are_routes_boundedly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    guard = RequestGuard(app, limit=1000)

    def scope(path: str, method: str = "GET") -> dict[str, Any]:
        return {"type": "http", "path": path, "method": method, "root_path": "", "app": app, "headers": []}

    for _ in range(2):  # asked, then remembered: the same answers
        assert guard._is_route(scope("/v1/decisions/dec_1"))
        assert guard._is_route(scope("/v1/decisions/dec_1", "DELETE"))  # a route (its 405 comes later)
        assert not guard._is_route(scope("/v1/nothing-here"))  # the router's 404, key or not
    assert set(guard._routable) == {"/v1/decisions/dec_1", "/v1/nothing-here"}
    monkeypatch.setattr(guard_module, "ROUTABLE_PATHS_KEPT", 3)
    for i in range(10):
        assert guard._is_route(scope(f"/v1/decisions/dec_{i}"))
        assert len(guard._routable) <= 3
