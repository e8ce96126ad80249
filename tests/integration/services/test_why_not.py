"""Why-not through the HTTP API (issue 17 §3): a declined loan asks why it was not
approved and gets, per atom, the rules that could derive it and where each failed;
an atom that holds says so; a bad atom is a precise 422; the answer is cached
under a request hash that includes the atoms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from entail import reasoning

from .stack import LocalStack, decide

LOAN = Path(reasoning.__file__).parent.parent / "examples" / "loan"
DEE = {
    "applicant": [["dee"]],
    "income": [["dee", 2000000, "salary"]],
    "credit_event": [["dee", "default", 2023]],
    "requested": [["dee", 9000000]],
    "employment": [["dee", 8]],
}


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("why-not")
    with s.client("acme") as acme:
        body = {"name": "loan", "source": (LOAN / "program.lp").read_text()}
        published = acme.post("/v1/rulesets", json=body)
        assert published.status_code in (200, 201), published.text
    return s


def succeeded(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "succeeded", record
    return record


def test_why_not_approved_for_a_declined_case(stack: LocalStack) -> None:
    atoms = ['decision("dee",approved)', 'stable_job("dee")', 'decision("dee",declined)']
    with stack.client("acme") as acme:
        body = {"ruleset": "loan", "facts": DEE, "query": ["decision(A, D)"], "explain_absent": atoms}
        record = succeeded(decide(acme, **body, wait_ms=10000))
        assert [a["atom"] for a in record["answers"][0]["answers"]] == ['decision("dee",declined)']
        approved, stable, declined = record["why_not"]
        assert approved["schema"] == "entail.why_not.v1" and approved["holds"] is False
        [rule] = approved["rules"]
        assert rule["rule"]["text"].startswith("decision(A, approved)")
        [failure] = rule["failures"]
        assert failure["kind"] == "negation_holds" and failure["witness"] == 'declined("dee")'
        assert [r["code"] for r in failure["reasons"]] == ["L03", "L04"]  # why declined holds
        [failure] = stable["rules"][0]["failures"]
        assert (failure["kind"], failure["evaluated"]) == ("comparison_false", "8 >= 12")
        assert declined["holds"] is True and "proof" in declined["message"]
        # the same request is the same decision (cached); other atoms are another
        again = succeeded(decide(acme, **body, wait_ms=10000))
        assert again["cached"] is True and again["why_not"] == record["why_not"]
        other = succeeded(decide(acme, **{**body, "explain_absent": atoms[:1]}, wait_ms=10000))
        assert other["cached"] is False and len(other["why_not"]) == 1
        assert other["request_hash"] != record["request_hash"]
        plain = succeeded(decide(acme, ruleset="loan", facts=DEE, query=["decision(A, D)"], wait_ms=10000))
        assert plain.get("why_not") is None


@pytest.mark.parametrize(
    ("atoms", "detail"),
    [
        (
            ["decision(A,approved)"],
            "/explain_absent/0: why-not 'decision(A,approved)': argument A has a variable",
        ),
        (["ok", "decision(dee,"], "/explain_absent/1: why-not 'decision(dee,'"),
    ],
)
def test_a_bad_atom_is_a_precise_422(stack: LocalStack, atoms: list[str], detail: str) -> None:
    with stack.client("acme") as acme:
        response = decide(acme, ruleset="loan", facts=DEE, explain_absent=atoms)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["type"].endswith("invalid-why-not")
        assert problem["detail"].startswith(detail)


def test_too_many_or_too_long_atoms_are_refused(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        response = decide(acme, ruleset="loan", facts=DEE, explain_absent=["ok"] * 21)
        assert response.status_code == 422, response.text
        response = decide(acme, ruleset="loan", facts=DEE, explain_absent=["p(" + "1," * 600 + "1)"])
        assert response.status_code == 422, response.text
