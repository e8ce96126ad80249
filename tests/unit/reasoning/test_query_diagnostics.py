"""Queries that can never have an answer, and hints when one has none (issue 17):
warnings in the answer's diagnostics, with the column in the query text."""

from __future__ import annotations

from entail import reasoning
from entail.reasoning.query_check import (
    ARITY_MISMATCH,
    CONSTANT_OR_STRING,
    UNKNOWN_PREDICATE,
    query_diagnostics,
)

PROGRAM = """
path(X, Y) :- edge(X, Y).
path(X, Z) :- path(X, Y), edge(Y, Z).
status(ann, approved).
status(bob, "declined").
#defined blocked/1.
"""


def answer(query: str, facts: dict[str, object] | None = None) -> reasoning.QueryResult:
    rs = reasoning.compile(PROGRAM)
    return rs.evaluate(facts or {"edge": [[1, 2], [2, 3]]}, [query]).answers[0]


def test_a_misspelled_predicate_is_named_with_its_column_and_the_closest_one() -> None:
    q = answer("pth(1, X)")
    assert q.answers == []
    [d] = q.diagnostics
    assert (d.code, d.severity, d.line, d.column, d.end_column) == (UNKNOWN_PREDICATE, "warning", 1, 1, 4)
    assert "'pth/2' is neither in the program nor in the case facts" in d.message
    assert d.message.endswith("did you mean 'path/2'?")
    assert d.render().splitlines()[1:] == ["1 | pth(1, X)", "    ^^^"]


def test_columns_are_in_the_query_as_given() -> None:
    # the answer's query is the stripped text; a caller with the text as sent gets its columns
    [d] = query_diagnostics("  pth(1, X)", [("path", 2)])
    assert (d.column, d.end_column) == (3, 6)
    assert d.render().splitlines()[1:] == ["1 |   pth(1, X)", "      ^^^"]


def test_a_known_predicate_with_another_arity_is_a_warning() -> None:
    [d] = answer("path(1)").diagnostics
    assert d.code == ARITY_MISMATCH
    assert "'path' has 2 argument(s), not 1" in d.message
    assert "did you mean 'path/2'?" in d.message


def test_nothing_close_suggests_nothing() -> None:
    [d] = answer("zzzzzz(X)").diagnostics
    assert d.code == UNKNOWN_PREDICATE and "did you mean" not in d.message


def test_predicates_from_the_case_facts_or_declared_are_known() -> None:
    # person/1 is only in the case facts; blocked/1 is #defined and has no facts here
    assert answer("person(X)", {"person": [["ann"]]}).diagnostics == []
    assert answer("blocked(X)").diagnostics == []
    assert answer("path(1, X)").diagnostics == []


def test_a_string_where_the_model_has_a_constant_is_hinted() -> None:
    q = answer('status("ann", S)')
    [d] = q.diagnostics
    assert d.code == CONSTANT_OR_STRING
    assert (d.line, d.column, d.end_column) == (1, 8, 13)
    assert "the model holds status(ann,approved)" in d.message
    assert 'the model has the constant ann where the query has the string "ann"' in d.message
    assert d.message.endswith("write status(ann, S) to match it")


def test_a_constant_where_the_model_has_a_string_is_hinted() -> None:
    [d] = answer("status(bob, declined)").diagnostics
    assert 'the model holds status(bob,"declined")' in d.message
    assert 'write status(bob, "declined") to match it' in d.message


def test_no_hint_when_there_are_answers_or_no_near_miss() -> None:
    assert answer("status(ann, S)").diagnostics == []
    assert answer('status("carl", S)').diagnostics == []
    assert answer("path(7, X)").diagnostics == []  # integers are never confused with strings


def test_a_hint_quotes_at_most_three_atoms() -> None:
    rs = reasoning.compile("p(a, 1). p(a, 2). p(a, 3). p(a, 4).")
    [d] = rs.evaluate(None, ['p("a", N)']).answers[0].diagnostics
    assert "the model holds p(a,1), p(a,2), p(a,3) and 1 more:" in d.message


def test_diagnostics_are_in_the_json_only_when_there_are_some_and_not_in_the_hash() -> None:
    rs = reasoning.compile(PROGRAM)
    facts = {"edge": [[1, 2]]}
    good, bad = rs.evaluate(facts, ["path(1, X)"]), rs.evaluate(facts, ["path(1, X)", "pth(X, Y)"])
    assert "diagnostics" not in good.to_json()["answers"][0]
    out = bad.to_json()["answers"][1]
    assert out["diagnostics"][0]["code"] == UNKNOWN_PREDICATE
    assert out["diagnostics"][0]["column"] == 1
    assert "?- pth(X, Y)   (0 answer(s))\n<query>:1:1: warning[query-unknown-predicate]" in bad.render_text()
    # the hash covers answers, not advice
    assert (
        reasoning.compile(PROGRAM).evaluate(facts, ["pth(X, Y)"]).result_hash
        == rs.evaluate(facts, ["pth(X, Y)"]).result_hash
    )


def test_query_diagnostics_alone() -> None:
    assert query_diagnostics("edge(X, Y)", [("edge", 2)]) == []
    [d] = query_diagnostics("egde(X, Y)", [("edge", 2), ("edge", 3)])
    assert "did you mean 'edge/2'?" in d.message


def test_a_near_miss_needs_the_query_integers_to_hold() -> None:
    """p(a, 3) over p(a, 4): no answers and no hint (the constant is right, the number
    is not). This crashed with an IndexError (found by the differential split mode)."""
    from entail import reasoning

    rs = reasoning.compile('p(a, 4). p("b", 3).')
    (none,) = rs.evaluate({}, ["p(a, 3)"]).answers
    assert none.answers == [] and none.diagnostics == []
    (hinted,) = rs.evaluate({}, ["p(b, 3)"]).answers
    assert [d.code for d in hinted.diagnostics] == ["query-constant-or-string"]
    assert 'write p("b", 3)' in hinted.diagnostics[0].message
