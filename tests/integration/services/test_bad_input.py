"""Bad input gets a 4xx with a precise problem, never a 500: lone surrogates and
NULs anywhere in a body, names that only the registry used to refuse, NUL paths,
chunked bodies over the limit, non-strict booleans and integers, facts that do
not fit the ruleset. Against the real local stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .stack import LocalStack, local_stack

PROBLEM = "application/problem+json"
SOURCE = "ok(X) :- a(X). pair(X, Y) :- b(X, Y). #defined a/1. #defined b/2."
LONE = "\ud800"  # json.dumps writes it as the escape "\ud800": valid JSON, not a character


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("bad-input"), ENTAIL_LIMIT_INPUT_FACTS="50") as s:
        with s.client("acme") as acme:
            assert acme.post("/v1/rulesets", json={"name": "bad", "source": SOURCE}).status_code in (200, 201)
        yield s


def send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """JSON with escapes (ensure_ascii), as a client that sends "\\ud800" would."""
    content = json.dumps(body).encode()
    return client.request(method, path, content=content, headers={"content-type": "application/json"})


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


# every route that takes a body, with a lone surrogate or a NUL in one of its strings:
# (method, path, body with the bad string, the JSON pointer of that string)
def _cases(bad: str) -> list[tuple[str, str, dict[str, Any], str]]:
    facts = {"a": [[bad]]}
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    return [
        ("POST", "/v1/decisions", {"ruleset": "bad", "facts": {"a": [[bad]]}}, "/facts/a/0/0"),
        ("POST", "/v1/decisions", {"ruleset": "bad", "query": [f"ok({bad})"]}, "/query/0"),
        ("POST", "/v1/decisions", {"ruleset": bad}, "/ruleset"),
        ("POST", "/v1/decisions/batch", {"ruleset": "bad", "cases": [{"facts": facts}]}, "/cases/0/facts/a/0/0"),  # noqa: E501
        ("POST", "/v1/rulesets/validate", {"source": f"p({bad})."}, "/source"),
        ("POST", "/v1/rulesets", {"name": "x", "source": f'p("{bad}").'}, "/source"),
        ("POST", "/v1/rulesets", {"name": "x", "source": "p.", "description": bad}, "/description"),
        ("POST", "/v1/rulesets", {"name": "x", "source": "p.", "tests": [{"name": bad}]}, "/tests/0/name"),
        ("POST", "/v1/rulesets/evaluate", {"source": "p.", "facts": {"a": [[bad]]}}, "/facts/a/0/0"),
        ("PUT", "/v1/rulesets/bad/tags/prod", {"version": 1, bad: 1}, f"/{bad}"),
        ("POST", "/v1/rulesets/bad/impact", {"version": bad, **window}, "/version"),
    ]  # fmt: skip


@pytest.mark.parametrize("bad", [LONE, "a\x00b", "\udfff"], ids=["lone-high", "nul", "lone-low"])
def test_surrogates_and_nuls_get_422_with_a_pointer(stack: LocalStack, bad: str) -> None:
    with stack.client("globex") as admin:  # admin: every scope
        for method, path, body, pointer in _cases(bad):
            response = send(admin, method, path, body)
            found = problem(response, 422)
            assert found["type"].endswith("/invalid-text"), (path, found)
            if pointer.startswith("/" + bad):  # a member name: the pointer holds the bad name itself
                assert "member name" in found["detail"]
            else:
                assert found["pointer"] == pointer, (path, found)


def test_a_valid_surrogate_pair_is_a_character(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        response = acme.post(
            "/v1/decisions",
            json={"ruleset": "bad", "facts": {"a": [["😀"]]}, "query": ["ok(X)"], "wait_ms": 10000},
        )
        assert response.status_code == 200, response.text
        assert response.json()["answers"][0]["answers"][0]["atom"] == 'ok("😀")'


def test_a_body_that_is_not_utf8_is_400(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        raw = b'{"ruleset": "bad", "facts": {"a": [["\xed\xa0\x80"]]}}'  # a surrogate encoded as UTF-8
        found = problem(
            acme.post("/v1/decisions", content=raw, headers={"content-type": "application/json"}), 400
        )
        assert found["type"].endswith("/invalid-encoding") and "byte" in found["detail"]


def test_a_hash_shaped_name_is_refused_by_the_request_model(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        response = acme.post("/v1/rulesets", json={"name": "a" * 64, "source": "p."})
        found = problem(response, 422)
        assert "hash" in found["detail"]
        # a name no ruleset can have is simply not found, wherever it appears
        for path in ("/v1/rulesets/" + "a" * 64, "/v1/rulesets/a:b/tags", "/v1/rulesets/-x/versions/1"):
            problem(acme.get(path), 404)


def test_a_nul_in_the_path_or_query_is_400(stack: LocalStack) -> None:
    with stack.client("") as anon:
        for path in ("/%00", "/assets/%00.js", "/v1/rulesets/%00", "/?x=%00"):
            found = problem(anon.get(path), 400)
            assert found["type"].endswith("/invalid-path")


def test_a_chunked_body_over_the_limit_is_413(stack: LocalStack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"ruleset": "bad", "facts": {"a": ['
        for _ in range(30):
            yield b'["' + b"x" * 10_000 + b'"],'
        yield b'["y"]]}}'

    with stack.client("acme") as acme:
        response = acme.post("/v1/decisions", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in response.request.headers  # really chunked
        found = problem(response, 413)
        assert "limit is 200000" in found["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"ruleset": "bad", "explain": 1},
        {"ruleset": "bad", "explain": "true"},
        {"ruleset": "bad", "wait_ms": True},
        {"ruleset": "bad", "wait_ms": "10"},
        {"ruleset": "bad", "wait_ms": 1.5},
        {"ruleset": "bad", "limits": {"wall_time_ms": True}},
    ],
)
def test_strict_booleans_and_integers(stack: LocalStack, body: dict[str, Any]) -> None:
    with stack.client("acme") as acme:
        problem(acme.post("/v1/decisions", json=body), 422)


def test_a_tag_version_of_true_is_not_version_1(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        found = problem(acme.put("/v1/rulesets/bad/tags/prod", json={"version": True}), 422)
        assert "/version" in found["detail"]
        assert acme.put("/v1/rulesets/bad/tags/prod", json={"version": 1}).status_code == 200


def test_facts_are_checked_against_the_ruleset_at_submission(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        empty_row = problem(acme.post("/v1/decisions", json={"ruleset": "bad", "facts": {"a": [[]]}}), 422)
        assert empty_row["type"].endswith("/invalid-facts") and "/facts/a/0" in empty_row["detail"]
        arity = problem(acme.post("/v1/decisions", json={"ruleset": "bad", "facts": {"b": [[1]]}}), 422)
        assert "b/2" in arity["detail"]
        many = {"a": [[i] for i in range(51)]}
        limit = problem(acme.post("/v1/decisions", json={"ruleset": "bad", "facts": many}), 422)
        assert limit["type"].endswith("/limit-input-facts") and limit["limit"] == 50
        batch = {"ruleset": "bad", "cases": [{"facts": {"a": [[1]]}}, {"facts": {"b": [[1]]}}]}
        found = problem(acme.post("/v1/decisions/batch", json=batch), 422)
        assert found["detail"].startswith("/cases/1/facts/b/0")
        # a predicate the ruleset never mentions may have any arity
        fine = acme.post(
            "/v1/decisions", json={"ruleset": "bad", "facts": {"other": [[1, 2, 3]]}, "wait_ms": 10000}
        )
        assert fine.status_code == 200, fine.text
