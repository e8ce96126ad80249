"""Static type inference without declarations (issue 17): the kinds each argument
holds, joins and comparisons that can never match, statically and with the
case facts of an evaluation."""

from __future__ import annotations

from entail import reasoning
from entail.reasoning.facts import parse_facts_lp
from entail.reasoning.type_infer import ANY, CONST, INT, STR, TYPE_CLASH, infer


def kinds(source: str) -> dict[tuple[str, int], list[int]]:
    rs = reasoning.compile(source)
    return infer(rs.program, rs.analysis.strata, rs.analysis.defined)


def clashes(warnings: list[reasoning.Diagnostic]) -> list[reasoning.Diagnostic]:
    return [w for w in warnings if w.code == TYPE_CLASH]


def test_kinds_flow_from_facts_heads_arithmetic_and_aggregates() -> None:
    found = kinds(
        """
        p(1, a). p(2, "b").
        q(X + 1, Y) :- p(X, Y).
        n(N) :- N = #count{ X : p(X, _) }.
        m(M) :- M = #max{ X : p(X, _) }.
        r(Y) :- in(Y).
        """
    )
    assert found[("p", 2)] == [INT, CONST | STR]
    assert found[("q", 2)] == [INT, CONST | STR]
    assert found[("n", 1)] == [INT]
    assert found[("m", 1)] == [ANY]  # #max of nothing is #inf, a constant
    assert found[("in", 1)] == [ANY]  # only the case facts supply it
    assert found[("r", 1)] == [ANY]


def test_recursion_reaches_a_fixpoint() -> None:
    found = kinds("e(1, 2). e(2, a). p(X, Y) :- e(X, Y). p(X, Z) :- p(X, Y), e(Y, Z).")
    assert found[("p", 2)] == [INT, INT | CONST]


def test_a_join_the_program_alone_makes_impossible_is_a_warning() -> None:
    source = 'p(1). q(a). ok(X) :- p(X), q(X).\nfine(X) :- p(X), s(X).\ns(2). s("x").'
    [w] = clashes(reasoning.check(source))
    assert (w.severity, w.line, w.column) == ("warning", 1, 30)
    assert (
        "variable 'X' joins p/1 argument 1 (only integers) with q/1 argument 1 (only constants)" in w.message
    )
    assert w.notes == ("in rule: ok(X) :- p(X), q(X).",)
    assert clashes(reasoning.compile(source).warnings) == [w]


def test_a_comparison_that_is_never_true_is_a_warning() -> None:
    [w] = clashes(reasoning.check('status(ann, approved).\nok(A) :- status(A, S), S = "approved".'))
    assert (w.line, w.column) == (2, 24)
    assert "compares only constants with only strings: it is never true" in w.message


def test_open_predicates_warn_of_nothing_statically() -> None:
    assert clashes(reasoning.check("reports(bob, ann).\nboss(E, M) :- employee(E), reports(E, M).")) == []


def test_case_facts_of_another_kind_at_a_joined_position_are_reported_with_the_query() -> None:
    rs = reasoning.compile(
        "reports(bob, ann).\nmanager(E, M) :- employee(E), reports(E, M).\nstaff(E) :- employee(E).\n"
    )
    result = rs.evaluate({"employee": [["bob"]]}, ["manager(E, M)", "staff(E)"])
    managers, staff = result.answers
    [d] = managers.diagnostics
    assert (d.code, d.line, d.column) == (TYPE_CLASH, 2, 39)
    assert "employee/1 argument 1 (only strings) with reports/2 argument 1 (only constants)" in d.message
    assert staff.diagnostics == []  # staff/1 does not depend on the rule
    assert staff.answers[0].atom == 'staff("bob")'
    # constants from an .lp file match: nothing to say
    lp = rs.evaluate(parse_facts_lp("employee(bob)."), ["manager(E, M)"]).answers[0]
    assert [a.atom for a in lp.answers] == ["manager(bob,ann)"] and lp.diagnostics == []


def test_a_constant_the_case_facts_never_hold_is_reported() -> None:
    rs = reasoning.compile("vip(A) :- customer(A, gold).")
    [d] = rs.evaluate({"customer": [["ann", "gold"]]}, ["vip(A)"]).answers[0].diagnostics
    assert "gold is a constant but customer/2 argument 2 holds only strings" in d.message


def test_kinds_propagate_from_case_facts_through_recursion() -> None:
    rs = reasoning.compile(
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\nnamed(N) :- path(N, _), name(N).\n"
    )
    [d] = rs.evaluate({"edge": [[1, 2]], "name": [["1"]]}, ["named(N)"]).answers[0].diagnostics
    assert "path/2 argument 1 (only integers) with name/1 argument 1 (only strings)" in d.message
    assert rs.evaluate({"edge": [[1, 2]], "name": [[1]]}, ["named(N)"]).answers[0].diagnostics == []


def test_a_static_clash_is_not_repeated_in_every_answer() -> None:
    rs = reasoning.compile("p(1). q(a). ok(X) :- p(X), q(X), r(X).")
    assert len(clashes(rs.warnings)) == 1
    assert rs.evaluate({"r": [[1]]}, ["ok(X)"]).answers[0].diagnostics == []


def test_cases_of_one_shape_infer_once() -> None:
    rs = reasoning.compile("reports(bob, ann).\nmanager(E, M) :- employee(E), reports(E, M).")
    assert rs.evaluate({"employee": [["bob"]]}, ["manager(E, M)"]).answers[0].diagnostics
    remembered = len(rs._input_types._cache)
    for name in ("carl", "dora", "eve"):
        assert rs.evaluate({"employee": [[name]]}, ["manager(E, M)"]).answers[0].diagnostics
    assert len(rs._input_types._cache) == remembered


def test_a_clash_one_row_suggests_and_another_row_undoes_is_not_claimed() -> None:
    rs = reasoning.compile("p(1).\nq(X) :- in(X), p(X).")
    for rows in ([["a"], [1]], [[1], ["a"]], [["a"], ["b"], [1]]):
        q = rs.evaluate({"in": rows}, ["q(X)"]).answers[0]
        assert [a.atom for a in q.answers] == ["q(1)"] and q.diagnostics == [], rows
    assert rs.evaluate({"in": [["a"]]}, ["q(X)"]).answers[0].diagnostics[0].code == TYPE_CLASH


def test_threads_sharing_a_ruleset_past_the_cache_bound() -> None:
    # a Ruleset is shared across threads; more input shapes than the cache holds
    # make threads evict what others are reading
    from concurrent.futures import ThreadPoolExecutor

    body = ", ".join(f"i{k}(X)" for k in range(7))
    rs = reasoning.compile(f"p(a).\nq(X) :- p(X), {body}.\n")

    def run(shape: int) -> int:
        facts = {f"i{k}": [["a"] if shape >> k & 1 else [1]] for k in range(7)}
        return len(rs.evaluate(facts, ["q(X)"]).answers[0].diagnostics)

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(run, [s % 128 for s in range(600)]))
    # a shape with an integer fact clashes with p/1's constant; all strings clash too
    assert all(found)
    assert len(rs._input_types._cache) <= 64
