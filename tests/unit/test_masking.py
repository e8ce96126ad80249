"""Masking: the clear values of masked predicates are replaced everywhere in a case."""

from __future__ import annotations

import json

from entail import reasoning
from entail.masking import is_masked, mask_case, mask_facts, mask_value

SOURCE = "adult(P) :- age(P, A), A >= 18, ssn(P, _). #defined age/2. #defined ssn/2."


def test_mask_facts_masks_the_rows_and_every_other_occurrence() -> None:
    facts = {"ssn": [["ann", "123"]], "age": [["ann", 30], ["bob", 40]], "ssn3": [["a", "b", "c"]]}
    masked = mask_facts(facts, ["ssn/2"], "k1")
    ann, ssn = mask_value("ann", "k1"), mask_value("123", "k1")
    assert masked["ssn"] == [[ann, ssn]]
    assert masked["age"] == [[ann, 30], ["bob", 40]]  # the join on ann survives, bob is not masked
    assert masked["ssn3"] == facts["ssn3"]  # another arity is another predicate
    assert all(is_masked(v) and len(v) == 12 + 64 for v in masked["ssn"][0])
    assert masked == mask_facts(facts, ["ssn/2"], "k1")  # equal values stay equal
    assert masked != mask_facts(facts, ["ssn/2"], "k2")  # and depend on the secret
    assert facts["ssn"] == [["ann", "123"]]  # the input is not modified
    assert mask_facts(masked, ["ssn/2"], "k1") == masked  # masking twice is masking once
    # a string and an integer that print alike are different values
    assert mask_value("7", "k1") != mask_value(7, "k1")


def test_queries_with_a_masked_constant_are_rewritten() -> None:
    facts = {"ssn": [["ann", 123456789]], "age": [["ann", 30]]}
    case = mask_case(facts, ['ssn("ann", S)', "ssn(P, 123456789)", "age(P, A)", "bad("], ["ssn/2"], "k")
    ann, num = mask_value("ann", "k"), mask_value(123456789, "k")
    assert case.query[0] == f'ssn("{ann}", S)'
    assert case.query[1] == f'ssn(P, "{num}")'
    assert case.query[2:] == ["age(P, A)", "bad("]  # unchanged, including what does not parse
    assert "123456789" not in json.dumps(case.facts) + json.dumps(case.query)


def test_the_engine_answers_masked_values_in_answers_bindings_and_proofs() -> None:
    facts = {"age": [["ann", 30]], "ssn": [["ann", "987-65-4329"]]}
    case = mask_case(facts, ["adult(P)", "ssn(P, S)", 'ssn("ann", S)'], ["ssn/2"], "k")
    result = reasoning.compile(SOURCE).evaluate(case.facts, case.query, explain=True)
    dumped = json.dumps([q.to_json() for q in result.answers])
    assert "987-65-4329" not in dumped and '"ann"' not in dumped
    adult, ssn, by_name = (q.to_json()["answers"] for q in result.answers)
    assert adult[0]["bindings"]["P"] == mask_value("ann", "k")  # the join worked on the masks
    assert ssn[0]["bindings"]["S"] == mask_value("987-65-4329", "k")
    # a query with the clear constant finds the masked row
    assert [a["atom"] for a in by_name] == [a["atom"] for a in ssn]


def test_no_masked_predicates_is_the_identity() -> None:
    facts = {"ssn": [["ann", "1"]]}
    case = mask_case(facts, ['ssn("ann", S)'], [], "k")
    assert case.facts == facts and case.query == ['ssn("ann", S)']
