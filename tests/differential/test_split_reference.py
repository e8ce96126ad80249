"""Split mode (issue 16): a random program's facts split into reference data
(declared with ``%@dataset``, materialised once) and a case; the answer over the
materialised model equals clingo's on the whole program (all facts as facts):
shown atoms, the full model, query answers and proofs. The materialised model is
shared by two cases in a row and must come out of both unchanged."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from entail import reasoning

from .clingo_ref import clingo_all_atoms, clingo_model, clingo_symbols
from .programs import SETTINGS, Program, example_count, stratified_programs
from .proof_checker import ProofChecker, ProofError
from .test_proofs import query_for

Facts = dict[str, list[list[Any]]]


def split(program: Program, to_reference: list[bool]) -> tuple[str, Facts, Facts]:
    """The program with a ``%@dataset`` line for the predicates sent to the reference
    data, those facts, and the case's."""
    names = sorted(program.facts)
    reference: Facts = {}
    case: Facts = {}
    for name, chosen in zip(names, to_reference, strict=False):
        (reference if chosen else case)[name] = program.facts[name]
    for name in names[len(to_reference) :]:
        case[name] = program.facts[name]
    arity = dict(program.predicates)
    for name, rows in list(reference.items()):
        if name not in arity:
            if not rows:  # no arity to declare: the case keeps it (an empty relation)
                case[name] = reference.pop(name)
                continue
            arity[name] = len(rows[0])
    decls = [f"{n}({', '.join(['any'] * arity[n])})" if arity[n] else n for n in sorted(reference)]
    header = f"%@dataset ref: {', '.join(decls)}.\n" if decls else ""
    return header + program.source, reference, case


def _dataset_leaves_as_inputs(node: Any, dataset: set[str], path: str = "proof") -> Any:
    """The proof with each ``dataset_fact`` leaf checked against the reference facts and
    relabelled ``input`` (the checker's inputs are all of the whole program's facts)."""
    if isinstance(node, dict):
        if node.get("kind") == "dataset_fact":
            if node.get("fact") not in dataset:
                raise ProofError(
                    f"{path}: {node.get('fact')} is marked dataset_fact but is no reference fact"
                )
            return {**node, "kind": "input"}
        return {k: _dataset_leaves_as_inputs(v, dataset, f"{path}/{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_dataset_leaves_as_inputs(v, dataset, f"{path}/{i}") for i, v in enumerate(node)]
    return node


def _snapshot(mat: reasoning.Materialised) -> tuple[list[Any], list[Any]]:
    return copy.deepcopy([set(s) for s in mat.F]), [{k: list(v) for k, v in i.items()} for i in mat.I]


@settings(SETTINGS, max_examples=example_count(40))
@given(stratified_programs(), st.lists(st.booleans(), max_size=12))
def test_split_reference_equals_clingo(program: Program, to_reference: list[bool]) -> None:
    source, reference, case = split(program, to_reference)
    check_split(program, source, reference, case)


@settings(SETTINGS, max_examples=example_count(40))
@given(
    stratified_programs(), st.lists(st.sampled_from([True, True, False]), min_size=1, max_size=12), st.data()
)
def test_split_reference_asked_with_bound_arguments_equals_clingo(
    program: Program, to_reference: list[bool], data: st.DataObject
) -> None:
    """As above, with one more rule that asks about a derived predicate with its first
    arguments bound by a case-only predicate (``zq__(Z..) :- zask__(Z1..Zb), p(Z..).``,
    the only one shown): the shape a demanded predicate has (reasoning/demand.py)."""
    heads = sorted(
        {
            r.head.signature
            for r in reasoning.compile(program.source).program.rules
            if not r.is_fact and r.head.arity > 0
        }
    )
    assume(heads)
    name, arity = data.draw(st.sampled_from(heads))
    bound = data.draw(st.integers(1, arity))
    seen = sorted({json.dumps(v) for rows in program.facts.values() for row in rows for v in row})
    pool = [json.loads(v) for v in seen] or list(range(-2, 5))
    asks = data.draw(st.lists(st.lists(st.sampled_from(pool), min_size=bound, max_size=bound), max_size=4))
    zs = [f"Z{i}" for i in range(1, arity + 1)]
    rule = f"zq__({','.join(zs)}) :- zask__({','.join(zs[:bound])}), {name}({','.join(zs)}).\n"
    shows = tuple(program.shown) if re.search(r"^#show", program.source, re.M) else ()
    asked = Program(
        program.source + rule + f"#show zq__/{arity}.\n",
        {**program.facts, "zask__": asks},
        (*program.predicates, ("zq__", arity), ("zask__", bound)),
        (*shows, ("zq__", arity)),
        program.features,
        program.queries,
    )
    source, reference, case = split(program, to_reference)
    source += rule + f"#show zq__/{arity}.\n"
    check_split(asked, source, reference, {**case, "zask__": asks})


def check_split(program: Program, source: str, reference: Facts, case: Facts) -> None:
    """The split program (``source``: ``program``'s with the %@dataset line) answers as
    clingo on the whole program, on demand where it can, and in full."""
    context = (
        f"{program.describe()}--- reference ---\n{json.dumps(reference)}\n--- case ---\n{json.dumps(case)}\n"
    )
    try:
        rs = reasoning.compile(source)
        mat = rs.materialise({"ref": reference})
    except reasoning.EntailError as error:
        pytest.fail(f"Entail rejects a split program: {error!r}\n{context}")
    before = _snapshot(mat)
    queries = list(program.queries) + [query_for(n, a) for n, a in program.shown]
    # an empty case first (the reference data alone), then the case: one model shared
    alone = rs.evaluate({}, reference=mat)
    assert sorted(alone.shown_atoms()) == clingo_model(program.source, reference), context
    # unexplained first: on demand where the program allows (demand.py), before anything
    # that reads a whole demanded relation builds the full model (then used by such cases)
    again = rs.evaluate(case, queries, reference=mat)
    result = rs.evaluate(case, queries, reference=mat, explain=True)
    assert sorted(result.shown_atoms()) == clingo_model(program.source, program.facts), context
    assert sorted(result.model_atoms()) == clingo_all_atoms(program.source, program.facts), context
    assert _snapshot(mat) == before, f"the materialised model changed\n{context}"

    # answers and proofs as without reference data (the whole program, all facts)
    whole = reasoning.compile(program.source).evaluate(program.facts, queries)
    for got, want in zip(result.answers, whole.answers, strict=True):
        assert [a.atom for a in got.answers] == [a.atom for a in want.answers], context
    model = clingo_symbols(program.source, program.facts, shown=False)
    checker = ProofChecker(source, program.facts, model)
    dataset = {reasoning.format_atom(name, tuple(row)) for name, rows in reference.items() for row in rows}
    for answered in result.answers:
        for answer in answered.answers:
            try:
                checker.check(answer.atom, _dataset_leaves_as_inputs(answer.proof, dataset))
            except ProofError as error:
                pytest.fail(
                    f"bad proof of {answer.atom}: {error}\n{json.dumps(answer.proof, indent=1)}\n{context}"
                )
    # the same decision gives the same hash, explained or not, on demand or in full
    assert again.result_hash == result.result_hash, context
    assert again.shown_atoms() == result.shown_atoms(), context
    for got, want in zip(again.answers, whole.answers, strict=True):
        assert [a.atom for a in got.answers] == [a.atom for a in want.answers], context
    if mat.demand:
        event("demand mode")
        if again.stats.get("reference_mode") == "demand":
            event("a case answered on demand")
        if result.stats.get("reference_mode") == "demand":
            event("an explained case answered on demand")
        # the whole model (read from the full one), and a budget of one fact: the full model
        assert sorted(again.model_atoms()) == clingo_all_atoms(program.source, program.facts), context
        rs.demand_budget = 1
        over = rs.evaluate(case, queries, reference=mat)
        assert over.result_hash == result.result_hash, context
        assert over.shown_atoms() == result.shown_atoms(), context
        full = rs.materialise({"ref": reference}, demand=False)
        assert rs.evaluate(case, queries, reference=full).result_hash == result.result_hash, context


def test_split_moves_facts_to_a_dataset_declaration() -> None:
    """Generator sanity for the split: the declaration names exactly the moved predicates."""
    program = Program(
        "q(X) :- p(X), not r(X).\n",
        {"p": [[1], [2]], "r": [[2]]},
        (("p", 1), ("q", 1), ("r", 1)),
        (("q", 1),),
    )
    source, reference, case = split(program, [True, False])
    assert source.startswith("%@dataset ref: p(any).\n")
    assert reference == {"p": [[1], [2]]} and case == {"r": [[2]]}
    rs = reasoning.compile(source)
    result = rs.evaluate(case, ["q(X)"], reference=rs.materialise({"ref": reference}))
    assert [a.atom for a in result.answers[0].answers] == ["q(1)"]


def test_the_checker_accepts_an_assignment_solved_through_arithmetic() -> None:
    """Found by the split mode: ``Y + 0 = Z`` binds ``Y`` from ``Z`` when the join
    reads ``e0(5, Z)`` first; the proof says so, and the checker must accept it."""
    source = "p5(X) :- e0(X,Y), e0(5,Z), Y + 0 = Z.\n"
    facts: Facts = {"e0": [[5, 7], [7, 7]]}
    result = reasoning.compile(source).evaluate(facts, ["p5(X)"], explain=True)
    checker = ProofChecker(source, facts, clingo_symbols(source, facts, shown=False))
    for answer in result.answers[0].answers:
        assert answer.proof is not None and answer.proof["body"][2]["kind"] == "assignment"
        checker.check(answer.atom, answer.proof)
