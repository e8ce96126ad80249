"""Typed inputs through the HTTP API (issue 17 §1): a ruleset with ``%@input``
declarations refuses ill-typed case facts with a 422 listing each problem's JSON
pointer, maps JSON strings to constants where declared (the ``bob``/``"bob"``
case answers), publishes the JSON Schema of its decision request, and refuses to
publish a declaration that is wrong."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from .stack import LocalStack, decide

TYPED = """%@input employee(name: const).
%@input points(customer: string, points: int).
reports(bob, ann).
manager(E, M) :- employee(E), reports(E, M).
grade(A, gold) :- points(A, P), P >= 100.
"""
PLAIN = "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("typed-inputs")
    with s.client("acme") as acme:
        for name, source in (("org", TYPED), ("graph", PLAIN)):
            published = acme.post("/v1/rulesets", json={"name": name, "source": source})
            assert published.status_code in (200, 201), published.text
    return s


def invalid_facts(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/invalid-facts")
    return body


def test_a_string_for_a_declared_constant_answers(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        response = decide(
            acme,
            ruleset="org",
            facts={"employee": [["bob"]], "points": [["ann", 120]]},
            query=["manager(E, M)", "grade(A, G)"],
            wait_ms=10000,
        )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["status"] == "succeeded", record
    assert [[a["atom"] for a in q["answers"]] for q in record["answers"]] == [
        ["manager(bob,ann)"],
        ['grade("ann",gold)'],
    ]


def test_ill_typed_facts_are_a_422_with_every_pointer(stack: LocalStack) -> None:
    facts = {"employee": [["Bob"]], "points": [["ann", "120"], ["cy", 7]], "visitor": [["x"]]}
    with stack.client("acme") as acme:
        body = invalid_facts(decide(acme, ruleset="org", facts=facts, query=["grade(A, G)"]))
        assert [e["pointer"] for e in body["errors"]] == [
            "/facts/employee/0/0",
            "/facts/points/0/1",
            "/facts/visitor",
        ]
        assert "argument 2 (points) of 'points' is declared int" in body["errors"][1]["detail"]
        batch = acme.post(
            "/v1/decisions/batch",
            json={
                "ruleset": "org",
                "cases": [{"facts": {}}, {"facts": {"points": [[1, 2]], "employee": [["a", 1]]}}],
            },
        )
        errors = invalid_facts(batch)["errors"]
        assert [e["pointer"] for e in errors] == ["/cases/1/facts/points/0/0", "/cases/1/facts/employee/0"]
        assert "'employee' is declared with 1 argument(s)" in errors[1]["detail"]


def test_the_schema_of_a_typed_version(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        response = acme.get("/v1/rulesets/org/schema")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/schema+json")
        schema = response.json()
        assert acme.get("/v1/rulesets/org/schema", params={"version": "1"}).json() == schema
        assert acme.get("/v1/rulesets/org/schema", params={"version": "9"}).status_code == 404
        assert acme.get("/v1/rulesets/nope/schema").status_code == 404
        assert acme.get("/v1/rulesets/org/schema", params={"tag": "prod"}).status_code == 404
        assert acme.put("/v1/rulesets/org/tags/prod", json={"version": 1}).status_code == 200
        assert acme.get("/v1/rulesets/org/schema", params={"tag": "prod"}).json() == schema
        assert acme.get("/v1/rulesets/org/schema", params={"tag": "prod", "version": "1"}).json() == schema
        assert acme.get("/v1/rulesets/org/schema", params={"tag": "prod", "version": "2"}).status_code == 404
        assert acme.get("/v1/rulesets/org/schema", params={"version": "", "tag": ""}).status_code == 404
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert sorted(schema["properties"]["facts"]["properties"]) == ["employee", "points"]
    assert not list(validator.iter_errors({"facts": {"points": [["ann", 3]]}}))
    assert list(validator.iter_errors({"facts": {"points": [["ann", "3"]]}}))


def test_the_schema_of_an_undeclared_version_follows_its_arities(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        schema = acme.get("/v1/rulesets/graph/schema").json()
        # undeclared programs keep working as today: strings are strings, any predicate
        record = decide(
            acme, ruleset="graph", facts={"edge": [["a", "b"]]}, query=["path(X, Y)"], wait_ms=10000
        )
        assert record.status_code == 200, record.text
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors({"facts": {"edge": [[1, "b"]], "other": [[1]]}}))
    assert list(validator.iter_errors({"facts": {"edge": [[1]]}}))


def test_a_wrong_declaration_is_refused_at_publish_with_its_position(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        response = acme.post(
            "/v1/rulesets",
            json={"name": "bad", "source": "%@input employee(text).\nm(E) :- employee(E)."},
        )
    assert response.status_code == 422, response.text
    [d] = [d for d in response.json()["diagnostics"] if d["severity"] == "error"]
    assert (d["code"], d["line"], d["column"]) == ("input-unknown-type", 1, 18)


def test_the_sdk_reads_the_schema_sync_and_async(stack: LocalStack) -> None:
    import asyncio

    from entail_client import AsyncClient, Client
    from entail_client.errors import EntailError

    key = stack.key("acme")
    with Client(stack.url, api_key=key) as client:
        schema = client.schema("org", version=1)
        assert sorted(schema["properties"]["facts"]["properties"]) == ["employee", "points"]
        with pytest.raises(EntailError) as caught:
            client.schema("org", tag="nope")
        assert caught.value.status == 404

    async def read() -> dict[str, Any]:
        async with AsyncClient(stack.url, api_key=key) as client:
            return await client.schema("org")

    assert asyncio.run(read()) == schema


def test_a_draft_maps_constants_and_refuses_a_declared_type(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        good = acme.post(
            "/v1/rulesets/evaluate",
            json={"source": TYPED, "facts": {"employee": [["bob"]]}, "query": ["manager(E, M)"]},
        )
        assert good.status_code == 200, good.text
        assert [a["atom"] for a in good.json()["answers"][0]["answers"]] == ["manager(bob,ann)"]
        bad = acme.post(
            "/v1/rulesets/evaluate",
            json={"source": TYPED, "facts": {"points": [["ann", "x"]]}, "query": ["grade(A, G)"]},
        )
    body = invalid_facts(bad)
    assert "/points/0/1" in body["detail"] and "declared int" in body["detail"]
