"""Silent empty answers, said out loud (issue 17) through the HTTP API: a query
that can never be answered is a 422 with the column and the closest predicate;
the answers of a decision carry the engine's warnings (case facts whose kinds
make a rule never fire, a constant-vs-string near miss); a draft evaluated in
the playground gets the same warnings instead of a 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .stack import LocalStack, decide

SOURCE = """reports(bob, ann).
manager(E, M) :- employee(E), reports(E, M).
grade(A, gold) :- points(A, P), P >= 100.
"""


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("query-diagnostics")
    with s.client("acme") as acme:
        published = acme.post("/v1/rulesets", json={"name": "org", "source": SOURCE})
        assert published.status_code in (200, 201), published.text
    return s


def invalid_query(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/invalid-query")
    return body


def done(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "succeeded", record
    return record


def test_a_misspelled_predicate_is_a_422_with_the_column_and_a_suggestion(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        body = invalid_query(decide(acme, ruleset="org", facts={}, query=["manager(E, M)", " mangaer(E, M)"]))
    assert body["pointer"] == "/query/1"
    assert "did you mean 'manager/2'?" in body["detail"]
    [d] = body["diagnostics"]
    assert (d["code"], d["line"], d["column"], d["end_column"]) == ("query-unknown-predicate", 1, 2, 9)
    assert d["rendered"].endswith("1 |  mangaer(E, M)\n     ^^^^^^^")


def test_a_wrong_arity_is_a_422_and_a_batch_names_the_case(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        body = invalid_query(decide(acme, ruleset="org", query=["manager(E)"]))
        assert body["diagnostics"][0]["code"] == "query-arity-mismatch"
        assert "'manager' has 2 argument(s), not 1" in body["detail"]
        batch = acme.post(
            "/v1/decisions/batch",
            json={"ruleset": "org", "cases": [{"facts": {}}, {"facts": {}, "query": ["grade(A)"]}]},
        )
        assert invalid_query(batch)["pointer"] == "/cases/1/query/0"


def test_a_predicate_only_the_case_facts_hold_is_a_fine_query(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        record = done(
            decide(acme, ruleset="org", facts={"visitor": [["ann"]]}, query=["visitor(V)"], wait_ms=10000)
        )
        assert [a["atom"] for a in record["answers"][0]["answers"]] == ['visitor("ann")']
        assert "diagnostics" not in record["answers"][0]
        # named with no rows: any arity may come, nothing to refuse
        done(decide(acme, ruleset="org", facts={"visitor": []}, query=["visitor(V)"], wait_ms=10000))


def test_strings_where_the_program_has_constants_are_in_the_answer(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        record = done(
            decide(
                acme,
                ruleset="org",
                facts={"employee": [["bob"]], "points": [["ann", 120]]},
                query=["manager(E, M)", 'grade(A, "gold")'],
                wait_ms=10000,
            )
        )
    managers, grades = record["answers"]
    assert managers["answers"] == []
    [clash] = managers["diagnostics"]
    assert (clash["code"], clash["line"], clash["column"]) == ("type-clash", 2, 39)
    assert (
        "employee/1 argument 1 (only strings) with reports/2 argument 1 (only constants)" in clash["message"]
    )
    assert grades["answers"] == []
    [hint] = grades["diagnostics"]
    assert hint["code"] == "query-constant-or-string"
    assert 'the model holds grade("ann",gold)' in hint["message"]
    assert "write grade(A, gold) to match it" in hint["message"]


def test_a_draft_gets_warnings_not_a_422(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        response = acme.post(
            "/v1/rulesets/evaluate", json={"source": SOURCE, "facts": {}, "query": ["mangaer(E, M)"]}
        )
    assert response.status_code == 200, response.text
    [answered] = response.json()["answers"]
    assert answered["diagnostics"][0]["code"] == "query-unknown-predicate"
    assert "did you mean 'manager/2'?" in answered["diagnostics"][0]["message"]
