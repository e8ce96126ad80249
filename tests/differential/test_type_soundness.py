"""The type inference (entail.reasoning.type_infer) is sound on random programs:
every value the model holds has a kind the inference allows for its argument,
and a rule a type clash says never fires can be removed without changing the
model. A warning that claimed otherwise would send a user after a wrong cause."""

from __future__ import annotations

from hypothesis import given, settings

from entail import reasoning
from entail.reasoning.facts import facts_from_json
from entail.reasoning.type_infer import column_kinds, infer, kind_of

from .programs import SETTINGS, Program, example_count, stratified_programs


def _without_rule(rs: reasoning.Ruleset, index: int) -> str:
    kept = [r.text for r in rs.program.rules if r.index != index]
    return "\n".join(kept)


@settings(SETTINGS, max_examples=example_count(150))
@given(stratified_programs())
def test_inferred_kinds_cover_the_model_and_clashes_remove_nothing(program: Program) -> None:
    rs = reasoning.compile(program.source)
    facts = facts_from_json(program.facts)
    result = rs.evaluate(facts)
    inputs = {sig: column_kinds(rows, sig[1]) for sig, rows in facts.facts.items() if rows}
    kinds = infer(rs.program, rs.analysis.strata, rs.analysis.defined, inputs)
    for sig, allowed in kinds.items():
        for row in result.facts(*sig):
            for i, value in enumerate(row):
                assert kind_of(value) & allowed[i], (sig, i, value, allowed, program.source)
    clashes = [*rs._input_types.static_clashes, *rs._input_types.clashes(facts.facts)]
    model = result.model_atoms()
    for clash in {c.key[0]: c for c in clashes}.values():
        smaller = reasoning.compile(_without_rule(rs, clash.key[0]))
        assert smaller.evaluate(facts).model_atoms() == model, (clash.diagnostic.render(), program.source)
