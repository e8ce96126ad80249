"""Demand-driven evaluation of reference data (reasoning/demand.py): which predicates
a program evaluates on demand, and cases answered from a model without them exactly
as from the full one (answers, hash, proofs, why-not), with the fallback over budget."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from entail import reasoning
from entail.reasoning import why_not
from entail.reasoning.demand import demanded as demanded_predicates

TC = """%@dataset graph: edge(int, int).
path(X, Y) :- edge(X, Y).
path(X, Z) :- path(X, Y), edge(Y, Z).
ok(A, B) :- ask(A, B), path(A, B).
#show ok/2.
"""
SG = """%@dataset family: par(int, int).
sg(X, Y) :- par(X, P), par(Y, P), X != Y.
sg(X, Y) :- par(X, XP), sg(XP, YP), par(Y, YP).
same(A, B) :- ask(A, B), sg(A, B).
#show same/2.
"""


def chains(count: int, length: int) -> dict[str, dict[str, list[list[int]]]]:
    edges = [[c * 100 + i, c * 100 + i + 1] for c in range(count) for i in range(1, length)]
    return {"graph": {"edge": edges}}


def trees(count: int) -> dict[str, dict[str, list[list[int]]]]:
    return {"family": {"par": [[t * 100 + c, t * 100 + c // 2] for t in range(count) for c in range(2, 16)]}}


def atoms(result: reasoning.Result, i: int = 0) -> list[str]:
    return [a.atom for a in result.answers[i].answers]


def demanded(source: str) -> set[tuple[str, int]]:
    return set(reasoning.compile(source)._demanded)


# --- which predicates --------------------------------------------------------------


def test_a_closure_read_with_bound_arguments_is_demanded() -> None:
    assert demanded(TC) == {("path", 2)}
    assert demanded(SG) == {("sg", 2)}


def test_a_shown_predicate_is_materialised() -> None:
    assert demanded(TC + "#show path/2.\n") == set()
    assert demanded(TC.replace("#show ok/2.\n", "")) == set()  # no #show: every predicate shown


def test_a_predicate_read_under_not_or_in_an_aggregate_is_materialised() -> None:
    assert demanded(TC + "bad(A, B) :- ask(A, B), not path(A, B).\n#show bad/2.\n") == set()
    assert demanded(TC + "n(A, N) :- ask(A, _), N = #count{ B : path(A, B) }.\n#show n/2.\n") == set()


def test_a_use_with_no_bound_argument_makes_it_materialised() -> None:
    # go/0 binds nothing: the demand would be the whole closure, per case
    assert demanded(TC + "all(A, B) :- go, path(A, B).\n#show all/2.\n") == set()
    # one bound argument at every use is enough
    assert demanded(TC + "from(A, B) :- start(A), path(A, B).\n#show from/2.\n") == {("path", 2)}


def test_a_rule_reading_it_without_a_case_fact_makes_it_materialised() -> None:
    # hub/1 holds without any case: its demand on path/2 is the reference data's own
    source = TC + "%@dataset nodes: node(int).\nhub(X) :- node(X), path(X, 5).\n#show hub/1.\n"
    assert demanded(source) == set()


def test_a_rewrite_that_is_not_stratified_gets_no_demand() -> None:
    # path#magic(X) :- bad(X), and bad reads ok through not, ok reads path: a cycle
    source = TC + "bad(X) :- flag(X), not ok(X, X).\nr(X, Y) :- bad(X), path(X, Y).\n#show r/2.\n"
    rs = reasoning.compile(source)
    assert rs._demand is None
    mat = rs.materialise(chains(1, 4))
    assert not mat.demand
    got = rs.evaluate({"flag": [[1]], "ask": [[1, 3]]}, ["r(X, Y)"], reference=mat)
    assert atoms(got) == ["r(1,2)", "r(1,3)", "r(1,4)"]


def test_magic_predicates_are_not_in_the_results() -> None:
    rs = reasoning.compile(TC)
    mat = rs.materialise(chains(2, 5))
    result = rs.evaluate({"ask": [[1, 4]]}, reference=mat)
    assert result.stats["reference_mode"] == "demand"
    assert result.shown_atoms() == ["ok(1,4)"]
    assert not any("#" in a for a in result.model_atoms())
    assert [sig for sig, _ in result.shown_relations().items()] == [("ok", 2)]
    # nor in a query's "did you mean"
    near = rs.evaluate({"ask": [[1, 4]]}, ["pathmagic(X, Y)"], reference=rs.materialise(chains(2, 5)))
    assert near.stats["reference_mode"] == "demand"
    assert "#magic" not in str([d.message for d in near.answers[0].diagnostics])


# --- answers, hash, proofs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "data", "case", "query"),
    [
        (TC, chains(30, 8), {"ask": [[1, 7], [1, 8], [5, 2], [201, 205], [1, 999]]}, "ok(A, B)"),
        (SG, trees(30), {"ask": [[15, 14], [15, 8], [8, 13], [115, 114], [4, 2]]}, "same(A, B)"),
    ],
)
def test_demand_answers_and_hash_are_the_full_models(
    source: str, data: dict[str, dict[str, list[list[int]]]], case: dict[str, list[list[int]]], query: str
) -> None:
    rs = reasoning.compile(source)
    demand = rs.materialise(data)
    full = rs.materialise(data, demand=False)
    assert demand.demand and not full.demand
    # the demand model holds the dataset facts only: nothing was derived
    assert demand.facts == demand.stats["dataset_facts"] < full.facts
    assert demand.nbytes < full.nbytes
    on_demand = rs.evaluate(case, [query], reference=demand)
    in_full = rs.evaluate(case, [query], reference=full)
    assert on_demand.stats["reference_mode"] == "demand"
    assert in_full.stats["reference_mode"] == "full"
    assert atoms(on_demand) == atoms(in_full) and atoms(in_full)
    assert on_demand.shown_atoms() == in_full.shown_atoms()
    assert on_demand.result_hash == in_full.result_hash
    assert on_demand.model_atoms() == in_full.model_atoms()
    # and as the whole program with the dataset facts in its text
    (binding,) = data
    (pred,) = data[binding]
    text = "".join(f"{pred}({a},{b}).\n" for a, b in data[binding][pred])
    whole = reasoning.compile(text + source.split("\n", 1)[1]).evaluate(case, [query])
    assert atoms(whole) == atoms(on_demand)


def test_a_case_over_the_budget_is_answered_from_the_full_model_built_once() -> None:
    rs = reasoning.compile(TC)
    mat = rs.materialise(chains(20, 40))
    case = {"ask": [[1, 40], [101, 139]]}
    small = rs.evaluate(case, ["ok(A, B)"], reference=mat)
    assert small.stats["reference_mode"] == "demand"
    before = mat.nbytes
    rs.demand_budget = 10  # each ask demands the 39 path facts from the head of its chain
    over = rs.evaluate(case, ["ok(A, B)"], reference=mat)
    assert over.stats["reference_mode"] == "full"
    assert atoms(over) == atoms(small) == ["ok(1,40)", "ok(101,139)"]
    assert over.result_hash == small.result_hash
    # the full model is kept with the demand one, and the cache sees it in nbytes
    full = mat.full_model()
    assert mat.nbytes == before + full.nbytes > before
    assert full.facts > mat.facts
    again = rs.evaluate(case, ["ok(A, B)"], reference=mat)
    assert mat.full_model() is full and again.result_hash == small.result_hash
    # from now on the full model, paid for, answers unexplained cases (a lookup)
    within = rs.evaluate({"ask": [[1, 2]]}, ["ok(A, B)"], reference=mat)
    assert within.stats["reference_mode"] == "full" and atoms(within) == ["ok(1,2)"]
    # an explained case stays on demand within the budget, and over it has the full
    # model's proofs, counted with the model's
    explained = rs.evaluate({"ask": [[37, 39]]}, ["ok(A, B)"], explain=True, reference=mat)
    assert explained.stats["reference_mode"] == "demand" and atoms(explained) == ["ok(37,39)"]
    explained = rs.evaluate(case, ["ok(A, B)"], explain=True, reference=mat)
    assert explained.stats["reference_mode"] == "full"
    assert mat.provenance_nbytes >= full.provenance_nbytes > 0


def test_the_hash_is_the_same_in_both_modes_with_the_datasets_hashes() -> None:
    rs = reasoning.compile(TC)
    hashes = {"graph": "sha256:abc"}
    demand = rs.materialise(chains(3, 5), hashes=hashes)
    full = rs.materialise(chains(3, 5), hashes=hashes, demand=False)
    assert demand.digest == full.digest == demand.full_model().digest
    case = {"ask": [[1, 4], [2, 1]]}
    assert rs.evaluate(case, reference=demand).result_hash == rs.evaluate(case, reference=full).result_hash
    other = rs.evaluate({"ask": [[1, 3]]}, reference=demand).result_hash
    assert other != rs.evaluate(case, reference=demand).result_hash


def steps(node: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """Each rule step of a proof: (fact, rule text, premises' facts)."""
    if node.get("kind") != "rule":
        return []
    out = [(node["fact"], node["rule"]["text"], [child["fact"] for child in node["body"]])]
    for child in node["body"]:
        out.extend(steps(child))
    return out


def test_explained_decisions_on_demand_cite_only_the_programs_rules() -> None:
    rs = reasoning.compile(TC)
    mat = rs.materialise(chains(2, 5))
    result = rs.evaluate({"ask": [[1, 4]]}, ["ok(A, B)"], explain=True, reference=mat)
    assert result.stats["reference_mode"] == "demand"
    assert not mat.demand or mat._full is None  # no full model was needed
    proof = result.answers[0].answers[0].proof
    assert proof is not None
    assert "#magic" not in json.dumps(proof)
    assert steps(proof) == [
        ("ok(1,4)", "ok(A, B) :- ask(A, B), path(A, B).", ["ask(1,4)", "path(1,4)"]),
        ("path(1,4)", "path(X, Z) :- path(X, Y), edge(Y, Z).", ["path(1,3)", "edge(3,4)"]),
        ("path(1,3)", "path(X, Z) :- path(X, Y), edge(Y, Z).", ["path(1,2)", "edge(2,3)"]),
        ("path(1,2)", "path(X, Y) :- edge(X, Y).", ["edge(1,2)"]),
    ]
    bindings = proof["body"][1]["bindings"]
    assert bindings == {"X": 1, "Y": 3, "Z": 4}
    assert proof["body"][1]["body"][1]["kind"] == "dataset_fact"
    full = rs.evaluate({"ask": [[1, 4]]}, ["ok(A, B)"], explain=True, reference=mat.full_model())
    assert full.stats["reference_mode"] == "full" and full.result_hash == result.result_hash


def test_explained_assignments_map_to_the_original_literals() -> None:
    # the guard shifts the body by one: an assignment's step must name the original literal
    source = TC.replace(
        "ok(A, B) :- ask(A, B), path(A, B).", "ok(A, C) :- ask(A, B), path(A, B), C = B * 10."
    )
    rs = reasoning.compile(
        source.replace("path(X, Y) :- edge(X, Y).", "path(X, Y) :- edge(X, W), Y = W + 0.")
    )
    assert rs._demanded == {("path", 2)}
    mat = rs.materialise(chains(1, 3))
    result = rs.evaluate({"ask": [[1, 2]]}, ["ok(A, C)"], explain=True, reference=mat)
    assert result.stats["reference_mode"] == "demand"
    whole = rs.evaluate({"ask": [[1, 2]]}, ["ok(A, C)"], explain=True, reference=mat.full_model())
    assert result.answers[0].answers[0].proof == whole.answers[0].answers[0].proof


def test_reason_templates_are_answered_from_the_full_model() -> None:
    rs = reasoning.compile(
        TC + '%@reason code=R1 weight=1 severity=info "{A} reaches {B}"\n'
        "flag(A, B) :- ok(A, B).\n#show flag/2.\n"
    )
    mat = rs.materialise(chains(1, 5))
    result = rs.evaluate({"ask": [[1, 5]]}, ["flag(A, B)"], reference=mat)
    assert result.stats["reference_mode"] == "full"
    reasons = result.answers[0].answers[0].reasons
    assert reasons is not None and [r.code for r in reasons] == ["R1"]


def test_a_query_over_a_demanded_predicate_reads_the_whole_relation() -> None:
    rs = reasoning.compile(TC)
    mat = rs.materialise(chains(1, 4))
    result = rs.evaluate({"ask": [[1, 3]]}, ["path(1, X)", "ok(A, B)"], reference=mat)
    assert atoms(result) == ["path(1,2)", "path(1,3)", "path(1,4)"]
    assert atoms(result, 1) == ["ok(1,3)"]
    assert result.facts("path", 2)[:1] == [(1, 2)]


def test_why_not_reads_the_complete_relations() -> None:
    rs = reasoning.compile(TC)
    mat = rs.materialise(chains(1, 4))
    result = rs.evaluate({"ask": [[3, 1]]}, ["ok(A, B)"], reference=mat)
    assert result.stats["reference_mode"] == "demand" and atoms(result) == []
    absent = why_not.explain_absent(result, "ok(3,1)").to_json()
    assert "path(3,1)" in json.dumps(absent)
    # path(1,2) holds (the full model), though no case demanded it
    with pytest.raises(why_not.WhyNotError):
        why_not.explain_absent(result, "path(1,2)")


def test_a_case_may_give_facts_of_a_demanded_predicate() -> None:
    rs = reasoning.compile(TC)
    mat = rs.materialise(chains(1, 4))
    case = {"ask": [[1, 3], [9, 2]], "path": [[9, 1]]}
    got = rs.evaluate(case, ["ok(A, B)"], reference=mat)
    assert got.stats["reference_mode"] == "demand"
    assert atoms(got) == ["ok(1,3)", "ok(9,2)"]
    full = rs.evaluate(case, ["ok(A, B)"], reference=rs.materialise(chains(1, 4), demand=False))
    assert got.result_hash == full.result_hash


def test_mutual_recursion_constants_and_program_facts_answer_as_in_full() -> None:
    # even/odd distance along the chain, one demanded component; reach/2 has a
    # program fact of its own; the asks bind the first argument by a constant too
    source = """%@dataset graph: edge(int, int).
even(X, X) :- edge(X, _).
even(X, Z) :- odd(X, Y), edge(Y, Z).
odd(X, Z) :- even(X, Y), edge(Y, Z).
reach(1, 1000).
reach(X, Y) :- edge(X, Y).
reach(X, Z) :- reach(X, Y), edge(Y, Z).
ok(B) :- ask(B), even(1, B).
far(A) :- ask(A), reach(A, 1000).
far(A) :- ask(A), reach(A, 1000 + 0).
#show ok/1.
#show far/1.
"""
    rs = reasoning.compile(source)
    assert rs._demanded == {("even", 2), ("odd", 2), ("reach", 2)}
    data = chains(1, 8)
    demand = rs.materialise(data)
    full = rs.materialise(data, demand=False)
    case = {"ask": [[1], [3], [4], [5], [8]]}
    on_demand = rs.evaluate(case, reference=demand)
    in_full = rs.evaluate(case, reference=full)
    assert on_demand.stats["reference_mode"] == "demand"
    assert on_demand.shown_atoms() == in_full.shown_atoms() == ["far(1)", "ok(1)", "ok(3)", "ok(5)"]
    assert on_demand.result_hash == in_full.result_hash


def adornments(source: str) -> dict[tuple[str, int], tuple[int, ...]]:
    rs = reasoning.compile(source)
    datasets = {sig for binding in rs.datasets.values() for sig, _ in binding}
    return dict(demanded_predicates(rs.program, rs.analysis, datasets).adornments)


def test_a_recursion_that_passes_an_argument_on_is_demanded_by_it_alone() -> None:
    # path(X, Z) :- path(X, Y), ...: X is passed on, so the demand is the asks' first
    # arguments and needs no magic recursion (nor an index on edge's second column)
    assert adornments(TC) == {("path", 2): (0,)}
    magic = [r for r in reasoning.compile(TC)._demand.program.rules if "#magic" in r.head.predicate]
    assert [r.text for r in magic] == ["path#magic(A) :- ask(A, B)."]
    # no use binds X: then the bound positions, whichever they are
    backward = TC.replace("ok(A, B) :- ask(A, B), path(A, B).", "ok(A, B) :- to(B), path(A, B).")
    assert adornments(backward) == {("path", 2): (1,)}
    rs = reasoning.compile(backward)
    got = rs.evaluate({"to": [[4]]}, reference=rs.materialise(chains(1, 5)))
    assert got.stats["reference_mode"] == "demand"
    assert got.shown_atoms() == ["ok(1,4)", "ok(2,4)", "ok(3,4)"]
    # same generation passes nothing on: both arguments
    assert adornments(SG) == {("sg", 2): (0, 1)}


def test_a_model_serves_another_compile_of_the_same_source() -> None:
    # a service may compile a ruleset again (its compile cache evicted it) and keep the
    # materialised model: the rewrite is the same, numbered alike
    first, second = reasoning.compile(TC), reasoning.compile(TC)
    mat = first.materialise(chains(3, 6))
    case = {"ask": [[1, 5], [101, 106], [2, 1]]}
    got = second.evaluate(case, ["ok(A, B)"], reference=mat)
    assert got.stats["reference_mode"] == "demand"
    assert atoms(got) == ["ok(1,5)", "ok(101,106)"]
    assert got.result_hash == first.evaluate(case, ["ok(A, B)"], reference=mat).result_hash
    second.demand_budget = 1
    over = second.evaluate(case, ["ok(A, B)"], explain=True, reference=mat)
    assert over.stats["reference_mode"] == "full" and over.result_hash == got.result_hash


def test_threads_over_the_budget_build_the_full_model_once() -> None:
    rs = reasoning.compile(TC)
    rs.demand_budget = 1
    mat = rs.materialise(chains(50, 20))
    results: list[str] = []
    fulls: list[object] = []

    def decide() -> None:
        results.append(rs.evaluate({"ask": [[1, 20], [501, 519]]}, reference=mat).result_hash)
        fulls.append(mat._full)

    threads = [threading.Thread(target=decide) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 8
    assert len({id(f) for f in fulls}) == 1 and fulls[0] is mat.full_model()


def test_the_rewrite_is_compiled_on_the_first_materialisation() -> None:
    rs = reasoning.compile(TC)
    assert rs._demand_built is None  # compile() pays nothing for it
    rs.materialise(chains(1, 3))
    assert rs._demand_built is not None and rs._demand is not None
    # a program without datasets never builds one
    plain = reasoning.compile(TC.split("\n", 1)[1])
    assert plain.evaluate({"ask": [[1, 2]]}).stats.get("reference_mode") is None
    assert plain._demand is None
