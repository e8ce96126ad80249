"""Entail's model equals clingo's unique answer set on random stratified programs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import pytest
from clingo import ast
from hypothesis import given, settings

from entail import reasoning

from .clingo_ref import clingo_model, fact_symbols
from .programs import SETTINGS, Program, stratified_programs


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


@settings(SETTINGS, max_examples=200)
@given(stratified_programs())
def test_generated_programs_are_valid_for_clingo(program: Program) -> None:
    """Generator sanity: clingo grounds it to exactly one model, one arity per name."""
    clingo_model(program.source, program.facts)
    arities = _signatures(program)
    clashes = {name: found for name, found in arities.items() if len(found) > 1}
    assert not clashes, f"arity clash {clashes}\n{program.describe()}"
    assert set(program.predicates) == {(n, a) for n, found in arities.items() for a in found}


@settings(SETTINGS, max_examples=500)
@given(stratified_programs())
def test_model_equals_clingo(program: Program) -> None:
    expected = clingo_model(program.source, program.facts)
    try:
        result = reasoning.compile(program.source).evaluate(program.facts)
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
