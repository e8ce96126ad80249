"""Typed inputs are comments to clingo (issue 17 §1): a program with ``%@input``
declarations answers as clingo does on the same program, and a ``const`` column's
JSON strings answer as clingo does with those values written as constants."""

from __future__ import annotations

import json
from pathlib import Path

import clingo

from entail import reasoning

from .clingo_ref import _quiet, clingo_model

LOAN = Path(__file__).resolve().parents[2] / "shared/entail/examples/loan"

TYPED = """%@input employee(name: const).
%@input points(customer: string, points: int).
reports(bob, ann). reports(ann, cy).
manager(E, M) :- employee(E), reports(E, M).
grade(A, gold) :- points(A, P), P >= 100.
"""


def entail_model(source: str, facts: dict[str, list[list[int | str]]]) -> list[str]:
    return sorted(reasoning.compile(source).evaluate(facts).shown_atoms())


def test_the_loan_example_with_declarations_answers_as_clingo() -> None:
    source = (LOAN / "program.lp").read_text()
    assert reasoning.compile(source).declarations is not None
    facts = json.loads((LOAN / "ann.json").read_text())
    assert entail_model(source, facts) == sorted(clingo_model(source, facts))


def test_a_const_column_answers_as_clingo_with_constants() -> None:
    facts: dict[str, list[list[int | str]]] = {"employee": [["bob"], ["ann"]], "points": [["ann", 120]]}
    control = clingo.Control(["--warn=none"], logger=_quiet)
    control.add("base", [], TYPED + 'employee(bob). employee(ann). points("ann", 120).')
    control.ground([("base", [])])
    found: list[str] = []
    control.solve(on_model=lambda m: found.extend(str(s) for s in m.symbols(shown=True)))
    assert entail_model(TYPED, facts) == sorted(found)
    assert "manager(bob,ann)" in found and "manager(ann,cy)" in found
