"""What runs in the compute pool (entail.compute.tasks), called directly: plain
data in and out, engine errors as data, the given limits (never library defaults)."""

from __future__ import annotations

from entail.compute import tasks

LIMITS = {"derived_facts": 1000, "wall_time_ms": 1000, "input_facts": 100, "program_bytes": 10_000}
V1 = "flag(X) :- amount(X, A), A > 100. #defined amount/2."
V2 = "flag(X) :- amount(X, A), A > 200. #defined amount/2."


def test_example_cases_pass_fail_or_are_invalid() -> None:
    ok = {"name": "ok", "facts": {"amount": [["a", 150]]}, "expect": {"flag(X)": ['flag("a")']}}
    bad = {"name": "bad", "facts": {"amount": [["a", 50]]}, "expect": {"flag(X)": ['flag("a")']}}
    out = tasks.compile_and_test(V1, "r.lp", [ok, bad], LIMITS)
    assert out == {
        "failures": [{"name": "bad", "problems": ['?- flag(X): missing flag("a")']}],
        "datasets": [],  # the %@dataset names the publish binds
    }
    declares = "%@dataset org: manages(const, const).\nup(X) :- manages(X, _)."
    assert tasks.compile_and_test(declares, "r.lp", [], LIMITS)["datasets"] == ["org"]
    assert "invalid_tests" in tasks.compile_and_test(V1, "r.lp", [{"name": "x", "nope": 1}], LIMITS)
    error = tasks.compile_and_test("p(X) :- .", "r.lp", [], LIMITS)["error"]
    assert error["kind"] == "program" and error["diagnostics"][0]["rendered"].startswith("r.lp:1:")


def test_the_given_limits_apply() -> None:
    facts = {"amount": [[f"c{i}", i] for i in range(101)]}
    error = tasks.evaluate(V1, "r.lp", facts, [], False, LIMITS)["error"]
    assert (error["code"], error["limit"], error["value"]) == ("limit-input-facts", 100, 101)
    case = {"name": "big", "facts": facts, "expect": {}}
    [failure] = tasks.compile_and_test(V1, "r.lp", [case], LIMITS)["failures"]
    assert "input facts" in failure["problems"][0]


def test_impact_of_one_decision() -> None:
    facts = {"amount": [["a", 150]]}
    old = tasks.evaluate(V1, "r.lp", facts, ["flag(X)"], True, LIMITS)["answers"]
    assert tasks.impact_one("r", V1, None, facts, ["flag(X)"], old, LIMITS) == {"changed": False}
    changed = tasks.impact_one("r", V2, None, facts, ["flag(X)"], old, LIMITS)
    assert changed["changed"] and changed["new_answers"][0]["answers"] == []
    assert changed["rules_differ"] == ["flag(X) :- amount(X, A), A > 100."]
    # a decision stored without proofs: the version that decided explains the old answers
    bare = tasks.evaluate(V1, "r.lp", facts, ["flag(X)"], False, LIMITS)["answers"]
    assert tasks.impact_one("r", V2, None, facts, ["flag(X)"], bare, LIMITS)["rules_differ"] == []
    explained = tasks.impact_one("r", V2, V1, facts, ["flag(X)"], bare, LIMITS)
    assert explained["rules_differ"] == ["flag(X) :- amount(X, A), A > 100."]


def test_validate_lists_every_diagnostic() -> None:
    found = tasks.validate("p(X) :- q(Y).", "<program>")
    assert found and all({"line", "column", "severity", "rendered"} <= set(d) for d in found)
