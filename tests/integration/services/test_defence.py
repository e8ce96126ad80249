"""Defence in depth, against the real local stack: authentication before any body
is parsed, 401s rate limited per address, rate buckets per tenant and key, keys
reloaded without a restart, the audit sink only for the relay, Redis behind a
password, data files for their owner only, caps and pages for versions and tags,
security headers, no-store, compression, no source maps."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from support.waiting import wait_for

from entail.auth import key_entry

from .stack import KEYS, LocalStack, local_stack

PROBLEM = "application/problem+json"
APP_JS = "export const app = 1;\n" + "// padding so that it is worth compressing\n" * 100


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    (folder / "assets").mkdir()
    (folder / "index.html").write_text(
        '<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>'
    )
    (folder / "assets" / "app-1a2b.js").write_text(APP_JS)
    (folder / "assets" / "app-1a2b.js.map").write_text('{"version": 3, "sources": ["secret.ts"]}')
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, dist: Path) -> Iterator[LocalStack]:
    env = {
        "ENTAIL_STATIC_DIR": str(dist),
        "ENTAIL_API_KEYS_RELOAD_S": "0.2",
        "ENTAIL_UNAUTHENTICATED_BURST": "5",
        "ENTAIL_UNAUTHENTICATED_RATE_PER_S": "0.01",
        "ENTAIL_RULESET_MAX_VERSIONS": "3",
        "ENTAIL_RULESET_MAX_TAGS": "2",
    }
    with local_stack(tmp_path_factory.mktemp("defence"), **env) as s:
        yield s


def _keys_file(stack: LocalStack) -> Path:
    return Path(stack.stack.env["ENTAIL_API_KEYS_FILE"])


def _set_keys(stack: LocalStack, extra: list[dict[str, object]]) -> None:
    path = _keys_file(stack)
    base = [key_entry("ent_dev_unused", "dev", "dev", ["admin"])]
    base += [key_entry(key, key_id, tenant, scopes) for key, key_id, tenant, scopes in KEYS.values()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(base + extra))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def _as(stack: LocalStack, key: str, address: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, transport=transport, timeout=30
    )


def test_authentication_comes_before_the_body(stack: LocalStack) -> None:
    # from an address of its own: the 401s of this test count in its own bucket
    with _as(stack, "ent_not_a_key", "127.0.0.3") as stranger:
        for content in (b"{not json", b'{"facts": "\\ud800"}', b"x" * 1000):
            response = stranger.post(
                "/v1/decisions", content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code == 401, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.headers["www-authenticate"] == "Bearer"


def test_401s_are_rate_limited_per_address(stack: LocalStack) -> None:
    with _as(stack, "ent_wrong", "127.0.0.2") as guesser:
        statuses = [guesser.get("/v1/rulesets").status_code for _ in range(8)]
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3, statuses
        limited = guesser.get("/v1/rulesets")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # another address, and any valid key, are not affected
    with _as(stack, "ent_wrong", "127.0.0.4") as other:
        assert other.get("/v1/rulesets").status_code == 401
    with stack.client("acme") as acme:
        assert acme.get("/v1/rulesets").status_code == 200


def test_keys_reload_and_rate_buckets_are_per_tenant_and_key(stack: LocalStack) -> None:
    # two tenants' keys with the same id: added to the keys file, no restart
    _set_keys(
        stack,
        [
            key_entry("ent_shared_acme", "shared", "acme", ["decide"]),
            key_entry("ent_shared_globex", "shared", "globex", ["decide"]),
        ],
    )
    with _as(stack, "ent_shared_acme") as acme, _as(stack, "ent_shared_globex") as globex:
        wait_for(lambda: acme.get("/v1/whoami").status_code == 200, 10, "the added key")
        # acme's bucket run dry (rounds of parallel requests, until a 429 or a deadline:
        # a loaded machine refills faster than sequential requests can drain it) ...
        deadline = time.monotonic() + 60
        drained = False
        with ThreadPoolExecutor(16) as pool:
            while not drained and time.monotonic() < deadline:
                codes = pool.map(lambda _: acme.get("/v1/rulesets/no-such-ruleset").status_code, range(200))
                drained = 429 in list(codes)
        assert drained, "acme's bucket never ran dry"
        # ... leaves globex's key with the same id untouched: a bucket of its own
        first = globex.get("/v1/rulesets")
        assert first.status_code == 200
        assert int(first.headers["ratelimit-remaining"]) >= 150  # a drained one refills 50/s
        # removed from the file: refused without a restart
        _set_keys(stack, [key_entry("ent_shared_globex", "shared", "globex", ["decide"])])
        wait_for(lambda: acme.get("/v1/whoami").status_code == 401, 10, "the removed key to stop working")
        assert globex.get("/v1/whoami").status_code == 200


def _cloud_event(record: dict[str, object]) -> tuple[dict[str, str], bytes]:
    data = base64.b64encode(json.dumps(record).encode()).decode()
    body = {"message": {"data": data, "attributes": {}, "messageId": "forged-1"}, "subscription": "x"}
    headers = {
        "ce-id": "forged-1",
        "ce-source": "//pubsub.googleapis.com/projects/local/topics/decisions",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "content-type": "application/json",
    }
    return headers, json.dumps(body).encode()


def test_the_audit_sink_takes_only_the_relays_deliveries(stack: LocalStack) -> None:
    sink = f"http://127.0.0.1:{stack.stack.settings.audit_sink_port}/"
    forged = {
        "decision_id": "dec_forged0000000000000000000000",
        "tenant": "globex",
        "ruleset": {"tenant": "globex", "name": "x", "version": 1, "hash": "0" * 64},
        "request_hash": "0" * 64,
        "status": "succeeded",
        "submitted_at": "2026-12-01T00:00:00.000Z",
        "completed_at": "2026-12-01T00:00:00.000Z",
    }
    headers, body = _cloud_event(forged)
    for secret in (None, "wrong"):
        extra = {"X-Entail-Push-Secret": secret} if secret else {}
        assert httpx.post(sink, content=body, headers={**headers, **extra}).status_code == 401
    with stack.client("globex") as admin:
        assert admin.get(f"/v1/audit/decisions/{forged['decision_id']}").status_code == 404
    # the relay's own deliveries still land (a decision reaches the audit trail)
    with stack.client("acme") as acme:
        made = acme.post(
            "/v1/decisions",
            json={
                "ruleset": "loan",
                "facts": {"applicant": [["ann"]]},
                "query": ["decision(A, D)"],
                "wait_ms": 10000,
            },
        ).json()
    with stack.client("acme_audit") as audit:
        wait_for(
            lambda: audit.get(f"/v1/audit/decisions/{made['decision_id']}").status_code == 200, 20, "audit"
        )


def test_redis_needs_the_password_and_the_data_is_the_owners_only(stack: LocalStack) -> None:
    port = stack.stack.redis.port
    refused = (redis.AuthenticationError, redis.ResponseError)
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as anonymous, pytest.raises(refused):
        anonymous.get("anything")
    with redis.Redis.from_url(stack.redis_url) as client:  # the URL every process got has it
        assert client.ping()
    data = stack.stack.settings.data_dir
    assert "@" in stack.redis_url and stack.stack.redis.password not in stack.log.read_text()

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    redis_dir = data / "redis"
    assert mode(data) == 0o700 and mode(redis_dir) == 0o700
    aof = [p for p in redis_dir.rglob("*") if p.is_file()]
    assert aof and all(mode(p) & 0o077 == 0 for p in aof), {str(p): oct(mode(p)) for p in aof}
    audit = data / "audit.duckdb"
    wait_for(audit.exists, 20, "the audit file")
    assert mode(audit) & 0o077 == 0, oct(mode(audit))
    assert mode(_keys_file(stack)) & 0o077 == 0


def test_versions_and_tags_are_capped_and_paged(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        for i in range(3):
            assert acme.post("/v1/rulesets", json={"name": "capped", "source": f"p({i})."}).status_code == 201
        again = acme.post("/v1/rulesets", json={"name": "capped", "source": "p(2)."})
        assert again.status_code == 200  # the latest source again: no new version, not refused
        full = acme.post("/v1/rulesets", json={"name": "capped", "source": "p(9)."})
        assert full.status_code == 409 and full.json()["type"].endswith("/too-many-versions"), full.text
        assert full.json()["limit"] == 3
        page = acme.get("/v1/rulesets/capped", params={"page_size": 2}).json()
        assert [v["version"] for v in page["versions"]] == [2, 3] and page["next_before"] == 2
        older = acme.get("/v1/rulesets/capped", params={"page_size": 2, "before": 2}).json()
        assert [v["version"] for v in older["versions"]] == [1] and older["next_before"] is None
        assert acme.get("/v1/rulesets/capped", params={"page_size": 0}).status_code == 422

        for tag, version in (("prod", 1), ("staging", 2), ("prod", 3)):
            assert acme.put(f"/v1/rulesets/capped/tags/{tag}", json={"version": version}).status_code == 200
        third = acme.put("/v1/rulesets/capped/tags/canary", json={"version": 1})
        assert third.status_code == 409 and third.json()["type"].endswith("/too-many-tags")
        tags = acme.get("/v1/rulesets/capped/tags", params={"page_size": 2}).json()
        assert tags["tags"] == {"prod": 3, "staging": 2}
        assert [m["tag"] for m in tags["history"]] == ["prod", "staging"] and tags["next_offset"] == 2
        rest = acme.get("/v1/rulesets/capped/tags", params={"page_size": 2, "offset": 2}).json()
        assert [m["version"] for m in rest["history"]] == [1] and rest["next_offset"] is None


def test_headers_compression_and_no_source_maps(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as anon:
        index = anon.get("/")
        csp = index.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'self'" in csp
        # the browser engine (Pyodide) may compile WebAssembly; JavaScript eval stays forbidden
        assert "script-src 'self' 'wasm-unsafe-eval';" in csp and "'unsafe-eval'" not in csp
        assert index.headers["x-content-type-options"] == "nosniff"
        assert index.headers["x-frame-options"] == "DENY"
        script = anon.get("/assets/app-1a2b.js", headers={"accept-encoding": "gzip"})
        assert script.headers["content-encoding"] == "gzip" and script.text == APP_JS
        assert anon.get("/assets/app-1a2b.js.map").status_code == 404
        assert "sourceMappingURL" not in script.text
    with stack.client("acme") as acme:
        listing = acme.get("/v1/rulesets/loan", headers={"accept-encoding": "gzip"})
        assert listing.status_code == 200
        assert listing.headers["cache-control"] == "no-store"
        assert listing.headers["x-content-type-options"] == "nosniff"
        assert listing.headers["content-type"].startswith("application/json")
        missing = acme.get("/v1/rulesets/nope")
        assert missing.headers["cache-control"] == "no-store"  # problems too
        # the JSON of a bigger answer is compressed
        big = acme.get("/openapi.json", headers={"accept-encoding": "gzip"})
        assert big.headers.get("content-encoding") == "gzip"


def test_readyz_names_no_address(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as anon:
        ready = anon.get("/readyz")
    # (the 503 path, with Redis down, is tests/integration/services/test_redis_down.py)
    assert ready.status_code == 200 and "127.0.0.1" not in ready.text
