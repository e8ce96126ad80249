"""Safety, stratification, arity checks and warnings — every error reported at once."""

from __future__ import annotations

import pytest

from entail import reasoning


def _errors(source: str) -> list[reasoning.Diagnostic]:
    with pytest.raises(reasoning.ProgramError) as info:
        reasoning.compile(source)
    return [d for d in info.value.diagnostics if d.severity == "error"]


def test_unsafe_variables_are_all_reported_with_positions() -> None:
    errors = _errors("p(X, Y) :- q(X).\nr(Z) :- q(X), not s(Z).\n")
    assert [(d.code, d.line, d.column) for d in errors] == [
        ("unsafe-variable", 1, 6),
        ("unsafe-variable", 2, 3),
    ]
    assert "'Y'" in errors[0].message


@pytest.mark.parametrize(
    "source",
    [
        "p(X) :- q(Y), X < Y.",
        "p(Y) :- q(X), Y = Z + 1.",
        "p(N) :- N = #count{ X : q(Y) }.",
        "p(X) :- q(X*X).",
        "p(X) :- q(X+Y), r(Y).",
        "p(_) :- q(1).",
    ],
)
def test_unsafe_variable_cases(source: str) -> None:
    assert {d.code for d in _errors(source)} == {"unsafe-variable"}


def test_assignment_chains_are_safe() -> None:
    rs = reasoning.compile("p(Z) :- q(X), Z = Y * 2, Y = X + 1.")
    assert rs.evaluate({"q": [[1]]}).shown_atoms() == ["p(4)", "q(1)"]


def test_cycle_through_negation_is_named() -> None:
    errors = _errors("a(X) :- b(X), not c(X).\nc(X) :- a(X).\nb(1).\n")
    assert len(errors) == 1
    assert errors[0].code == "unstratifiable"
    assert (errors[0].line, errors[0].column) == (1, 15)
    assert "a/1 -> c/1 -> a/1" in errors[0].message


def test_cycle_through_aggregate_is_refused() -> None:
    errors = _errors("n(C) :- C = #count{ X : n(X) }.")
    assert errors[0].code == "unstratifiable"
    assert "aggregate" in errors[0].message


def test_arity_clash_points_at_the_later_use() -> None:
    errors = _errors("p(1).\nq(X) :- p(X, Y), r(Y).\n")
    assert [(d.code, d.line, d.column) for d in errors] == [("arity-mismatch", 2, 9)]


def test_undefined_predicates_are_warnings() -> None:
    rs = reasoning.compile("p(X) :- input(X), not blocked(X).\n#show nothing/3.\n")
    assert [(w.code, w.line) for w in rs.warnings] == [
        ("undefined-predicate", 1),
        ("undefined-predicate", 1),
        ("undefined-predicate", 2),
    ]
    assert all(w.severity == "warning" for w in rs.warnings)


def test_check_returns_diagnostics_without_raising() -> None:
    diagnostics = reasoning.check("p(X) :- q(Y).")
    assert [d.code for d in diagnostics] == ["unsafe-variable"]


def test_defined_declares_case_fact_predicates() -> None:
    rs = reasoning.compile("#defined input/1.\np(X) :- input(X).\n")
    assert rs.warnings == []
    assert rs.evaluate({"input": [[1]]}).shown_atoms() == ["input(1)", "p(1)"]


def test_constant_against_case_facts_is_flagged() -> None:
    rs = reasoning.compile('#defined event/2.\nbad(A) :- event(A, default).\nok(A) :- event(A, "default").\n')
    assert [(w.code, w.line, w.column) for w in rs.warnings] == [("constant-matches-no-json", 2, 20)]
    result = rs.evaluate({"event": [["ann", "default"]]})
    assert result.shown_atoms() == ['event("ann","default")', 'ok("ann")']
