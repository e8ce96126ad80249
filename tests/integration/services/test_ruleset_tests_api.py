"""A version's example cases run again through the API (issue 19: tests visible
and runnable in the web app): each case with whether it passes and what differs,
run in the compute pool; an unknown version is a 404 problem."""

from __future__ import annotations

import pytest

from .stack import LocalStack

SOURCE = "grade(A, gold) :- points(A, P), P >= 100.\ngrade(A, basic) :- points(A, P), P < 100.\n"
TESTS = [
    {
        "name": "ann is gold",
        "facts": {"points": [["ann", 150]]},
        "query": ["grade(A, G)"],
        "expect": {"grade(A, G)": ['grade("ann",gold)']},
    },
    {"facts": {"points": [["bob", 5]]}, "query": ["grade(A, G)"], "absent": ['grade("bob",gold)']},
]


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("ruleset-tests")
    with s.client("acme") as acme:
        published = acme.post("/v1/rulesets", json={"name": "grades", "source": SOURCE, "tests": TESTS})
        assert published.status_code == 201, published.text
    return s


def test_a_versions_cases_run_again_and_pass(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        ran = acme.post("/v1/rulesets/grades/versions/latest/tests")
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert (body["name"], body["version"], body["passed"], body["failed"]) == ("grades", 1, 2, 0)
    first, second = body["cases"]
    assert first == {
        "name": "ann is gold",
        "query": ["grade(A, G)"],
        "expect": {"grade(A, G)": ['grade("ann",gold)']},
        "absent": [],
        "passed": True,
        "problems": [],
    }
    assert second["name"] == "case 2" and second["absent"] == ['grade("bob",gold)'] and second["passed"]


def test_an_unknown_version_is_a_404_problem(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        missing = acme.post("/v1/rulesets/grades/versions/9/tests")
        other = acme.post("/v1/rulesets/nope/versions/latest/tests")
    for response in (missing, other):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


def test_another_tenant_cannot_run_them(stack: LocalStack) -> None:
    with stack.client("globex") as other:
        assert other.post("/v1/rulesets/grades/versions/1/tests").status_code == 404
