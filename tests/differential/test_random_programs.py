"""Entail's model equals clingo's unique answer set on random stratified programs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import clingo
import pytest
from clingo import ast
from hypothesis import given, settings

from entail import reasoning

from .clingo_ref import clingo_model, clingo_symbols, fact_symbols
from .programs import SETTINGS, Program, example_count, feature_histogram, stratified_programs
from .proof_checker import evaluate_term, parse_body_literal


def _signatures(program: Program) -> dict[str, set[int]]:
    """Arities of each predicate name in the source (via clingo's parser) and facts."""
    arities: dict[str, set[int]] = defaultdict(set)

    def visit(node: object) -> None:
        if isinstance(node, ast.AST):
            if node.ast_type == ast.ASTType.SymbolicAtom:
                symbol = node.symbol
                arities[symbol.name].add(len(symbol.arguments))
            for key in node.child_keys:
                visit(getattr(node, key))
        elif isinstance(node, Sequence) and not isinstance(node, str):
            for child in node:
                visit(child)

    ast.parse_string(program.source, visit)
    for symbol in fact_symbols(program.facts):
        arities[symbol.name].add(len(symbol.arguments))
    return arities


@settings(SETTINGS, max_examples=example_count(200))
@given(stratified_programs())
def test_generated_programs_are_valid_for_clingo(program: Program) -> None:
    """Generator sanity: clingo grounds it to exactly one model, one arity per name."""
    clingo_model(program.source, program.facts)
    arities = _signatures(program)
    clashes = {name: found for name, found in arities.items() if len(found) > 1}
    assert not clashes, f"arity clash {clashes}\n{program.describe()}"
    assert set(program.predicates) == {(n, a) for n, found in arities.items() for a in found}


def clingo_query_answers(query: str, atoms: Sequence[clingo.Symbol]) -> list[tuple[str, dict[str, str]]]:
    """The atoms of clingo's model that match ``query``, with the bindings of its variables."""
    symbol = parse_body_literal(query).atom.symbol
    answers: list[tuple[str, dict[str, str]]] = []
    for atom in atoms:
        if atom.name != symbol.name or len(atom.arguments) != len(symbol.arguments):
            continue
        bindings: dict[str, clingo.Symbol] = {}
        for term, value in zip(symbol.arguments, atom.arguments, strict=True):
            if term.ast_type == ast.ASTType.Variable:
                if term.name == "_":
                    continue
                if bindings.setdefault(term.name, value) != value:
                    break
            elif evaluate_term(term, {}) != value:
                break
        else:
            answers.append((str(atom), {name: str(value) for name, value in bindings.items()}))
    return sorted(answers)


def entail_term_text(value: object) -> str:
    """An engine term as clingo prints it (for comparing bindings)."""
    return reasoning.format_term(value)  # type: ignore[arg-type]


@settings(SETTINGS, max_examples=example_count(500))
@given(stratified_programs())
def test_model_equals_clingo(program: Program) -> None:
    expected = clingo_model(program.source, program.facts)
    try:
        result = reasoning.compile(program.source).evaluate(program.facts, program.queries)
    except reasoning.EntailError as error:
        details = "\n".join(d.render() for d in getattr(error, "diagnostics", ()))
        pytest.fail(f"Entail rejects a program clingo accepts: {error!r}\n{details}\n{program.describe()}")
    except Exception as error:
        raise AssertionError(f"Entail crashed: {error!r}\n{program.describe()}") from error
    actual = sorted(result.shown_atoms())
    if actual != expected:
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        pytest.fail(
            "Entail's shown atoms differ from clingo's\n"
            f"{program.describe()}"
            f"--- clingo ---\n{expected}\n--- entail ---\n{actual}\n"
            f"missing from entail: {missing}\nextra in entail: {extra}"
        )
    if program.queries:
        all_atoms = clingo_symbols(program.source, program.facts, shown=False)
        for query, answered in zip(program.queries, result.answers, strict=True):
            want = clingo_query_answers(query, all_atoms)
            got = sorted(
                (a.atom, {name: entail_term_text(v) for name, v in a.bindings.items()})
                for a in answered.answers
            )
            if got != want:
                pytest.fail(
                    f"answers to ?- {query} differ from clingo's model\n{program.describe()}"
                    f"--- clingo ---\n{want}\n--- entail ---\n{got}"
                )


def test_generator_reaches_every_feature() -> None:
    """The features of issue 13 occur in the first 150 programs of the default run."""
    programs: list[Program] = []

    @settings(SETTINGS, max_examples=150, database=None)
    @given(stratified_programs())
    def collect(program: Program) -> None:
        programs.append(program)

    collect()
    histogram = feature_histogram(programs)
    wanted = {
        "agg-guards-both-sides", "agg-empty-set", "aggregate-value-used", "inversion-after-blocked-argument",
        "int32-edges", "int32-wrapping-constant", "strings-escapes-unicode", "arity>3", "arity>=9",
        "keyword-like-names", "queries", "query-repeated-variable", "query-constant",
        "mutual-recursion", "nonlinear-recursion", "negation", "linear-in-body-atom",
    }  # fmt: skip
    assert wanted <= set(histogram), sorted(wanted - set(histogram))
