"""POST /v1/decisions without FastAPI's per-request work (fast_decisions.py): a
plain request is answered by the route's own code without solving FastAPI's
dependencies, and answers exactly as the FastAPI route does; anything unusual
(a body that does not parse or validate, another media type, a key without the
scope, an Idempotency-Key) goes to the FastAPI route and gets its answer."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import httpx
import pytest
from entail_backend.metrics import REQUESTS

from entail.settings import Settings

from .served import FACTS, READER, SOURCE, backend, configured

# headers every decision answer has, whichever path served it (values vary: ids, counts)
SHAPE = ("content-type", "content-length", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
         "x-request-id", "x-content-type-options", "cache-control")  # fmt: skip


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose FastAPI dependencies were solved (FastAPI's route handler ran)."""
    paths: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*, request: Any, **kwargs: Any) -> Any:
        paths.append(request.url.path)
        return await original(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return paths


def shape(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    volatile = {"decision_id", "submitted_at", "started_at", "completed_at", "request_id", "instance"}
    return {
        "status": response.status_code,
        "headers": sorted(h for h in response.headers if h in SHAPE or h == "location"),
        "type": response.headers["content-type"],
        "body": {k: v for k, v in body.items() if k not in volatile},
    }


async def test_a_plain_decision_skips_fastapi_and_answers_as_the_route_does(
    settings: Settings, solved: list[str]
) -> None:
    async with backend(configured(settings)) as (services, http):
        await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        body = {"ruleset": "loan", "facts": FACTS, "query": ["decision(A, D)"]}
        before = REQUESTS.labels("POST", "/v1/decisions", "202")._value.get()
        fast = await http.post("/v1/decisions", json=body)
        assert fast.status_code == 202, fast.text
        assert solved == []  # no FastAPI dependency solving for it
        # counted under its route, as the router would have labelled it
        assert REQUESTS.labels("POST", "/v1/decisions", "202")._value.get() == before + 1
        assert fast.headers["location"] == f"/v1/decisions/{fast.json()['decision_id']}"

        # the same request through FastAPI's route (an Idempotency-Key sends it there)
        other = {**body, "facts": {"applicant": [["bob"]], "income": [["bob", 5200000]]}}
        routed = await http.post("/v1/decisions", json=other, headers={"Idempotency-Key": "k-1"})
        assert solved == ["/v1/decisions"]
        fast_other = await http.post("/v1/decisions", json={**other, "facts": {"applicant": [["cy"]]}})
        assert shape(routed)["headers"] == shape(fast_other)["headers"]
        assert shape(routed)["status"] == shape(fast_other)["status"] == 202


@pytest.mark.parametrize(
    ("content", "content_type", "status", "pointer"),
    [
        (b'{"ruleset": "loan", "facts": {}, "query": "not a list"}', "application/json", 422, "/query"),
        (b'{"ruleset": "loan", "wait_ms": -1}', "application/json", 422, "/wait_ms"),
        (b'{"ruleset": "loan", "surprise": 1}', "application/json", 422, "/surprise"),
        (b'{"ruleset": "loan",', "application/json", 422, None),
        (b"[1, 2]", "application/json", 422, None),
        (b'{"ruleset": "loan"}', "text/plain", 422, None),
        # nested past the parser's recursion limit: RecursionError, not ValueError
        (
            b'{"ruleset": "loan", "facts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "application/json",
            400,
            None,
        ),
    ],
)
async def test_a_body_the_model_refuses_gets_fastapis_own_answer(
    settings: Settings, solved: list[str], content: bytes, content_type: str, status: int, pointer: str | None
) -> None:
    async with backend(configured(settings)) as (services, http):
        await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        answer = await http.post("/v1/decisions", content=content, headers={"Content-Type": content_type})
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["type"].endswith("/bad-request" if status == 400 else "/invalid-request"), problem
        if pointer is not None:
            assert pointer in [e["location"] for e in problem["errors"]], problem
        if content.endswith(b","):  # FastAPI's JSON error comes before any dependency (and token)
            assert solved == [] and "ratelimit-limit" not in answer.headers
            assert "JSON decode error" in problem["detail"]
        elif status == 400:  # so does its "could not parse" for any other parser error
            assert solved == [] and "ratelimit-limit" not in answer.headers
            assert problem["detail"] == "There was an error parsing the body"
        else:
            assert solved == ["/v1/decisions"]  # the FastAPI route answered it
            assert answer.headers["ratelimit-limit"]  # its token was taken, as before


async def test_problems_of_the_route_are_the_same_on_both_paths(
    settings: Settings, solved: list[str]
) -> None:
    async with backend(configured(settings)) as (services, http):
        await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        cases = [
            ({"ruleset": "nope", "facts": FACTS}, 404, "/not-found"),
            ({"ruleset": "loan", "facts": {"applicant": "ann"}}, 422, "/invalid-facts"),
            ({"ruleset": "loan", "facts": FACTS, "query": ["decision(A"]}, 422, "/invalid-query"),
            ({"ruleset": "loan", "facts": FACTS, "limits": {"bogus": 1}}, 422, "/invalid-limits"),
        ]
        for i, (body, status, slug) in enumerate(cases):
            fast = await http.post("/v1/decisions", json=body)
            routed = await http.post("/v1/decisions", json=body, headers={"Idempotency-Key": f"p-{i}"})
            for answer in (fast, routed):
                assert answer.status_code == status, answer.text
                assert answer.json()["type"].endswith(slug), answer.text
            assert shape(fast) == shape(routed)
        assert solved == ["/v1/decisions"] * len(cases)  # only the keyed ones


async def test_a_key_without_the_scope_is_refused_by_the_route(settings: Settings, solved: list[str]) -> None:
    async with backend(configured(settings)) as (services, http):
        await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        answer = await http.post(
            "/v1/decisions",
            json={"ruleset": "loan", "facts": FACTS},
            headers={"Authorization": f"Bearer {READER}"},
        )
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"].endswith("/forbidden")
        assert solved == ["/v1/decisions"]
        anonymous = await http.post("/v1/decisions", json={"ruleset": "loan"}, headers={"Authorization": ""})
        assert anonymous.status_code == 401  # the guard's, before any route
