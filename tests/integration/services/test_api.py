"""Every endpoint of the backend through a real local stack (processes, HTTP, Redis)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from entail_dev.stack import example_case
from support.waiting import wait_for

from .stack import LocalStack, decide, events

PROBLEM = "application/problem+json"
SLOW_SOURCE = "n(0). n(X+1) :- n(X)."


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("api")
    return s


@pytest.fixture
def acme(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client("acme") as c:
        yield c


@pytest.fixture
def globex(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client("globex") as c:
        yield c


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"] and body["type"].startswith("https://")
    return body


def publish(client: httpx.Client, name: str, source: str, **extra: Any) -> httpx.Response:
    return client.post("/v1/rulesets", json={"name": name, "source": source, **extra})


# operations -------------------------------------------------------------------


def test_health_ready_and_metrics(stack: LocalStack) -> None:
    with stack.client("") as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        assert anon.get("/readyz").json()["redis"] == "ok"
        with stack.client("acme") as acme:
            decide(acme, ruleset="loan", facts=example_case(), query=["decision(A, D)"], wait_ms=5000)
        text = anon.get("/metrics").text
    assert 'entail_http_requests_total{method="POST",route="/v1/decisions"' in text
    assert "entail_http_request_duration_seconds_bucket" in text
    assert 'entail_decisions_total{status="succeeded"}' in text or 'status="cached"' in text
    assert 'entail_bus_lag_messages{subscription="reasoning-worker"}' in text


def test_openapi_has_an_example_for_every_route(stack: LocalStack) -> None:
    with stack.client("") as anon:
        spec = anon.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    missing = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            texts = json.dumps(op.get("responses", {})) + json.dumps(op.get("requestBody", {}))
            refs = [r.split("/")[-1] for r in _refs(op)]
            has = '"example' in texts or any("examples" in schemas.get(r, {}) for r in refs)
            if not has:
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"routes without an example: {missing}"
    assert {"/v1/decisions", "/v1/decisions/batch", "/v1/rulesets/validate"} <= set(spec["paths"])


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if "$ref" in node else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_unknown_route_is_problem_json(acme: httpx.Client) -> None:
    assert "no route GET /v1/nope" in problem(acme.get("/v1/nope"), 404)["detail"]


# rulesets ---------------------------------------------------------------------


def test_validate_reports_line_and_column(acme: httpx.Client) -> None:
    bad = acme.post("/v1/rulesets/validate", json={"source": "p(X) :- q(Y).\nq(1)."}).json()
    assert bad["ok"] is False and bad["hash"] is None
    d = bad["diagnostics"][0]
    assert (d["code"], d["line"], d["column"]) == ("unsafe-variable", 1, 3)
    assert "^" in d["rendered"]
    good = acme.post("/v1/rulesets/validate", json={"source": "p(1)."}).json()
    assert good["ok"] is True and len(good["hash"]) == 64


def test_publish_versions_idempotent_and_refused(acme: httpx.Client) -> None:
    first = publish(acme, "pv", "a(1).")
    assert first.status_code == 201 and first.json()["version"] == 1 and first.json()["created"] is True
    assert first.headers["location"] == "/v1/rulesets/pv/versions/1"
    again = publish(acme, "pv", "a(1).")
    assert again.status_code == 200 and again.json()["version"] == 1 and again.json()["created"] is False
    assert publish(acme, "pv", "a(2).").json()["version"] == 2

    invalid = problem(publish(acme, "pv", "a(X)."), 422)
    assert invalid["diagnostics"][0]["line"] == 1 and "unsafe" in invalid["detail"]

    failing = publish(
        acme,
        "pv",
        "a(3).",
        tests=[{"name": "has a(1)", "query": ["a(X)"], "expect": {"a(X)": ["a(1)"]}}],
    )
    body = problem(failing, 422)
    assert body["failures"][0]["name"] == "has a(1)"
    assert any("missing a(1)" in p for p in body["failures"][0]["problems"])
    versions = acme.get("/v1/rulesets/pv").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]  # the refused version was not stored


def test_list_get_version_and_tags(stack: LocalStack, acme: httpx.Client) -> None:
    publish(acme, "tg", "t(1).")
    publish(acme, "tg", "t(2).")
    names = [r["name"] for r in acme.get("/v1/rulesets").json()["rulesets"]]
    assert {"loan", "reachability", "tg"} <= set(names)
    latest = acme.get("/v1/rulesets/tg/versions/latest").json()
    assert (latest["version"], latest["source"]) == (2, "t(2).")
    assert acme.get("/v1/rulesets/tg/versions/1").json()["source"] == "t(1)."

    moved = acme.put("/v1/rulesets/tg/tags/prod", json={"version": 1}).json()
    assert (moved["tag"], moved["version"], moved["previous"], moved["moved_by"]) == (
        "prod",
        1,
        None,
        stack.key_id("acme"),
    )
    promoted = acme.put("/v1/rulesets/tg/tags/prod", json={"version": 2}).json()
    assert promoted["previous"] == 1
    tags = acme.get("/v1/rulesets/tg/tags").json()
    assert tags["tags"] == {"prod": 2}
    assert [m["version"] for m in tags["history"]] == [2, 1]
    assert acme.get("/v1/rulesets/tg/versions/prod").json()["version"] == 2
    problem(acme.put("/v1/rulesets/tg/tags/prod", json={"version": 9}), 404)
    problem(acme.put("/v1/rulesets/tg/tags/Bad%20Tag", json={"version": 1}), 422)

    r = decide(acme, ruleset="tg@prod", query=["t(X)"], wait_ms=5000).json()
    assert r["ruleset"]["version"] == 2 and r["answers"][0]["answers"][0]["atom"] == "t(2)"


# decisions --------------------------------------------------------------------


def test_decision_with_proof_then_cache_hit(acme: httpx.Client) -> None:
    body = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"], "explain": True}
    first = decide(acme, **body, wait_ms=10000)
    assert first.status_code == 200, first.text
    record = first.json()
    assert record["status"] == "succeeded" and record["cached"] is False
    answer = record["answers"][0]["answers"][0]
    assert answer["atom"] == 'decision("ann",approved)'
    assert answer["proof"]["kind"] == "rule"
    assert len(record["result_hash"]) == 64 and record["ruleset"]["name"] == "loan"

    again = decide(acme, **body, wait_ms=0)  # facts in another key order hash the same
    assert again.status_code == 200
    hit = again.json()
    # a cache hit is a decision of its own that repeats the original's result
    assert hit["cached"] is True and hit["cached_from"] == record["decision_id"]
    assert hit["decision_id"] != record["decision_id"] and hit["status"] == "succeeded"
    assert hit["answers"] == record["answers"] and hit["result_hash"] == record["result_hash"]
    assert hit["worker"] is None and hit["completed_at"] >= record["completed_at"]
    assert acme.get(f"/v1/decisions/{hit['decision_id']}").json() == hit
    assert acme.get(f"/v1/decisions/{record['decision_id']}").json()["cached"] is False


def test_accepted_then_polled_and_followed_over_sse(acme: httpx.Client) -> None:
    facts = {"applicant": [["zed"]], "income": [["zed", 100, "salary"]]}
    accepted = decide(acme, ruleset="loan", facts=facts, query=["decision(A, D)"], wait_ms=0)
    assert accepted.status_code == 202
    decision_id = accepted.json()["decision_id"]
    assert accepted.headers["location"] == f"/v1/decisions/{decision_id}"
    stream = events(acme, decision_id)
    assert stream[-1][0] == "done" and stream[-1][1]["status"] == "succeeded"
    assert stream[0][0] == "status"
    polled = acme.get(f"/v1/decisions/{decision_id}").json()
    assert polled["answers"][0]["answers"][0]["atom"] == 'decision("zed",referred)'


def test_limit_error_is_a_failed_decision(acme: httpx.Client) -> None:
    publish(acme, "runaway", SLOW_SOURCE)
    r = decide(acme, ruleset="runaway", limits={"derived_facts": 500}, wait_ms=10000).json()
    assert r["status"] == "failed"
    assert r["error"]["code"] == "limit-derived-facts"


def test_batch(acme: httpx.Client) -> None:
    cases = [{"facts": {"applicant": [[f"p{i}"]], "income": [[f"p{i}", 10 * i, "salary"]]}} for i in range(5)]
    r = acme.post(
        "/v1/decisions/batch",
        json={"ruleset": "loan", "query": ["decision(A, D)"], "cases": cases, "wait_ms": 10000},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["done"] == body["total"] == 5
    assert len({d["decision_id"] for d in body["decisions"]}) == 5
    assert all(d["status"] == "succeeded" for d in body["decisions"])
    too_many = acme.post("/v1/decisions/batch", json={"ruleset": "loan", "cases": [{}] * 21})
    assert "at most 20" in problem(too_many, 413)["detail"]


def test_bad_input_is_precise(acme: httpx.Client) -> None:
    floats = decide(acme, ruleset="loan", facts={"income": [["ann", 2.5, "x"]]})
    assert "/facts/income/0/1" in problem(floats, 422)["detail"]
    query = decide(acme, ruleset="loan", facts={}, query=["decision(A,"])
    assert "/query/0" in problem(query, 422)["detail"]
    missing = acme.post("/v1/decisions", json={"facts": {}})
    assert "/ruleset" in problem(missing, 422)["detail"]
    assert "'nope'" in problem(decide(acme, ruleset="nope"), 404)["detail"]
    limits = decide(acme, ruleset="loan", limits={"derived_facts": -1})
    assert "derived_facts" in problem(limits, 422)["detail"]
    not_json = acme.post("/v1/decisions", content=b"{", headers={"content-type": "application/json"})
    problem(not_json, 422)


def test_body_size_limit(acme: httpx.Client) -> None:
    big = {"ruleset": "loan", "facts": {"applicant": [["x" * 1000]] * 300}}
    assert "limit is 200000" in problem(acme.post("/v1/decisions", json=big), 413)["detail"]


# auth and tenants -------------------------------------------------------------


def test_authentication(stack: LocalStack) -> None:
    with stack.client("") as anon:
        r = anon.get("/v1/rulesets")
        assert "Authorization" in problem(r, 401)["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
        bad = anon.get("/v1/rulesets", headers={"Authorization": "Bearer ent_wrong"})
        assert "unknown" in problem(bad, 401)["detail"]
        basic = anon.get("/v1/rulesets", headers={"Authorization": "Basic abc"})
        problem(basic, 401)


def test_scopes(stack: LocalStack) -> None:
    with stack.client("acme_audit") as audit:
        assert "'decide'" in problem(decide(audit, ruleset="loan"), 403)["detail"]
        problem(publish(audit, "x", "a."), 403)
        assert audit.get("/v1/rulesets").status_code == 200  # audit may read rulesets
    with stack.client("globex") as admin:  # admin holds every scope
        assert publish(admin, "own", "o(1).").status_code == 201


def test_tenants_cannot_see_each_other(acme: httpx.Client, globex: httpx.Client) -> None:
    record = decide(
        acme, ruleset="loan", facts=example_case(), query=["decision(A, D)"], wait_ms=10000
    ).json()
    decision_id = record["decision_id"]
    assert "does not exist" in problem(globex.get(f"/v1/decisions/{decision_id}"), 404)["detail"]
    problem(globex.get(f"/v1/decisions/{decision_id}/events"), 404)
    problem(globex.get("/v1/rulesets/pv"), 404)
    problem(globex.get("/v1/rulesets/loan/versions/1"), 404)
    problem(globex.put("/v1/rulesets/loan/tags/prod", json={"version": 1}), 404)
    # not even by content hash: another tenant's version does not resolve
    problem(decide(globex, ruleset=record["ruleset"]["hash"]), 404)
    names = [r["name"] for r in globex.get("/v1/rulesets").json()["rulesets"]]
    assert "pv" not in names and "loan" not in names


def test_rate_limit(stack: LocalStack) -> None:
    # 16 clients in parallel outrun the refill (50/s) on an idle machine; the bucket holds 200.
    # A loaded machine may serve fewer, so rounds go on until the bucket runs dry or a deadline
    # passes. The cheapest rate-limited request (an unknown ruleset: the limit is taken before
    # the lookup) keeps the service's own cost per request out of the way.
    deadline = time.monotonic() + 60
    responses: list[httpx.Response] = []
    with stack.client("acme_rate") as client, ThreadPoolExecutor(16) as pool:
        while not any(r.status_code == 429 for r in responses) and time.monotonic() < deadline:
            responses += pool.map(lambda _: client.get("/v1/rulesets/no-such-ruleset"), range(200))
        limited = [r for r in responses if r.status_code == 429]
        assert limited, f"never limited in {len(responses)} requests"
        assert all(r.status_code in (404, 429) for r in responses)
        assert all(int(r.headers["ratelimit-limit"]) == 200 for r in responses)
        body = problem(limited[0], 429)
        assert stack.key_id("acme_rate") in body["detail"]
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].headers["ratelimit-remaining"] == "0"
        time.sleep(0.2)  # 50 tokens/s: refilled enough for one request
        assert client.get("/v1/rulesets").status_code == 200


def test_events_of_a_done_decision_end_at_once(acme: httpx.Client) -> None:
    r = decide(acme, ruleset="loan", facts=example_case(), query=["decision(A, D)"], wait_ms=10000).json()
    stream = events(acme, r["decision_id"])
    assert [name for name, _ in stream] == ["status", "done"]


def test_log_has_prefixed_lines(stack: LocalStack) -> None:
    def prefixed() -> bool:
        text = Path(stack.log).read_text()
        return "backend |" in text and "worker  |" in text and "relay   |" in text

    wait_for(prefixed, what="prefixed logs")


@pytest.mark.parametrize("setting", [{"bus": "pubsub", "gcp_project": "p"}, {"audit_store": "bigquery"}])
def test_entail_up_refuses_cloud_settings(tmp_path: Path, setting: dict[str, Any]) -> None:
    from entail_dev.stack import Stack, StackError

    from entail.settings import Settings

    stack = Stack(Settings(data_dir=tmp_path, **setting), out=io.StringIO())
    with pytest.raises(StackError, match="unset ENTAIL_BUS and ENTAIL_AUDIT_STORE"):
        stack.start()
    assert stack.children == []
