"""Every why-not explanation Entail gives for a random program checks out against clingo's model."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from typing import Any

import clingo
import jsonschema
import pytest
from clingo import ast
from hypothesis import given, settings

from entail import reasoning
from entail.reasoning.why_not import WhyNotBounds, WhyNotError, explain_absent, why_not_schema

from .clingo_ref import clingo_symbols, fact_symbols
from .programs import SETTINGS, Program, example_count, stratified_programs
from .proof_checker import ProofError, _head_atom, parse_statements
from .why_not_checker import WhyNotChecker

ATOMS_PER_PROGRAM = 3
VALIDATOR = jsonschema.Draft202012Validator(why_not_schema())


def absent_atoms(program: Program, model: list[clingo.Symbol], rng: random.Random) -> list[clingo.Symbol]:
    """Atoms of the program's head predicates, over the constants of its model and facts,
    that clingo's model lacks (plus one of a predicate nothing derives, now and then)."""
    values = sorted(
        {arg for atom in [*model, *fact_symbols(program.facts)] for arg in atom.arguments}
        - {clingo.Infimum, clingo.Supremum}  # no program or query can write them
    )
    heads = sorted(
        {
            (_head_atom(s).name, len(_head_atom(s).arguments))
            for s in parse_statements(program.source)
            if s.ast_type == ast.ASTType.Rule and s.body
        }
    )
    held = set(model)
    found: list[clingo.Symbol] = []
    for name, arity in rng.sample(heads, len(heads)):
        if arity > 4 or (arity and not values):
            continue
        candidates = (clingo.Function(name, [rng.choice(values) for _ in range(arity)]) for _ in range(12))
        for atom in itertools.islice((a for a in candidates if a not in held), 1):
            found.append(atom)
        if len(found) == ATOMS_PER_PROGRAM:
            break
    if rng.random() < 0.2:
        found.append(clingo.Function("never_defined_", [clingo.Number(1)]))
    return found


@settings(SETTINGS, max_examples=example_count(300))
@given(stratified_programs())
def test_why_not_checks_against_clingo(program: Program) -> None:
    model = clingo_symbols(program.source, program.facts, shown=False)
    result = reasoning.compile(program.source).evaluate(program.facts)
    checker = WhyNotChecker(program.source, program.facts, model)
    rng = random.Random(hashlib.sha256(program.source.encode()).digest())
    for atom in absent_atoms(program, model, rng):
        explanation = explain_absent(result, str(atom), WhyNotBounds(depth=2, breadth=2, steps=2_000))
        document = explanation.to_json()
        assert document["schema"] == "entail.why_not.v1"
        assert document["atom"] == str(atom)
        VALIDATOR.validate(document)
        try:
            checker.check(document)
        except ProofError as error:
            pytest.fail(
                f"bad why-not for {atom}: {error}\n{program.describe()}\n--- why-not ---\n"
                f"{json.dumps(document, indent=1, ensure_ascii=False)}"
            )
        assert explanation.render_text().startswith(f"why not {atom}:")


@settings(SETTINGS, max_examples=example_count(40))
@given(stratified_programs())
def test_why_not_of_an_atom_that_holds_is_refused(program: Program) -> None:
    model = clingo_symbols(program.source, program.facts, shown=False)
    result = reasoning.compile(program.source).evaluate(program.facts)
    for atom in model[:3]:
        with pytest.raises(WhyNotError, match="holds in the model"):
            explain_absent(result, str(atom))


# The checker catches what it claims to: corruptions of a real explanation fail it.

_SOURCE = """
ok(X) :- cand(X), score(X, S), S > 5, not banned(X).
ok(X) :- vip(X).
"""
_FACTS: dict[str, list[list[int | str]]] = {
    "cand": [["a"], ["b"]],
    "score": [["a", 3], ["b", 9]],
    "banned": [["b"]],
}


def _explained(atom: str) -> tuple[WhyNotChecker, dict[str, Any]]:
    model = clingo_symbols(_SOURCE, _FACTS, shown=False)
    result = reasoning.compile(_SOURCE).evaluate(_FACTS)
    return WhyNotChecker(_SOURCE, _FACTS, model), explain_absent(result, atom).to_json()


def test_checker_accepts_the_engine_and_rejects_corruptions() -> None:
    checker, good = _explained('ok("a")')
    checker.check(good)
    failure = good["rules"][0]["failures"][0]
    assert failure["kind"] == "comparison_false" and failure["evaluated"] == "3 > 5"
    corruptions = []
    c = json.loads(json.dumps(good))
    c["rules"] = c["rules"][:1]  # a unifying rule left out
    corruptions.append(c)
    c = json.loads(json.dumps(good))
    c["rules"][0]["failures"][0]["evaluated"] = "3 > 2"
    corruptions.append(c)
    c = json.loads(json.dumps(good))
    c["rules"][0]["failures"][0]["bindings"]["S"] = 9  # a false comparison that is true
    corruptions.append(c)
    c = json.loads(json.dumps(good))
    c["rules"][1]["failures"][0]["atom"] = "vip(1)"
    c["rules"][1]["failures"][0]["bindings"] = {"X": "b"}  # loses the head binding
    corruptions.append(c)
    c = json.loads(json.dumps(good))
    c["atom"], c["args"] = 'ok("b")', ["b"]  # rules then unify with other bindings
    corruptions.append(c)
    for bad in corruptions:
        with pytest.raises(ProofError):
            checker.check(bad)
    checker, good_b = _explained('ok("b")')
    checker.check(good_b)
    negation = good_b["rules"][0]["failures"][0]
    assert negation["kind"] == "negation_holds" and negation["witness"] == 'banned("b")'
    c = json.loads(json.dumps(good_b))
    c["rules"][0]["failures"][0]["witness"] = 'banned("a")'
    with pytest.raises(ProofError):
        checker.check(c)
