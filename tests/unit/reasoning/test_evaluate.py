"""Evaluation: semantics corner cases, reuse, limits, facts and queries."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from entail import reasoning

TC = "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n#show path/2.\n"


def test_one_plan_many_fact_sets_without_leaking_state() -> None:
    rs = reasoning.compile(TC)
    first = rs.evaluate({"edge": [[1, 2], [2, 3]]})
    second = rs.evaluate({"edge": [[5, 6]]})
    again = rs.evaluate({"edge": [[1, 2], [2, 3]]})
    assert first.shown_atoms() == ["path(1,2)", "path(1,3)", "path(2,3)"]
    assert second.shown_atoms() == ["path(5,6)"]
    assert again.result_hash == first.result_hash


def test_concurrent_evaluations_share_one_ruleset() -> None:
    rs = reasoning.compile(TC)
    results: dict[int, list[str]] = {}

    def run(n: int) -> None:
        edges = [[i, i + 1] for i in range(n)]
        results[n] = rs.evaluate({"edge": edges}).shown_atoms()

    threads = [threading.Thread(target=run, args=(n,)) for n in (20, 30, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {n: len(v) for n, v in results.items()} == {20: 210, 30: 465, 40: 820}


def test_integer_semantics_follow_clingo() -> None:
    src = "d(A, B, A / B) :- n(A), n(B).\nm(A, B, A \\ B) :- n(A), n(B).\nw(X * X) :- big(X).\n"
    result = reasoning.compile(src).evaluate({"n": [[-7], [2], [0]], "big": [[100000]]})
    atoms = set(result.shown_atoms())
    assert {"d(-7,2,-3)", "m(-7,2,-1)", "d(2,-7,0)", "m(2,-7,2)", "w(1410065408)"} <= atoms
    assert not any(a.startswith(("d(-7,0", "m(2,0")) for a in atoms)


def test_term_order_integers_constants_strings() -> None:
    src = 'lt(X, Y) :- t(X), t(Y), X < Y.\nt(1). t(a). t("a").\n#show lt/2.'
    assert reasoning.compile(src).evaluate().shown_atoms() == ["lt(1,a)", 'lt(1,"a")', 'lt(a,"a")']


def test_empty_min_and_max_are_sup_and_inf() -> None:
    src = "lo(M) :- M = #min{ X : z(X) }.\nhi(M) :- M = #max{ X : z(X) }.\n"
    assert reasoning.compile(src).evaluate().shown_atoms() == ["hi(#inf)", "lo(#sup)"]


def test_infinite_program_stops_at_the_derived_facts_limit() -> None:
    rs = reasoning.compile("n(0).\nn(X + 1) :- n(X).\n")
    with pytest.raises(reasoning.DerivedFactsLimitExceeded) as info:
        rs.evaluate(limits=reasoning.Limits(derived_facts=10_000))
    assert info.value.code == "limit-derived-facts"
    assert info.value.limit == 10_000
    assert info.value.value > 10_000
    assert "derived facts limit exceeded" in str(info.value)


def test_wall_time_is_checked_inside_one_round() -> None:
    # one round of a cross product: the check must fire inside the generated loops
    rs = reasoning.compile("pair(X, Y, Z) :- n(X), n(Y), n(Z).")
    facts = {"n": [[i] for i in range(400)]}
    with pytest.raises(reasoning.WallTimeLimitExceeded) as info:
        rs.evaluate(facts, limits=reasoning.Limits(wall_time_ms=50, derived_facts=10**9))
    assert info.value.code == "limit-wall-time"
    assert info.value.value >= 50


def test_input_and_program_size_limits() -> None:
    rs = reasoning.compile("p(X) :- q(X).")
    with pytest.raises(reasoning.InputFactsLimitExceeded):
        rs.evaluate({"q": [[i] for i in range(11)]}, limits=reasoning.Limits(input_facts=10))
    with pytest.raises(reasoning.ProgramSizeLimitExceeded) as info:
        reasoning.compile("p(1).\n" * 100, limits=reasoning.Limits(program_bytes=100))
    assert info.value.value == 600


@pytest.mark.parametrize(
    ("facts", "pointer", "fragment"),
    [
        ({"q": [[1.5]]}, "/q/0/0", "not an integer"),
        ({"q": [[True]]}, "/q/0/0", "boolean true"),
        ({"q": [[[1]]]}, "/q/0/0", "nested list"),
        ({"q": [[{"a": 1}]]}, "/q/0/0", "an object"),
        ({"q": [[1, 2]]}, "/q/0", "program uses 'q/1'"),
        ({"r": [[1], [1, 2]]}, "/r/1", "1 in its first fact"),
        ({"q": [1]}, "/q/0", "list of arguments"),
        ({"q": [[2**31]]}, "/q/0/0", "32 bits"),
        ({"Q": [[1]]}, "/Q", "not a predicate name"),
    ],
)
def test_bad_facts_are_refused_precisely(facts: object, pointer: str, fragment: str) -> None:
    rs = reasoning.compile("p(X) :- q(X).")
    with pytest.raises(reasoning.FactsError) as info:
        rs.evaluate(facts)  # type: ignore[arg-type]
    assert info.value.code == "invalid-facts"
    assert info.value.path == pointer
    assert fragment in str(info.value)


def test_facts_from_lp_files(tmp_path: Path) -> None:
    facts = reasoning.parse_facts_lp('edge(1, 2). edge(2, "x"). flag.\n')
    result = reasoning.compile(TC).evaluate(facts, ["edge(A, B)", "flag"])
    assert [a.atom for a in result.answers[0].answers] == ["edge(1,2)", 'edge(2,"x")']
    assert [a.atom for a in result.answers[1].answers] == ["flag"]
    with pytest.raises(reasoning.ProgramError) as info:
        reasoning.parse_facts_lp("edge(X, 2).")
    assert info.value.diagnostics[0].code == "invalid-facts"


def test_queries_bind_variables_and_respect_constants() -> None:
    rs = reasoning.compile("r(1, 1, a). r(1, 2, b). r(2, 2, a).")
    result = rs.evaluate(queries=["r(X, X, K)", "r(_, _, a)", "missing(X)"])
    first, second, third = result.answers
    assert [(a.atom, a.bindings) for a in first.answers] == [
        ("r(1,1,a)", {"X": 1, "K": reasoning.Const("a")}),
        ("r(2,2,a)", {"X": 2, "K": reasoning.Const("a")}),
    ]
    assert len(second.answers) == 2
    assert third.answers == []
    assert first.answers[0].to_json()["bindings"] == {"X": 1, "K": {"const": "a"}}


def test_bad_query_is_a_named_error() -> None:
    rs = reasoning.compile("p(1).")
    with pytest.raises(reasoning.QueryError) as info:
        rs.evaluate(queries=["p(X"])
    assert info.value.code == "invalid-query"
    with pytest.raises(reasoning.QueryError):
        rs.evaluate(queries=["p(X + 1)"])


def test_result_hash_depends_on_answers_only() -> None:
    rs = reasoning.compile(TC)
    a = rs.evaluate({"edge": [[1, 2]]}, ["path(X, Y)"])
    b = rs.evaluate({"edge": [[1, 2]]}, ["path(X, Y)"], explain=True)
    c = rs.evaluate({"edge": [[1, 3]]}, ["path(X, Y)"])
    assert a.result_hash == b.result_hash != c.result_hash


def test_show_selects_output_and_bare_show_hides_everything() -> None:
    assert reasoning.compile("p(1). q(2). #show q/1.").evaluate().shown_atoms() == ["q(2)"]
    assert reasoning.compile("p(1). #show.").evaluate().shown_atoms() == []
    assert reasoning.compile("p(1).").evaluate({"extra": [["x"]]}).shown_atoms() == [
        'extra("x")',
        "p(1)",
    ]


def test_rules_deeper_than_python_nesting_limits() -> None:
    # 40 joins and 40 assignments: more nested blocks than CPython allows in one function
    n = 40
    joins = ", ".join(f"p{i}(X{i}, X{i + 1})" for i in range(n))
    sums = ", ".join(f"Y{i} = X{i} + {i}" for i in range(n))
    facts = "".join(f"p{i}({i}, {i + 1}). p{i}({i}, {i + 2}).\n" for i in range(n))
    rs = reasoning.compile(f"r(X0, X{n}, Y{n - 1}) :- {joins}, {sums}.\n{facts}")
    result = rs.evaluate(queries=["r(A, B, C)"], explain=True)
    answers = result.answers[0].answers
    # only p39 may take its second edge; Y39 = X39 + 39
    assert [a.atom for a in answers] == ["r(0,40,78)", "r(0,41,78)"]
    assert answers[0].proof is not None
    assert len(answers[0].proof["body"]) == 2 * n
