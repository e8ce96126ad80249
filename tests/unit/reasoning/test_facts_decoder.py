"""The JSON facts decoder as a library function: named errors with JSON pointers, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from entail import reasoning
from entail.reasoning.facts import validate_facts


@pytest.mark.parametrize(
    ("facts", "path", "message"),
    [
        ({"e": [["\ud800"]]}, "/e/0/0", "lone surrogate U+D800"),
        ({"e": [[1], ["ok\udc00"]]}, "/e/1/0", "lone surrogate U+DC00 at character 2"),
        ({"e": [["a\x00"]]}, "/e/0/0", "NUL character"),
        ({"e": [["é\x00"]]}, "/e/0/0", "NUL character"),
        ({"not": [[1]]}, "/not", "'not' is a keyword"),
        ({"e": [[True]]}, "/e/0/0", "boolean true"),
        ({"e": [[False, 1]]}, "/e/0/0", "boolean false"),
        ({"e": [[1.0]]}, "/e/0/0", "number 1.0 (not an integer)"),
        ({"e": [[None]]}, "/e/0/0", "null"),
        ({"e": [[(1, 2)]]}, "/e/0/0", "a value of type tuple"),
        ({"e": [[10**5000]]}, "/e/0/0", "a very large integer does not fit in 32 bits"),
        ({"e": [[-(2**31) - 1]]}, "/e/0/0", "integer -2147483649 does not fit in 32 bits"),
        ({"e": [[[1]]]}, "/e/0/0", "a nested list"),
        ({"e": [{"a": 1}]}, "/e/0", "expected a list of arguments, got an object"),
        ({"e": True}, "/e", "boolean true"),
        ({"a/b~c": [[1]]}, "/a~1b~0c", "not a predicate name"),
        ({"\ud800": [[1]]}, "", "a predicate name contains a lone surrogate"),
        ({1: [[1]]}, "", "integer 1 is not a predicate name"),
    ],
)
def test_bad_facts_raise_facts_error_with_pointer(facts: Any, path: str, message: str) -> None:
    with pytest.raises(reasoning.FactsError) as caught:
        reasoning.facts_from_json(facts)
    assert caught.value.path == path
    assert message in str(caught.value)
    str(caught.value).encode("utf-8")  # the message itself is printable: no surrogate leaks into it


def test_deep_and_cyclic_input_does_not_recurse() -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(100_000):
        child: list[Any] = []
        node.append(child)
        node = child
    with pytest.raises(reasoning.FactsError, match="/e/0/0: unsupported value: a nested list"):
        reasoning.facts_from_json({"e": [deep]})
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(reasoning.FactsError, match=r"/e/0/0: unsupported value: a nested list"):
        reasoning.facts_from_json({"e": [[cyclic]]})


def test_valid_facts_round_trip() -> None:
    facts = {"e": [[1, "a"], [-(2**31), "é"], [2**31 - 1, ""]], "flag": [[]], "none": []}
    decoded = reasoning.facts_from_json(facts)
    assert len(decoded) == 4
    assert decoded.to_json() == {
        "e": [[-(2**31), "é"], [1, "a"], [2**31 - 1, ""]],
        "flag": [[]],
    }


def test_validate_facts_checks_arities_and_the_input_limit() -> None:
    limits = reasoning.Limits(input_facts=3)
    assert len(validate_facts({"e": [[1], [2], [2]]}, {"e": 1}, limits)) == 2
    with pytest.raises(reasoning.FactsError) as caught:
        validate_facts({"e": [[1, 2]]}, {"e": 1}, limits)
    assert caught.value.path == "/e/0"
    assert "program uses 'e/1'" in str(caught.value)
    with pytest.raises(reasoning.InputFactsLimitExceeded) as limit:
        validate_facts({"e": [[i] for i in range(110_000)]}, {"e": 1}, limits)
    assert (limit.value.limit, limit.value.value) == (3, 4)  # stopped at the first fact over the limit
    with pytest.raises(reasoning.FactsError, match="/applicant/0: expected a list of arguments"):
        validate_facts({"applicant": [1]}, {"applicant": 1}, limits)
    # a name the ruleset does not use may have any arity, as at evaluation
    assert len(validate_facts({"other": [[1, 2, 3]]}, {"e": 1}, limits)) == 1


def test_evaluate_rejects_a_surrogate_with_a_pointer() -> None:
    rs = reasoning.compile("p(X) :- e(X).")
    with pytest.raises(reasoning.FactsError) as caught:
        rs.evaluate({"e": [["\ud800"]]})
    assert caught.value.path == "/e/0/0"
