"""Why-not explanations: each failure kind, nesting, its bounds, cycles, errors, text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from entail import reasoning
from entail.reasoning.why_not import (
    SCHEMA,
    WhyNot,
    WhyNotBounds,
    WhyNotError,
    explain_absent,
    why_not_json,
    why_not_schema,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "entail" / "examples"
LOAN_SOURCE = (EXAMPLES / "loan" / "program.lp").read_text()

# a declined applicant: a recent default, and a request beyond 4x income
DECLINED = {
    "applicant": [["dee"]],
    "income": [["dee", 2000000, "salary"]],
    "debt": [["dee", 100000, "card"]],
    "credit_event": [["dee", "default", 2023]],
    "requested": [["dee", 9000000]],
    "employment": [["dee", 30]],
}


def _why(source: str, facts: dict[str, Any], atom: str, **bounds: int) -> WhyNot:
    result = reasoning.compile(source).evaluate(facts)
    return explain_absent(result, atom, WhyNotBounds(**bounds))


def test_loan_why_not_approved_cites_declined_and_the_reasons_for_stable_job() -> None:
    why = _why(LOAN_SOURCE, DECLINED, 'decision("dee",approved)')
    doc = why.to_json()
    assert doc["schema"] == SCHEMA and doc["holds"] is False and doc["source"] == "derived"
    [rule] = doc["rules"]  # only the approved rule's head unifies (declined/referred differ)
    assert rule["rule"]["text"].startswith("decision(A, approved)")
    assert rule["head_bindings"] == {"A": "dee"}
    [failure] = rule["failures"]
    assert failure["kind"] == "negation_holds"
    assert failure["literal"] == "not declined(A)"
    assert failure["witness"] == 'declined("dee")'
    text = why.render_text()
    assert 'why not decision("dee",approved):' in text
    assert 'declined("dee") holds' in text


def test_missing_input_fact_comparison_and_nested_derived_atom() -> None:
    source = """
    ok(X) :- cand(X), score(X, S), S > 5.
    ok(X) :- vip(X), good(X).
    good(X) :- ref(X, R), R >= 2.
    """
    facts = {"cand": [["a"]], "score": [["a", 3], ["a", 4]], "vip": [["a"]], "ref": [["a", 1]]}
    doc = _why(source, facts, 'ok("a")').to_json()
    first, second = doc["rules"]
    assert [f["evaluated"] for f in first["failures"]] == ["3 > 5", "4 > 5"]
    assert first["total_failures"] == 2 and first["complete"] is True
    [missing] = second["failures"]
    assert missing["kind"] == "missing" and missing["atom"] == 'good("a")'
    assert missing["source"] == "derived"
    nested = missing["why_not"]
    assert "schema" not in nested and nested["atom"] == 'good("a")'
    assert nested["rules"][0]["failures"][0]["evaluated"] == "1 >= 2"
    doc_b = _why(source, facts, 'ok("b")').to_json()
    assert doc_b["rules"][0]["failures"][0] == {
        "position": 0,
        "literal": "cand(X)",
        "kind": "missing",
        "bindings": {"X": "b"},
        "atom": 'cand("b")',
        "args": ["b"],
        "source": "input",
    }


def test_aggregate_guard_reports_its_value() -> None:
    source = "busy(X) :- person(X), #count{ T : task(X, T) } >= 3."
    doc = _why(source, {"person": [["a"]], "task": [["a", 1], ["a", 2]]}, 'busy("a")').to_json()
    [failure] = doc["rules"][0]["failures"]
    assert failure["kind"] == "aggregate_false"
    assert failure["value"] == 2 and failure["evaluated"] == "2 >= 3"


def test_partially_bound_missing_atom_keeps_its_variables() -> None:
    doc = _why("p(X) :- q(X, Y), r(Y).", {"q": [[1, 2]], "r": [[3]]}, "p(1)").to_json()
    [failure] = doc["rules"][0]["failures"]
    assert failure["atom"] == "r(2)"
    doc = _why("p(X) :- q(X, Y).", {"q": [[2, 2]]}, "p(1)").to_json()
    assert doc["rules"][0]["failures"][0]["atom"] == "q(1,Y)"
    assert doc["rules"][0]["failures"][0]["args"] == [1, None]


def test_no_rule_at_all_and_no_matching_head() -> None:
    doc = _why("p(1) :- q.", {}, "nothing(1,2)").to_json()
    assert doc["message"] == "no rule derives nothing/2 and it is not among the facts"
    assert doc["rules"] == [] and doc["source"] == "input"
    doc = _why("p(1) :- q.", {}, "p(2)").to_json()
    assert doc["message"] == "no rule for p/1 has a head that matches p(2)"


def test_an_atom_that_holds_or_is_not_ground_is_refused() -> None:
    result = reasoning.compile("p(X) :- q(X).").evaluate({"q": [[1]]})
    with pytest.raises(WhyNotError, match="holds in the model"):
        explain_absent(result, "p(1)")
    with pytest.raises(WhyNotError, match="has a variable"):
        explain_absent(result, "p(X)")
    with pytest.raises(WhyNotError, match="column"):
        explain_absent(result, "p(1")


def _depth(doc: dict[str, Any]) -> int:
    nested = [f["why_not"] for r in doc["rules"] for f in r["failures"] if f.get("why_not") is not None]
    return 1 + max((_depth(n) for n in nested), default=0)


def _children(doc: dict[str, Any]) -> int:
    return sum(1 for r in doc["rules"] for f in r["failures"] if f.get("why_not") is not None)


CHAIN = "\n".join(f"p{i}(X) :- p{i + 1}(X)." for i in range(10)) + "\np10(X) :- base(X)."
WIDE = (
    "\n".join(f"top(X) :- w{i}(X)." for i in range(8))
    + "\n"
    + "\n".join(f"w{i}(X) :- base{i}(X)." for i in range(8))
)


@pytest.mark.parametrize("depth", [0, 1, 3, 5])
def test_depth_bound_holds(depth: int) -> None:
    doc = _why(CHAIN, {}, "p0(1)", depth=depth).to_json()
    assert _depth(doc) == depth + 1
    assert json.dumps(doc).count('"truncated": true') == 1


@pytest.mark.parametrize("breadth", [0, 2, 5])
def test_breadth_bound_holds(breadth: int) -> None:
    doc = _why(WIDE, {}, "top(1)", breadth=breadth).to_json()
    assert len(doc["rules"]) == 8
    assert _children(doc) == breadth
    assert doc.get("truncated") is True


def test_failures_per_rule_are_capped_but_counted() -> None:
    facts = {"q": [[1, i] for i in range(20)]}
    why = _why("p(X) :- q(X, Y), Y > 100.", facts, "p(1)", failures=3)
    [rule] = why.rules
    assert len(rule.failures) == 3 and rule.total_failures == 20
    assert "… 17 more partial match(es) fail" in why.render_text()


def test_step_budget_marks_the_rule_incomplete() -> None:
    facts = {"q": [[1, i] for i in range(50)], "r": [[i] for i in range(50)]}
    why = _why("p(X) :- q(X, Y), r(Z), Y > Z + 100.", facts, "p(1)", steps=100)
    assert why.rules[0].complete is False
    assert "step limit" in why.render_text()


def test_step_budget_inside_an_aggregate_makes_no_claim_about_it() -> None:
    facts = {"q": [[1]], "t": [[i] for i in range(500)]}
    why = _why("p(X) :- q(X), #count{ Y : t(Y) } > 1000.", facts, "p(1)", steps=100)
    assert why.rules[0].complete is False and why.rules[0].failures == []
    why = _why("p(X) :- q(X), #count{ Y : t(Y) } > 1000.", facts, "p(1)")
    assert why.rules[0].complete is True and why.rules[0].failures[0].evaluated == "500 > 1000"


def test_cycles_are_cut() -> None:
    source = "a(X) :- b(X).\nb(X) :- a(X).\nb(X) :- c(X)."
    doc = _why(source, {}, "a(1)", depth=10).to_json()
    nested_b = doc["rules"][0]["failures"][0]["why_not"]
    assert nested_b["atom"] == "b(1)"
    cyclic = nested_b["rules"][0]["failures"][0]
    assert cyclic["atom"] == "a(1)" and cyclic["cycle"] is True and "why_not" not in cyclic
    assert "is being explained above" in _why(source, {}, "a(1)").render_text()


def test_computed_head_and_solved_arithmetic() -> None:
    doc = _why("p(X+1) :- s(X).", {"s": [[2]]}, "p(5)").to_json()
    [failure] = doc["rules"][0]["failures"]
    assert failure["kind"] == "head_mismatch" and failure["evaluated"] == "p(3)"
    doc = _why("p(Y) :- t(Y), s(Y+1).", {"t": [[1]], "s": [[5]]}, "p(1)").to_json()
    assert doc["rules"][0]["failures"][0]["atom"] == "s(2)"
    doc = _why("p(Y) :- s(2*X), Y = X.", {"s": [[6]]}, "p(1)").to_json()
    assert doc["rules"][0]["failures"][0]["evaluated"] == "1 = 3"


def test_documents_conform_to_the_schema_and_the_schema_rejects_others() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(why_not_schema())
    result = reasoning.compile(LOAN_SOURCE).evaluate(DECLINED)
    for atom in ('decision("dee",approved)', 'stable_job("dee")', "nothing(1)", 'decision("dee",declined)'):
        validator.validate(why_not_json(result, atom))
    good = why_not_json(result, 'decision("dee",approved)')
    assert not validator.is_valid({**good, "holds": True})
    assert not validator.is_valid({k: v for k, v in good.items() if k != "schema"})
    bad_failure = json.loads(json.dumps(good))
    del bad_failure["rules"][0]["failures"][0]["witness"]
    assert not validator.is_valid(bad_failure)


def test_a_negation_that_holds_cites_the_reasons_of_its_witness() -> None:
    import jsonschema

    result = reasoning.compile(LOAN_SOURCE).evaluate(DECLINED, ["decision(A, D)"])
    why = explain_absent(result, 'decision("dee",approved)')
    [failure] = why.rules[0].failures
    assert failure.reasons is not None
    assert [r["code"] for r in failure.reasons] == ["L03", "L04"]
    assert failure.reasons[0]["message"] == "A loan default was recorded in 2023"
    assert "reason L03: A loan default was recorded in 2023" in why.render_text()
    jsonschema.Draft202012Validator(why_not_schema()).validate(why.to_json())
    # without templates (or without provenance) there is nothing to cite
    plain = reasoning.compile(LOAN_SOURCE).evaluate(DECLINED)
    assert "reasons" not in explain_absent(plain, 'decision("dee",approved)').rules[0].failures[0].to_json()
