"""The backend's submission check of queries (entail_backend.query_check): the
422 a decision request gets for a query that can only answer nothing."""

from __future__ import annotations

import pytest
from entail_backend.problems import Problem
from entail_backend.query_check import check_queries

ARITIES = {"path": 2, "edge": 2}


def refused(query: list[str], facts: dict[str, object], where: str = "") -> Problem:
    with pytest.raises(Problem) as info:
        check_queries(query, ARITIES, facts, where)
    return info.value


def test_an_unknown_predicate_is_refused_with_pointer_column_and_suggestion() -> None:
    problem = refused(["path(1, X)", "  pth(1, X)"], {}, "/cases/3")
    assert (problem.status, problem.slug) == (422, "invalid-query")
    assert problem.extra["pointer"] == "/cases/3/query/1"
    assert problem.detail.startswith("/cases/3/query/1: query 'pth(1, X)' at column 3: predicate 'pth/2'")
    [d] = problem.extra["diagnostics"]
    assert (d["code"], d["column"], d["end_column"]) == ("query-unknown-predicate", 3, 6)
    assert d["message"].endswith("did you mean 'path/2'?")
    assert d["rendered"].splitlines()[-1] == "      ^^^"


def test_another_arity_is_refused() -> None:
    assert refused(["edge(X)"], {}).extra["diagnostics"][0]["code"] == "query-arity-mismatch"
    # facts of the query's arity do not make a program predicate's other arity valid:
    # the worker refuses such facts anyway
    assert refused(["person(X, Y)"], {"person": [["ann"]]}).extra["pointer"] == "/query/0"


def test_case_fact_predicates_and_unknown_arities_pass() -> None:
    check_queries(["person(X)"], ARITIES, {"person": [["ann"]]}, "")
    check_queries(["person(X)"], ARITIES, {"person": []}, "")  # named, no rows: any arity
    check_queries(["path(1, X)", "edge(_, _)"], ARITIES, {}, "")


def test_without_the_rulesets_arities_nothing_is_refused() -> None:
    check_queries(["pth(1, X)"], None, {}, "")  # the engine's warning will say it instead
