"""Every proof Entail gives for a random program checks out against clingo's model."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import clingo
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from entail import reasoning

from .clingo_ref import clingo_symbols
from .programs import SETTINGS, Program, stratified_programs
from .proof_checker import ProofChecker, ProofError, parse_statements, try_evaluate


def query_for(name: str, arity: int) -> str:
    """``p(X1,...,Xn)`` with fresh variables: every fact of p answers it."""
    if arity == 0:
        return name
    return f"{name}({','.join(f'X{i}' for i in range(1, arity + 1))})"


def python_term_symbol(value: Any) -> clingo.Symbol:
    """An engine term (int, str, or a Const with .name) as a clingo symbol."""
    if isinstance(value, bool):
        raise TypeError(f"not a term: {value!r}")
    if isinstance(value, int):
        return clingo.Number(value)
    if isinstance(value, str):
        return clingo.String(value)
    name = getattr(value, "name", None)
    if name == "#sup":
        return clingo.Supremum
    if name == "#inf":
        return clingo.Infimum
    if isinstance(name, str):
        return clingo.Function(name)
    raise TypeError(f"not a term: {value!r}")


def _context(program: Program, detail: str) -> str:
    return f"{detail}\n{program.describe()}"


@settings(SETTINGS, max_examples=200)
@given(stratified_programs())
def test_proofs_check_against_clingo(program: Program) -> None:
    model = clingo_symbols(program.source, program.facts, shown=False)
    queries = [query_for(name, arity) for name, arity in program.shown]
    try:
        result = reasoning.compile(program.source).evaluate(program.facts, queries=queries, explain=True)
    except reasoning.EntailError as error:
        pytest.fail(_context(program, f"Entail rejects a program clingo accepts: {error!r}"))
    except Exception as error:
        raise AssertionError(_context(program, f"Entail crashed: {error!r}")) from error
    checker = ProofChecker(program.source, program.facts, model)
    assert [answer.query for answer in result.answers] == queries, _context(program, "queries")
    for (name, arity), query_result in zip(program.shown, result.answers, strict=True):
        expected = [atom for atom in model if atom.name == name and len(atom.arguments) == arity]
        atoms = [answer.atom for answer in query_result.answers]
        assert atoms == [str(atom) for atom in expected], _context(
            program, f"answers to {query_result.query}: entail {atoms}, clingo {[str(a) for a in expected]}"
        )
        for answer in query_result.answers:
            symbol = clingo.Function(name, [python_term_symbol(arg) for arg in answer.args])
            assert str(symbol) == answer.atom, _context(program, f"args {answer.args!r} of {answer.atom}")
            bindings = {var: python_term_symbol(value) for var, value in answer.bindings.items()}
            assert bindings == dict(
                zip([f"X{i}" for i in range(1, arity + 1)], symbol.arguments, strict=True)
            ), _context(program, f"bindings {answer.bindings!r} of {answer.atom}")
            try:
                checker.check(answer.atom, answer.proof)
            except ProofError as error:
                pytest.fail(
                    _context(
                        program,
                        f"bad proof of {answer.atom}: {error}\n--- proof ---\n"
                        f"{json.dumps(answer.proof, indent=1, ensure_ascii=False)}",
                    )
                )


# The checker's arithmetic stands in for gringo's; check it against gringo itself.

_OPS = ("+", "-", "*", "/", "\\")


@st.composite
def ground_terms(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(
            st.sampled_from(
                [str(draw(st.integers(-12, 12))), "100000", "2147483647", "a", '"s"', "#sup", "#inf"]
            )
        )
    if draw(st.integers(0, 5)) == 0:
        return f"-({draw(ground_terms(depth - 1))})"
    left = draw(ground_terms(depth - 1))
    right = draw(ground_terms(depth - 1))
    return f"({left} {draw(st.sampled_from(_OPS))} {right})"


@settings(SETTINGS, max_examples=300)
@given(st.lists(ground_terms(), min_size=1, max_size=8))
def test_checker_arithmetic_matches_gringo(terms: list[str]) -> None:
    source = "".join(f"v({index},{term}).\n" for index, term in enumerate(terms))
    ours: dict[int, clingo.Symbol] = {}
    try:
        for index, statement in enumerate(parse_statements(source)):
            value = try_evaluate(statement.head.atom.symbol.arguments[1], {})
            if value is not None:
                ours[index] = value
    except ProofError:
        assume(False)  # INT_MIN / -1 would take the test process down with clingo
    control = clingo.Control(["--warn=none"])
    control.add("base", [], source)
    control.ground([("base", [])])
    gringo: dict[int, clingo.Symbol] = {}
    for atom in control.symbolic_atoms.by_signature("v", 2):
        number, result = atom.symbol.arguments
        gringo[number.number] = result
    assert ours == gringo, source


# A proof in the documented schema (written by hand, not by the engine) and
# corruptions of it, so the checker is known to catch what it claims to.

_PATH_SOURCE = """edge(1,2). edge(2,3).
path(X,Y) :- edge(X,Y).
path(X,Z) :- path(X,Y), edge(Y,Z), not blocked(Z,_), Z > 1, W = Z*2,\
 N = #count{ A : edge(A,_) }, #sum{ B : edge(_,B) } >= 2.
"""
_PATH_FACTS = {"blocked": [[9, 9]]}


def _path_proof() -> dict[str, Any]:
    elements = [{"tuple": [1], "facts": ["edge(1,2)"]}, {"tuple": [2], "facts": ["edge(2,3)"]}]
    return {
        "fact": "path(1,3)",
        "kind": "rule",
        "rule": {"index": 3, "line": 3, "text": _PATH_SOURCE.splitlines()[2]},
        "bindings": {"N": 2, "W": 6, "X": 1, "Y": 2, "Z": 3},
        "body": [
            {
                "fact": "path(1,2)",
                "kind": "rule",
                "rule": {"index": 2, "line": 2, "text": "path(X,Y) :- edge(X,Y)."},
                "bindings": {"X": 1, "Y": 2},
                "body": [{"fact": "edge(1,2)", "kind": "ruleset_fact"}],
            },
            {"fact": "edge(2,3)", "kind": "ruleset_fact"},
            {"kind": "negation", "literal": "not blocked(3,_)", "atom": "blocked(3,_)"},
            {"kind": "comparison", "literal": "Z > 1", "evaluated": "3 > 1"},
            {"kind": "assignment", "literal": "W = Z*2", "variable": "W", "value": 6},
            {
                "kind": "aggregate",
                "literal": "N = #count{ A : edge(A,_) }",
                "function": "count",
                "value": 2,
                "elements": elements,
                "total_elements": 2,
                "truncated": False,
            },
            {
                "kind": "aggregate",
                "literal": "#sum{ B : edge(_,B) } >= 2",
                "function": "sum",
                "value": 5,
                "elements": [
                    {"tuple": [2], "facts": ["edge(1,2)"]},
                    {"tuple": [3], "facts": ["edge(2,3)"]},
                ],
                "total_elements": 2,
                "truncated": False,
            },
        ],
    }


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(proof: dict[str, Any]) -> None:
        node: Any = proof
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _drop_body_literal(proof: dict[str, Any]) -> None:
    proof["body"].pop(3)


def _truncate_elements(proof: dict[str, Any]) -> None:
    proof["body"][5]["elements"].pop()


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "binding changes the head": _set(("bindings", "Z"), 4),
    "binding missing": _set(("bindings",), {"X": 1, "Y": 2, "Z": 3, "W": 6}),
    "fact not in the model": _set(("body", 1, "fact"), "edge(3,2)"),
    "child is not the body atom": _set(("body", 0, "body", 0, "fact"), "edge(2,3)"),
    "input that is no case fact": _set(("body", 1, "kind"), "input"),
    "ruleset_fact that is derived": _set(("body", 0, "kind"), "ruleset_fact"),
    "rule not in the program": _set(("body", 0, "rule", "text"), "path(Y,X) :- edge(X,Y)."),
    "wrong line": _set(("body", 0, "rule", "line"), 3),
    "wrong index": _set(("body", 0, "rule", "index"), 0),
    "body literal dropped": _drop_body_literal,
    "negation of a present atom": _set(("body", 2, "atom"), "blocked(9,_)"),
    "comparison text": _set(("body", 3, "evaluated"), "4 > 1"),
    "assignment value": _set(("body", 4, "value"), 7),
    "assignment variable": _set(("body", 4, "variable"), "Z"),
    "aggregate value": _set(("body", 5, "value"), 3),
    "aggregate total": _set(("body", 5, "total_elements"), 3),
    "aggregate element tuple": _set(("body", 5, "elements", 0, "tuple"), [5]),
    "aggregate element facts": _set(("body", 5, "elements", 0, "facts"), ["edge(2,3)"]),
    "aggregate truncated silently": _truncate_elements,
    "aggregate function": _set(("body", 6, "function"), "max"),
    "shared before expansion": _set(("body", 0, "kind"), "shared"),
    "non-canonical fact text": _set(("body", 1, "fact"), "edge(2, 3)"),
    "typed JSON const for an int": _set(("bindings", "X"), {"const": "1"}),
    "binding for a variable the rule lacks": _set(("bindings", "V"), 1),
    "binding for the anonymous variable": _set(("bindings", "_"), 1),
}


def test_checker_accepts_the_handwritten_proof() -> None:
    model = clingo_symbols(_PATH_SOURCE, _PATH_FACTS, shown=False)
    ProofChecker(_PATH_SOURCE, _PATH_FACTS, model).check("path(1,3)", _path_proof())


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_checker_rejects_corrupted_proofs(mutation: str) -> None:
    model = clingo_symbols(_PATH_SOURCE, _PATH_FACTS, shown=False)
    proof = copy.deepcopy(_path_proof())
    MUTATIONS[mutation](proof)
    with pytest.raises(ProofError):
        ProofChecker(_PATH_SOURCE, _PATH_FACTS, model).check("path(1,3)", proof)


def _rule_node(fact: str, text: str, bindings: dict[str, Any], body: list[Any]) -> dict[str, Any]:
    return {
        "fact": fact,
        "kind": "rule",
        "rule": {"index": 0, "line": 1, "text": text},
        "bindings": bindings,
        "body": body,
    }


# Proofs of facts that do not follow, checked against a made-up model that
# contains them: the checker must find the false literal itself.
FALSE_LITERALS: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "negated atom present": (
        "p :- not q(1).",
        ["p", "q(1)"],
        _rule_node("p", "p :- not q(1).", {}, [{"kind": "negation", "literal": "not q(1)", "atom": "q(1)"}]),
    ),
    "anonymous negation matches": (
        "p :- not q(_).",
        ["p", "q(1)"],
        _rule_node("p", "p :- not q(_).", {}, [{"kind": "negation", "literal": "not q(_)", "atom": "q(_)"}]),
    ),
    "comparison false": (
        "p(X) :- e(X), X > 2.",
        ["e(1)", "p(1)"],
        _rule_node(
            "p(1)",
            "p(X) :- e(X), X > 2.",
            {"X": 1},
            [
                {"fact": "e(1)", "kind": "input"},
                {"kind": "comparison", "literal": "X > 2", "evaluated": "1 > 2"},
            ],
        ),
    ),
    "mixed-type comparison false": (
        'p(X) :- e(X), X > "a".',
        ["e(1)", "p(1)"],
        _rule_node(
            "p(1)",
            'p(X) :- e(X), X > "a".',
            {"X": 1},
            [
                {"fact": "e(1)", "kind": "input"},
                {"kind": "comparison", "literal": 'X > "a"', "evaluated": '1 > "a"'},
            ],
        ),
    ),
    "division by zero": (
        "p(Y) :- e(X), Y = 1/X.",
        ["e(0)", "p(0)"],
        _rule_node(
            "p(0)",
            "p(Y) :- e(X), Y = 1/X.",
            {"X": 0, "Y": 0},
            [
                {"fact": "e(0)", "kind": "input"},
                {"kind": "assignment", "literal": "Y = 1/X", "variable": "Y", "value": 0},
            ],
        ),
    ),
    "aggregate guard false": (
        "p :- #count{ X : e(X) } > 1.",
        ["e(1)", "p"],
        _rule_node(
            "p",
            "p :- #count{ X : e(X) } > 1.",
            {},
            [
                {
                    "kind": "aggregate",
                    "literal": "#count{ X : e(X) } > 1",
                    "function": "count",
                    "value": 1,
                    "elements": [{"tuple": [1], "facts": ["e(1)"]}],
                    "total_elements": 1,
                    "truncated": False,
                }
            ],
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(FALSE_LITERALS))
def test_checker_rejects_false_literals(case: str) -> None:
    source, atoms, proof = FALSE_LITERALS[case]
    facts = {"e": [[int(atom[2:-1])] for atom in atoms if atom.startswith("e(")]}
    checker = ProofChecker(source + "\n", facts, [clingo.parse_term(atom) for atom in atoms])
    with pytest.raises(ProofError, match=r"false|undefined"):
        checker.check(proof["fact"], proof)


def test_checker_rejects_a_circular_proof() -> None:
    source = "p(X) :- q(X).\nq(X) :- p(X).\nq(1).\n"
    model = clingo_symbols(source, {}, shown=False)
    checker = ProofChecker(source, {}, model)
    rule_p = {"index": 0, "line": 1, "text": "p(X) :- q(X)."}
    rule_q = {"index": 1, "line": 2, "text": "q(X) :- p(X)."}
    circular = {
        "fact": "p(1)",
        "kind": "rule",
        "rule": rule_p,
        "bindings": {"X": 1},
        "body": [
            {
                "fact": "q(1)",
                "kind": "rule",
                "rule": rule_q,
                "bindings": {"X": 1},
                "body": [{"fact": "p(1)", "kind": "shared"}],
            }
        ],
    }
    with pytest.raises(ProofError, match=r"shared|ancestor"):
        checker.check("p(1)", circular)
    good = {
        "fact": "p(1)",
        "kind": "rule",
        "rule": rule_p,
        "bindings": {"X": 1},
        "body": [{"fact": "q(1)", "kind": "ruleset_fact"}],
    }
    checker.check("p(1)", good)


# issue 13 item 3: names starting with ``_`` are named variables (only ``_`` is
# anonymous), so a step of ``q(_Z) :- r(_Z,_).`` must bind ``_Z``.
UNDERSCORE_SOURCE = "q(_Z) :- r(_Z,_).\np(_A, _B) :- r(_A, _B), _A < _B.\n"
UNDERSCORE_FACTS = {"r": [[1, 2]]}


@pytest.mark.parametrize(
    ("atom", "rule", "bindings", "body"),
    [
        (
            "q(1)",
            {"index": 0, "line": 1, "text": "q(_Z) :- r(_Z,_)."},
            {},
            [{"fact": "r(1,2)", "kind": "input"}],
        ),
        (
            "p(1,2)",
            {"index": 1, "line": 2, "text": "p(_A,_B) :- r(_A,_B); _A < _B."},
            {"_A": 1},
            [
                {"fact": "r(1,2)", "kind": "input"},
                {"kind": "comparison", "literal": "_A < _B", "evaluated": "1 < 2"},
            ],
        ),
    ],
    ids=["empty-bindings", "one-of-two-missing"],
)
def test_checker_rejects_proofs_without_underscore_bindings(
    atom: str, rule: dict[str, Any], bindings: dict[str, Any], body: list[Any]
) -> None:
    model = clingo_symbols(UNDERSCORE_SOURCE, UNDERSCORE_FACTS, shown=False)
    checker = ProofChecker(UNDERSCORE_SOURCE, UNDERSCORE_FACTS, model)
    proof = {"fact": atom, "kind": "rule", "rule": rule, "bindings": bindings, "body": body}
    with pytest.raises(ProofError, match="no binding for"):
        checker.check(atom, proof)
    complete = {**proof, "bindings": {"_Z": 1} if atom == "q(1)" else {"_A": 1, "_B": 2}}
    checker.check(atom, complete)


def test_engine_proofs_bind_underscore_variables() -> None:
    """The engine side of the same promise (prove.py must keep ``_Z``)."""
    model = clingo_symbols(UNDERSCORE_SOURCE, UNDERSCORE_FACTS, shown=False)
    checker = ProofChecker(UNDERSCORE_SOURCE, UNDERSCORE_FACTS, model)
    result = reasoning.compile(UNDERSCORE_SOURCE).evaluate(UNDERSCORE_FACTS, ["q(X)", "p(X,Y)"], explain=True)
    for query in result.answers:
        for answer in query.answers:
            checker.check(answer.atom, answer.proof)
