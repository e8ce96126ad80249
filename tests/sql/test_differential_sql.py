"""Random stratified programs (the differential generator, fixed seed): the SQL path on
DuckDB gives clingo's model, and agrees with the online engine on every predicate.

Bounded for ``make test``: about 25 s for the default examples on two busy cores
(each program is dozens of small DuckDB statements). A failing example is reported
as drawn, without shrinking: the SQL path runs each candidate for about half a
second, so hypothesis' shrinking could outlast pytest's 300 s timeout and lose
the report. ``ENTAIL_DIFFERENTIAL_EXAMPLES`` raises the count for a run by hand;
``python -m tests.sql.hunt_sql`` keeps going past disagreements (docs/batch.md).
"""

from __future__ import annotations

import pytest
from differential.clingo_ref import clingo_all_atoms
from differential.programs import SETTINGS, Program, example_count, stratified_programs
from hypothesis import Phase, given, settings

from entail import reasoning

from .harness import atoms, sql_model

EXAMPLES = example_count(60)
NO_SHRINK = settings(SETTINGS, phases=[Phase.explicit, Phase.generate])


@pytest.mark.slow
@settings(NO_SHRINK, max_examples=EXAMPLES)
@given(stratified_programs())
def test_sql_model_equals_clingo(program: Program) -> None:
    rs = reasoning.compile(program.source)
    names = {name for name, _ in rs.analysis.signatures}
    expected = [a for a in clingo_all_atoms(program.source, program.facts) if a.split("(")[0] in names]
    try:
        model, _ = sql_model(program.source, program.facts, all_predicates=True)
    except Exception as error:  # report the program, not only the SQL that failed
        pytest.fail(f"the SQL path raised {type(error).__name__}: {error}\n{program.describe()}")
    actual = atoms(model)
    if actual != expected:
        engine = sorted(a for a in rs.evaluate(program.facts).model_atoms() if a.split("(")[0] in names)
        culprit = "the SQL path" if engine == expected else "the online engine (and maybe the SQL path)"
        pytest.fail(
            f"SQL model differs from clingo's; the bug is in {culprit}\n{program.describe()}"
            f"missing: {sorted(set(expected) - set(actual))}\nextra: {sorted(set(actual) - set(expected))}"
        )
