"""Reference data (reasoning/reference.py): materialising a program's dataset facts
once and answering cases from the shared model, exactly as the whole program."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from entail import reasoning
from entail.reasoning import why_not

ORG = """%@dataset orgchart: manages(manager: const, employee: const), limit(person: const, amount: int).
%@input expense(id: string, employee: const, amount: int).
above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L.
"""
ORG_DATA: dict[str, dict[str, list[list[int | str]]]] = {
    "orgchart": {
        "manages": [["alice", "bob"], ["bob", "carol"]],
        "limit": [["alice", 10000], ["bob", 1000]],
    }
}
ORG_WHOLE = """%@input expense(id: string, employee: const, amount: int).
manages(alice, bob). manages(bob, carol). limit(alice, 10000). limit(bob, 1000).
above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L.
"""
CASE = {"expense": [["e1", "carol", 500], ["e2", "carol", 5000]]}

CHAIN = """%@dataset graph: edge(int, int).
path(X, Y) :- edge(X, Y).
path(X, Z) :- path(X, Y), edge(Y, Z).
ok(A, B) :- ask(A, B), path(A, B).
"""


def chain(n: int) -> dict[str, dict[str, list[list[int]]]]:
    return {"graph": {"edge": [[i, i + 1] for i in range(1, n)]}}


def atoms(result: reasoning.Result, i: int = 0) -> list[str]:
    return [a.atom for a in result.answers[i].answers]


def test_the_org_chart_answers_as_the_whole_program() -> None:
    rs = reasoning.compile(ORG)
    mat = rs.materialise(ORG_DATA)
    got = rs.evaluate(CASE, ["may_approve(I, M)"], reference=mat)
    whole = reasoning.compile(ORG_WHOLE).evaluate(
        {"expense": [["e1", "carol", 500], ["e2", "carol", 5000]]}, ["may_approve(I, M)"]
    )
    # the whole program's constants come from its text; the dataset's from %@dataset const
    assert (
        atoms(got)
        == atoms(whole)
        == ['may_approve("e1",alice)', 'may_approve("e1",bob)', 'may_approve("e2",alice)']
    )
    assert got.model_atoms() == sorted(whole.model_atoms())
    assert got.stats["strata_run"] == 2  # expense and may_approve: above/2 came from the model
    assert got.stats["derived_facts"] == 3


def test_proofs_cite_dataset_facts_and_the_materialised_steps() -> None:
    rs = reasoning.compile(ORG)
    mat = rs.materialise(ORG_DATA)
    result = rs.evaluate(CASE, ["may_approve(I, M)"], explain=True, reference=mat)
    proof = result.answers[0].answers[0].proof
    assert proof is not None
    expense, above, limit, _ = proof["body"]
    assert expense["kind"] == "input"
    assert above["kind"] == "rule" and above["fact"] == "above(alice,carol)"
    assert [c["kind"] for c in above["body"]] == ["dataset_fact", "rule"]
    assert above["body"][1]["body"][0] == {"fact": "manages(bob,carol)", "kind": "dataset_fact"}
    assert limit == {"fact": "limit(alice,10000)", "kind": "dataset_fact"}
    assert "[dataset fact]" in result.render_text()


def test_without_reference_data_the_dataset_predicates_are_empty() -> None:
    rs = reasoning.compile(ORG)
    assert atoms(rs.evaluate(CASE, ["may_approve(I, M)"])) == []


def test_case_facts_may_not_name_a_dataset_predicate() -> None:
    rs = reasoning.compile(ORG)
    mat = rs.materialise(ORG_DATA)
    for reference in (mat, None):
        with pytest.raises(reasoning.FactsError) as caught:
            rs.evaluate({"expense": [], "manages": [["x", "y"]]}, reference=reference)
        assert caught.value.code == "facts-name-dataset-predicate"
        assert caught.value.path == "/manages"
        assert "orgchart" in str(caught.value)


@pytest.mark.parametrize(
    ("rows", "where", "detail"),
    [
        ([["alice", "x"]], "row 0, column 2", "is declared int"),
        ([["alice", 1], ["bob", 2**31]], "row 1, column 2", "does not fit in 32 bits"),
        ([["alice", 1], ["Bob", 2]], "row 1, column 1", "is not a constant name"),
        ([["alice", 1], [3, 2]], "row 1, column 1", "is declared const"),
        ([["alice", 1], ["bob"]], "row 1, column 1", "has 1 value(s)"),
        ([["alice", True]], "row 0, column 2", "got a bool"),
    ],
)
def test_a_value_of_the_wrong_type_names_binding_predicate_row_and_column(
    rows: list[list[Any]], where: str, detail: str
) -> None:
    rs = reasoning.compile(ORG)
    with pytest.raises(reasoning.DatasetTypeError) as caught:
        rs.materialise({"orgchart": {"limit": rows}})
    message = str(caught.value)
    assert caught.value.code == "dataset-type-mismatch"
    assert "dataset 'orgchart', predicate 'limit'" in message and where in message and detail in message
    assert isinstance(caught.value, reasoning.FactsError)


def test_any_and_string_columns_keep_json_values() -> None:
    rs = reasoning.compile("%@dataset d: v(any, string).\nw(X, Y) :- v(X, Y).\n")
    mat = rs.materialise({"d": {"v": [[1, "a"], ["b", "c"]], "unknown": [[1]]}})
    assert rs.evaluate({}, ["w(X, Y)"], reference=mat).answers[0].answers[0].atom == 'w(1,"a")'
    assert atoms(rs.evaluate({}, ["w(X, Y)"], reference=mat)) == ['w(1,"a")', 'w("b","c")']


def test_a_runaway_closure_stops_with_the_usual_limit() -> None:
    rs = reasoning.compile(CHAIN)
    with pytest.raises(reasoning.DerivedFactsLimitExceeded):
        rs.materialise(chain(200), limits=reasoning.Limits(derived_facts=1000))


def test_a_decision_over_a_large_closure_derives_only_its_own_facts() -> None:
    """The issue's example: a 300-edge chain's closure (45,150 paths) is materialised
    once; the decision looks up one path instead of re-deriving all of them."""
    rs = reasoning.compile(CHAIN)
    mat = rs.materialise(chain(301))
    assert mat.stats["derived"] == 45_150
    result = rs.evaluate({"ask": [[1, 301], [301, 1]]}, ["ok(A, B)"], reference=mat)
    assert atoms(result) == ["ok(1,301)"]
    assert result.stats["derived_facts"] == 1 and result.stats["rounds"] <= 2


def test_the_materialised_model_is_never_written_by_decisions() -> None:
    rs = reasoning.compile(
        CHAIN + "path(X, Z) :- path(X, Y), hop(Y, Z).\nback(Y) :- ask(_, Y), not path(1, Y).\n"
    )
    mat = rs.materialise(chain(30))
    facts = [set(s) for s in mat.F]
    indexes = [{k: list(v) for k, v in index.items()} for index in mat.I]
    # hop reaches path (the closure is recomputed for this case, in fresh sets)
    got = rs.evaluate(
        {"hop": [[30, 31], [31, 40]], "ask": [[1, 40], [1, 99]]}, ["ok(A, B)", "back(Y)"], reference=mat
    )
    assert atoms(got, 0) == ["ok(1,40)"]
    assert atoms(got, 1) == ["back(99)"]
    assert [set(s) for s in mat.F] == facts
    assert [{k: list(v) for k, v in index.items()} for index in mat.I] == indexes
    assert atoms(rs.evaluate({"ask": [[1, 40]]}, ["ok(A, B)"], reference=mat)) == []


def test_threads_share_one_materialised_model() -> None:
    rs = reasoning.compile(CHAIN)
    mat = rs.materialise(chain(100))
    expected = {i: [f"ok(1,{i})"] for i in range(2, 101)}
    found: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for i in range(start, 101, 4):
                result = rs.evaluate({"ask": [[1, i]]}, ["ok(A, B)"], explain=True, reference=mat)
                found[i] = atoms(result)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(2, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and found == expected


def test_a_rule_may_derive_more_facts_of_a_dataset_predicate() -> None:
    rs = reasoning.compile(CHAIN + "edge(X, Y) :- extra(X, Y).\n")
    mat = rs.materialise(chain(5))
    result = rs.evaluate({"extra": [[5, 6]], "ask": [[1, 6]]}, ["ok(A, B)"], explain=True, reference=mat)
    assert atoms(result) == ["ok(1,6)"]
    assert "edge(5,6)" in result.model_atoms() and "edge(1,2)" in result.model_atoms()


def test_the_result_hash_covers_the_datasets_and_what_the_case_changed() -> None:
    rs = reasoning.compile(CHAIN)
    one = rs.materialise(chain(10), hashes={"graph": "h1"})
    same = rs.materialise(chain(10), hashes={"graph": "h1"})
    other = rs.materialise(chain(10), hashes={"graph": "h2"})
    case = {"ask": [[1, 5]]}

    def hash_of(mat: reasoning.Materialised, facts: dict[str, Any] = case) -> str:
        return rs.evaluate(facts, ["ok(A, B)"], reference=mat).result_hash

    assert hash_of(one) == hash_of(same)
    assert hash_of(one) != hash_of(other)
    assert hash_of(one) != hash_of(one, {"ask": [[1, 6]]})
    # a case fact the program never reads is part of the model, so of the hash
    assert hash_of(one) != hash_of(one, {"ask": [[1, 5]], "note": [[1]]})
    # without given hashes the digest comes from the facts: equal data, equal digest
    assert rs.materialise(chain(10)).digest == rs.materialise(chain(10)).digest
    assert rs.materialise(chain(10)).digest != rs.materialise(chain(11)).digest


def test_nbytes_grows_with_the_model() -> None:
    rs = reasoning.compile(CHAIN)
    small, large = rs.materialise(chain(20)), rs.materialise(chain(200))
    assert 0 < small.nbytes < large.nbytes
    # at least a tuple per fact
    assert large.nbytes > large.facts * 56


def test_a_head_reached_only_through_negation_runs_in_full() -> None:
    rs = reasoning.compile(
        "%@dataset d: node(int).\nlonely(X) :- node(X), not linked(X).\nlinked(X) :- link(X, _).\n"
    )
    mat = rs.materialise({"d": {"node": [[1], [2], [3]]}})
    result = rs.evaluate({"link": [[2, 9]]}, ["lonely(X)"], explain=True, reference=mat)
    assert atoms(result) == ["lonely(1)", "lonely(3)"]
    assert atoms(rs.evaluate({}, ["lonely(X)"], reference=mat)) == ["lonely(1)", "lonely(2)", "lonely(3)"]


def test_reasons_and_why_not_keep_working() -> None:
    rs = reasoning.compile(
        CHAIN + '%@reason code=R1 weight=1 severity=info "{A} reaches {B}"\nflag(A, B) :- ok(A, B).\n'
    )
    mat = rs.materialise(chain(5))
    result = rs.evaluate({"ask": [[1, 5], [5, 1]]}, ["flag(A, B)"], reference=mat)
    reasons = result.answers[0].answers[0].reasons
    assert reasons is not None and [r.code for r in reasons] == ["R1"]
    absent = why_not.explain_absent(result, "ok(5,1)")
    assert "path(5,1)" in str(absent.to_json())


def test_a_materialised_model_of_another_ruleset_is_refused() -> None:
    mat = reasoning.compile(CHAIN).materialise(chain(3))
    with pytest.raises(ValueError, match="another ruleset"):
        reasoning.compile(ORG).evaluate({}, reference=mat)


def test_queries_over_materialised_relations_answer_as_the_whole_program() -> None:
    rs = reasoning.compile(ORG)
    mat = rs.materialise(ORG_DATA)
    whole = reasoning.compile(ORG_WHOLE)
    queries = [
        "above(bob, E)",
        "above(alice, carol)",
        "above(carol, alice)",
        "above(M, carol)",
        "limit(P, 1000)",
    ]
    got = rs.evaluate(CASE, queries, reference=mat)
    want = whole.evaluate(CASE, queries)
    assert [atoms(got, i) for i in range(len(queries))] == [atoms(want, i) for i in range(len(queries))]
    assert atoms(got, 0) == ["above(bob,carol)"] and atoms(got, 1) == ["above(alice,carol)"]


def test_provenance_is_computed_once_on_the_first_explained_use() -> None:
    rs = reasoning.compile(CHAIN)
    mat = rs.materialise(chain(50))
    rs.evaluate({"ask": [[1, 50]]}, ["ok(A, B)"], reference=mat)
    assert mat.provenance_nbytes == 0
    first = rs.evaluate({"ask": [[1, 50]]}, ["ok(A, B)"], explain=True, reference=mat)
    kept = mat.provenance()
    assert mat.provenance_nbytes > 0
    rs.evaluate({"ask": [[2, 50]]}, ["ok(A, B)"], explain=True, reference=mat)
    assert mat.provenance() is kept
    proof = first.answers[0].answers[0].proof
    assert proof is not None and proof["body"][1]["kind"] == "rule"  # path(1,50): its own proof


def test_a_case_naming_a_materialised_predicate_recomputes_its_stratum() -> None:
    rs = reasoning.compile(CHAIN)
    mat = rs.materialise(chain(6))
    case = {"path": [[100, 1]], "ask": [[100, 6], [1, 6], [6, 1]]}
    got = rs.evaluate(case, ["ok(A, B)", "path(100, X)"], explain=True, reference=mat)
    edges = {"edge": [[i, i + 1] for i in range(1, 6)]}
    whole = reasoning.compile(CHAIN.split("\n", 1)[1]).evaluate(
        {**edges, **case}, ["ok(A, B)", "path(100, X)"]
    )
    assert atoms(got, 0) == atoms(whole, 0) == ["ok(1,6)", "ok(100,6)"]
    assert atoms(got, 1) == atoms(whole, 1)
    assert got.model_atoms() == whole.model_atoms()
    # the whole closure again (15), path(100, 2..6) (5), two ok facts
    assert got.stats["derived_facts"] == 15 + 5 + 2
