"""Random stratified programs (the differential generator, fixed seed): the SQL path on
DuckDB gives clingo's model, and agrees with the online engine on every predicate."""

from __future__ import annotations

import pytest
from differential.clingo_ref import clingo_all_atoms
from differential.programs import SETTINGS, Program, stratified_programs
from hypothesis import given, settings

from entail import reasoning

from .harness import atoms, sql_model

EXAMPLES = 120  # about 15 s on one core; the corpus covers each feature on its own


@pytest.mark.slow
@settings(SETTINGS, max_examples=EXAMPLES)
@given(stratified_programs())
def test_sql_model_equals_clingo(program: Program) -> None:
    rs = reasoning.compile(program.source)
    names = {name for name, _ in rs.analysis.signatures}
    model, _ = sql_model(program.source, program.facts, all_predicates=True)
    actual = atoms(model)
    expected = [a for a in clingo_all_atoms(program.source, program.facts) if a.split("(")[0] in names]
    if actual != expected:
        engine = sorted(a for a in rs.evaluate(program.facts).model_atoms() if a.split("(")[0] in names)
        culprit = "the SQL path" if engine == expected else "the online engine (and maybe the SQL path)"
        pytest.fail(
            f"SQL model differs from clingo's; the bug is in {culprit}\n{program.describe()}"
            f"missing: {sorted(set(expected) - set(actual))}\nextra: {sorted(set(actual) - set(expected))}"
        )
