"""The decision routes parse a case's facts and queries once (issue 15): the shape
check's decoded facts carry on to the check against the ruleset, and a query's
signature is parsed once per text. Every answer must be the one the full checks
give: compared here, case by case, on valid and invalid input."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from entail_backend import query_check
from entail_backend.facts_check import check_facts
from entail_backend.problems import Problem
from entail_backend.query_check import check_queries, query_signature

from entail import reasoning

ARITIES = {"applicant": 1, "income": 2, "decision": 2}

CASES: list[dict[str, Any]] = [
    {"applicant": [["ann"]], "income": [["ann", 5]]},
    {"applicant": [["ann"], ["bob"]], "income": [["ann", 5], ["ann", 5]]},  # a repeated row counts once
    {"applicant": [["ann", 1]]},  # the program's arity differs
    {"other": [[1]], "income": [["ann"]]},  # the second predicate's arity
    {"applicant": [], "income": [["a", 1], ["b", 2], ["c", 3]]},  # empty rows: no arity
    {"x": [[1], [2], [3]], "income": [["a"]]},  # the limit before the arity, or not
    {"income": [["a"]], "x": [[1], [2], [3]]},
    {"x": [[i] for i in range(6)]},
]


def outcome(call: Any) -> tuple[Any, ...]:
    try:
        call()
    except Problem as exc:
        return (exc.status, exc.slug, exc.detail, exc.extra)
    return ("ok",)


@pytest.mark.parametrize("facts", CASES)
@pytest.mark.parametrize("arities", [ARITIES, None, {}])
@pytest.mark.parametrize("input_facts", [1, 2, 3, 4, 1000])
def test_checking_decoded_facts_answers_as_checking_them_again(
    facts: dict[str, Any], arities: dict[str, int] | None, input_facts: int
) -> None:
    limits = reasoning.Limits(input_facts=input_facts).to_json()
    decoded = reasoning.facts_from_json(facts)
    again = outcome(lambda: check_facts(facts, arities, limits, "/cases/2"))
    once = outcome(lambda: check_facts(facts, arities, limits, "/cases/2", None, decoded))
    assert once == again


def test_the_limit_is_reported_with_the_count_it_was_passed_at() -> None:
    facts = {"x": [[i] for i in range(6)]}
    limits = reasoning.Limits(input_facts=4).to_json()
    found = outcome(lambda: check_facts(facts, None, limits, "", None, reasoning.facts_from_json(facts)))
    assert found[0] == 422 and found[3] == {"limit": 4, "value": 5}


QUERIES = ["decision(A, D)", " decision(A,D) ", "decision(A)", "nope(X)", "income(ann, I)", "applicant(A)"]


@pytest.mark.parametrize("facts", [{}, {"nope": [[1]]}, {"nope": []}, {"applicant": [["a", 1]]}])
def test_a_remembered_signature_answers_as_parsing_the_query_again(facts: dict[str, Any]) -> None:
    for queries in itertools.permutations(QUERIES, 2):
        query_check._SIGNATURES.clear()
        cold = outcome(lambda q=list(queries): check_queries(q, ARITIES, facts, ""))
        warm = outcome(lambda q=list(queries): check_queries(q, ARITIES, facts, ""))
        assert cold == warm
        assert query_check._SIGNATURES  # parsed once, kept


def test_query_signature_parses_once_and_raises_as_the_parser() -> None:
    query_check._SIGNATURES.clear()
    assert query_signature(" income(ann, I) ") == ("income", 2)
    assert query_check._SIGNATURES == {" income(ann, I) ": ("income", 2)}
    with pytest.raises(reasoning.EntailError) as raised:
        query_signature("income(ann,")
    with pytest.raises(reasoning.EntailError) as expected:
        reasoning.parse_query("income(ann,")
    assert str(raised.value) == str(expected.value)
    assert "income(ann," not in query_check._SIGNATURES
    long = "p(" + ", ".join(["X"] * 600) + ")"
    assert query_signature(long) == ("p", 600) and long not in query_check._SIGNATURES
