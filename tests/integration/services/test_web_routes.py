"""The routes the web app needs: whoami, draft evaluation, the static app at / with
its SPA fallback (never shadowing the API), and CORS for an app on another origin.
In process (Starlette's TestClient runs the lifespan) against the real test Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from entail_backend.app import create_app
from starlette.testclient import TestClient

from entail.auth import key_entry
from entail.settings import Settings

AUTHOR = "ent_web_author"
AUDIT = "ent_web_audit"
APP_ORIGIN = "https://app.example.test"
INDEX = "<!doctype html><title>Entail</title><div id=app></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "assets" / "app-1a2b.js").write_text("console.log('app')")
    (folder / "config.json").write_text('{"apiBaseUrl": ""}')
    return folder


@pytest.fixture
def client(settings: Settings, dist: Path) -> Iterator[TestClient]:
    keys = [
        key_entry(AUTHOR, "web-author", "acme", ["author"]),
        key_entry(AUDIT, "web-audit", "acme", ["audit"]),
    ]
    configured = settings.model_copy(
        update={"api_keys_json": json.dumps(keys), "static_dir": dist, "cors_origins": [APP_ORIGIN]}
    )
    with TestClient(create_app(configured), base_url="http://127.0.0.1") as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def test_whoami_names_tenant_and_scopes(client: TestClient) -> None:
    assert client.get("/v1/whoami", headers=auth(AUDIT)).json() == {
        "id": "web-audit",
        "tenant": "acme",
        "scopes": ["audit"],
    }
    assert "unknown" in problem(client.get("/v1/whoami", headers=auth("ent_nope")), 401)["detail"]
    assert "missing" in problem(client.get("/v1/whoami"), 401)["detail"]


def test_draft_evaluation_answers_with_proofs_and_stores_nothing(client: TestClient) -> None:
    body = {
        "source": "p(X) :- q(X), X > 1.\n#show p/1.",
        "facts": {"q": [[1], [2]]},
        "query": ["p(X)"],
        "explain": True,
    }
    response = client.post("/v1/rulesets/evaluate", json=body, headers=auth(AUTHOR))
    assert response.status_code == 200, response.text
    out = response.json()
    [answered] = out["answers"]
    [answer] = answered["answers"]
    assert answer["atom"] == "p(2)"
    assert answer["proof"]["kind"] == "rule" and answer["proof"]["rule"]["line"] == 1
    assert out["result_hash"] and "RateLimit-Remaining" in response.headers
    assert client.get("/v1/rulesets", headers=auth(AUTHOR)).json() == {"rulesets": []}


def test_draft_evaluation_errors_are_named(client: TestClient) -> None:
    bad = client.post("/v1/rulesets/evaluate", json={"source": "p(X) :- q(Y)."}, headers=auth(AUTHOR))
    diagnostics = problem(bad, 422)["diagnostics"]
    assert diagnostics[0]["line"] == 1 and diagnostics[0]["severity"] == "error"
    facts = {"source": "p(X) :- q(X).", "facts": {"q": [[1.5]]}, "query": ["p(X)"]}
    assert problem(client.post("/v1/rulesets/evaluate", json=facts, headers=auth(AUTHOR)), 422)[
        "type"
    ].endswith("invalid-facts")
    runaway = {"source": "n(0). n(X+1) :- n(X).", "limits": {"derived_facts": 1000}}
    limited = problem(client.post("/v1/rulesets/evaluate", json=runaway, headers=auth(AUTHOR)), 422)
    assert limited["type"].endswith("limit-derived-facts") and limited["limit"] == 1000
    assert problem(client.post("/v1/rulesets/evaluate", json=runaway, headers=auth(AUDIT)), 403)


def test_the_app_is_served_with_a_fallback_for_client_routes(client: TestClient) -> None:
    for path in ("/", "/playground", "/audit/dec_123", "/rulesets/loan/versions/2"):
        response = client.get(path)
        assert response.status_code == 200 and response.text == INDEX, path
        assert response.headers["cache-control"] == "no-cache"
    asset = client.get("/assets/app-1a2b.js")
    assert asset.text == "console.log('app')" and "immutable" in asset.headers["cache-control"]
    assert client.get("/config.json").json() == {"apiBaseUrl": ""}
    problem(client.get("/assets/missing-0000.js"), 404)
    problem(client.get("/../../etc/passwd.txt"), 404)


def test_the_app_never_shadows_the_api(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").json()["info"]["title"] == "Entail API"
    assert "entail_http_requests_total" in client.get("/metrics").text
    assert client.get("/docs").headers["content-type"].startswith("text/html")
    for path in ("/v1/nothing-here", "/v1", "/healthz/extra", "/metrics/x"):
        assert problem(client.get(path), 404)["detail"] == f"no route GET {path}"
    assert "/{path}" not in json.dumps(client.get("/openapi.json").json()["paths"])


def test_cors_lets_the_configured_origin_call_the_api(client: TestClient) -> None:
    preflight = client.options(
        "/v1/whoami",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    response = client.get("/v1/whoami", headers={**auth(AUTHOR), "Origin": APP_ORIGIN})
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    other = client.get("/v1/whoami", headers={**auth(AUTHOR), "Origin": "https://evil.example.test"})
    assert "access-control-allow-origin" not in other.headers


def test_without_a_built_app_root_describes_the_service(settings: Settings, tmp_path: Path) -> None:
    configured = settings.model_copy(update={"static_dir": tmp_path / "absent"})
    with TestClient(create_app(configured), base_url="http://127.0.0.1") as c:
        assert c.get("/").json()["service"] == "entail-backend"
        problem(c.get("/playground"), 404)
