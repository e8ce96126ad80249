"""The audit row's ``reason_codes``: the templates' codes when the ruleset has
reason templates, the answers' constants otherwise (audit/provenance.py)."""

from __future__ import annotations

from pathlib import Path

from entail import reasoning
from entail.audit import provenance

LOAN = (Path(reasoning.__file__).parent.parent / "examples" / "loan" / "program.lp").read_text()
EVE = {
    "applicant": [["eve"]],
    "income": [["eve", 100000, "salary"]],
    "debt": [["eve", 90000, "car"]],
    "requested": [["eve", 1000000]],
    "credit_event": [["eve", "default", 2024]],
    "employment": [["eve", 60]],
}
QUERIES = ["decision(A, D)", "reason(A, R)"]


def _answers(source: str) -> list[dict[str, object]]:
    return [q.to_json() for q in reasoning.compile(source).evaluate(EVE, QUERIES).answers]


def test_templated_ruleset_stores_the_reason_codes() -> None:
    used = provenance.of_answers(_answers(LOAN), explain=False)
    assert used.reason_codes == " L02 L03 L04 "
    assert provenance.token_filter("L03") in (used.reason_codes or "")
    # no proofs were asked for: rules and facts stay unknown
    assert used.rule_ids is None and used.fact_hashes is None


def test_without_templates_the_constants_stay() -> None:
    bare = "\n".join(line for line in LOAN.splitlines() if not line.startswith("%@"))
    used = provenance.of_answers(_answers(bare), explain=False)
    assert used.reason_codes == " declined high_dti recent_default too_large "


def test_templated_answers_without_reasons_cite_no_constants() -> None:
    answers = [{"query": "q", "answers": [{"atom": "q(a)", "args": [{"const": "a"}], "reasons": []}]}]
    assert provenance.of_answers(answers, explain=False).reason_codes == " "
