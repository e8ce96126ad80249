"""Minimal cases the grown differential generator found against the SQL path; each compares
the DuckDB model of every predicate with clingo's answer set."""

from __future__ import annotations

from typing import Any

import pytest
from differential.clingo_ref import clingo_all_atoms

from entail import reasoning

from .harness import atoms, sql_model

CASES: dict[str, tuple[str, dict[str, list[list[Any]]]]] = {
    # DuckDB types small literals INTEGER: 2147483647 + 1 raised OutOfRangeException instead of wrapping
    "ground_edge_expressions_wrap": (
        "p(X) :- X = 2147483647 + 1.\n"
        "p(X) :- X = -2147483648 - 1.\n"
        "p(X) :- X = 2147483647 * 2.\n"
        "p(X) :- X = -(-2147483648).\n"
        "p(X) :- X = -(-2147483648) / 8.\n"
        "p(X) :- X = -2147483648 / 2147483647.\n"
        "p(X) :- X = (2147483647 + 1) \\ 7.\n"
        "p(X) :- X = -(2147483647) - 1.\n",
        {},
    ),
    "edge_expression_in_a_body_with_facts": (
        "q(Y) :- e(Y), U = 2147483647 + 1, Y < U + 5.\n",
        {"e": [[1], [-2147483648], [2147483647]]},
    ),
    "inversion_by_an_edge_literal": (
        "r(X) :- e(X - 2147483647).\ns(X) :- e(Y), X = Y * 2147483647, X > 0.\n",
        {"e": [[1], [-2147483648], [2147483647], [0]]},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sql_path_agrees_with_clingo(name: str) -> None:
    source, facts = CASES[name]
    rs = reasoning.compile(source)
    names = {n for n, _ in rs.analysis.signatures}
    expected = [a for a in clingo_all_atoms(source, facts) if a.split("(")[0] in names]
    assert expected, "a case must derive something"
    for cte in (True, False):
        model, _ = sql_model(source, facts, all_predicates=True, recursive_cte=cte)
        assert atoms(model) == expected
