"""Reason codes people can act on (issue 17 §2) through the HTTP API: a declined
loan returns its principal reasons in weight order, in English and, asked with
``locale``, in German; a bad template is refused at publish with its line and
column; a bad locale is a precise 422."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from entail import reasoning

from .stack import LocalStack, decide

LOAN = Path(reasoning.__file__).parent.parent / "examples" / "loan"
EVE = {
    "applicant": [["eve"]],
    "income": [["eve", 100000, "salary"]],
    "debt": [["eve", 90000, "car"]],
    "requested": [["eve", 1000000]],
    "credit_event": [["eve", "default", 2024]],
    "employment": [["eve", 60]],
}


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("reasons")
    with s.client("acme") as acme:
        tests = yaml.safe_load((LOAN / "tests.yaml").read_text())["cases"]
        for case in tests:  # published tests carry their facts inline
            if "facts_file" in case:
                case["facts"] = yaml.safe_load((LOAN / case.pop("facts_file")).read_text())
        body = {"name": "loan", "source": (LOAN / "program.lp").read_text(), "tests": tests}
        published = acme.post("/v1/rulesets", json=body)
        assert published.status_code in (200, 201), published.text
    return s


def succeeded(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "succeeded", record
    return record


def reasons_of(record: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    [answer] = record["answers"][0]["answers"]
    assert answer["atom"] == 'decision("eve",declined)'
    return [(r["code"], r["severity"], r["weight"], r["message"]) for r in answer["reasons"]]


def test_a_declined_case_returns_its_reasons_in_weight_order_in_two_languages(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        english = succeeded(decide(acme, ruleset="loan", facts=EVE, query=["decision(A, D)"], wait_ms=10000))
        assert reasons_of(english) == [
            ("L03", "adverse", 90, "A loan default was recorded in 2024"),
            ("L02", "adverse", 70, "Debt-to-income ratio is 90%, above the 40% limit"),
            ("L04", "adverse", 60, "The requested amount is more than four times the income"),
        ]
        german = succeeded(
            decide(acme, ruleset="loan", facts=EVE, query=["decision(A, D)"], locale="de-DE", wait_ms=10000)
        )
        # the locale is part of the cache key: not the English decision served again
        assert german["decision_id"] != english["decision_id"] and not german["cached"]
        assert german["request_hash"] != english["request_hash"]
        assert [(c, m) for c, _, _, m in reasons_of(german)] == [
            ("L03", "Ein Kreditausfall wurde 2024 verzeichnet"),
            ("L02", "Die Schuldenquote beträgt 90% und liegt über der Grenze von 40%"),
            ("L04", "Der beantragte Betrag übersteigt das Vierfache des Einkommens"),
        ]
        # with proofs: the same reasons next to the proof
        explained = succeeded(
            decide(acme, ruleset="loan", facts=EVE, query=["decision(A, D)"], explain=True, wait_ms=10000)
        )
        assert reasons_of(explained) == reasons_of(english)
        assert explained["answers"][0]["answers"][0]["proof"]["kind"] == "rule"


def test_a_bad_locale_is_a_precise_422(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        for locale in ("de_DE", "x" * 40, "", 7):
            response = decide(acme, ruleset="loan", facts=EVE, locale=locale)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "/locale" in response.json()["detail"], response.text


def test_a_bad_template_is_refused_at_publish_with_line_and_column(stack: LocalStack) -> None:
    source = 'q(1).\n%@reason code=R1 weight=5 "{Amount} is too much"\np(X) :- q(X).\n'
    with stack.client("acme") as acme:
        response = acme.post("/v1/rulesets", json={"name": "bad-reasons", "source": source})
        assert response.status_code == 422, response.text
        [d] = response.json()["diagnostics"]
        assert (d["code"], d["line"], d["column"]) == ("reason-unknown-variable", 2, 29)
        assert "its variables: X" in d["message"]
        checked = acme.post("/v1/rulesets/validate", json={"source": source}).json()
        assert checked["ok"] is False and checked["diagnostics"][0]["code"] == "reason-unknown-variable"


def test_a_draft_evaluated_in_the_playground_has_reasons_in_the_locale(stack: LocalStack) -> None:
    body = {"source": (LOAN / "program.lp").read_text(), "facts": EVE, "query": ["decision(A, D)"]}
    with stack.client("acme") as acme:
        response = acme.post("/v1/rulesets/evaluate", json={**body, "locale": "de"})
        assert response.status_code == 200, response.text
        assert reasons_of(response.json())[0] == (
            "L03",
            "adverse",
            90,
            "Ein Kreditausfall wurde 2024 verzeichnet",
        )
        bad = acme.post("/v1/rulesets/evaluate", json={**body, "locale": "deutsch!"})
        assert bad.status_code == 422 and "/locale" in bad.json()["detail"]


def test_a_draft_explains_why_an_atom_does_not_hold_for_the_playground(stack: LocalStack) -> None:
    body = {"source": (LOAN / "program.lp").read_text(), "facts": EVE, "query": ["decision(A, approved)"]}
    with stack.client("acme") as acme:
        response = acme.post(
            "/v1/rulesets/evaluate", json={**body, "explain_absent": ['decision("eve",approved)']}
        )
        assert response.status_code == 200, response.text
        (why,) = response.json()["why_not"]
        assert why["atom"] == 'decision("eve",approved)' and why["holds"] is False
        (attempt,) = why["rules"]
        assert attempt["rule"]["text"].startswith("decision(A, approved) :-")
        assert attempt["failures"][0]["kind"] == "negation_holds"
        assert "why_not" not in acme.post("/v1/rulesets/evaluate", json=body).json()
        bad = acme.post("/v1/rulesets/evaluate", json={**body, "explain_absent": ["decision(A, approved)"]})
        assert bad.status_code == 422, bad.text
        assert bad.json()["type"].endswith("invalid-why-not") and "/explain_absent/0" in bad.json()["detail"]
