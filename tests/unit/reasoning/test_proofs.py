"""Proof trees: each node kind, sharing, truncation, and the text rendering."""

from __future__ import annotations

from typing import Any

from entail import reasoning

LOAN = """
eligible(A) :- applicant(A), income(A, I), I >= 3000, not blocked(A).
blocked(A) :- applicant(A), flag(A, fraud).
flag("bob", fraud).
band(A, B) :- eligible(A), income(A, I), B = I / 1000.
accounts(A, N) :- applicant(A), N = #count{ K : account(A, K) }.
"""


def _proof(source: str, facts: dict[str, Any], query: str) -> dict[str, Any]:
    result = reasoning.compile(source).evaluate(facts, [query], explain=True)
    answers = result.answers[0].answers
    assert len(answers) == 1, [a.atom for a in answers]
    proof = answers[0].proof
    assert proof is not None
    return proof


def test_rule_node_with_input_comparison_and_negation() -> None:
    facts = {"applicant": [["ann"], ["bob"]], "income": [["ann", 4200], ["bob", 9000]]}
    proof = _proof(LOAN, facts, "eligible(A)")
    assert proof["fact"] == 'eligible("ann")'
    assert proof["kind"] == "rule"
    assert proof["rule"]["line"] == 2
    assert proof["rule"]["text"].startswith("eligible(A) :- applicant(A)")
    assert proof["bindings"] == {"A": "ann", "I": 4200}
    kinds = [child["kind"] for child in proof["body"]]
    assert kinds == ["input", "input", "comparison", "negation"]
    assert proof["body"][2] == {"kind": "comparison", "literal": "I >= 3000", "evaluated": "4200 >= 3000"}
    assert proof["body"][3] == {
        "kind": "negation",
        "literal": 'not blocked("ann")',
        "atom": 'blocked("ann")',
    }


def test_assignment_and_nested_rule_nodes() -> None:
    facts = {"applicant": [["ann"]], "income": [["ann", 4200]]}
    proof = _proof(LOAN, facts, "band(A, B)")
    assert proof["fact"] == 'band("ann",4)'
    eligible, income, assignment = proof["body"]
    assert eligible["kind"] == "rule"
    assert income == {"fact": 'income("ann",4200)', "kind": "input"}
    assert assignment == {"kind": "assignment", "literal": "B = I/1000", "variable": "B", "value": 4}


def test_aggregate_node_lists_contributing_facts_capped() -> None:
    accounts = [["ann", f"k{i}"] for i in range(30)]
    proof = _proof(LOAN, {"applicant": [["ann"]], "account": accounts}, "accounts(A, N)")
    aggregate = proof["body"][1]
    assert aggregate["kind"] == "aggregate"
    assert aggregate["function"] == "count"
    assert aggregate["value"] == 30
    assert aggregate["total_elements"] == 30
    assert aggregate["truncated"] is True
    assert len(aggregate["elements"]) == 20
    assert aggregate["elements"][0] == {"tuple": ["k0"], "facts": ['account("ann","k0")']}


def test_ruleset_facts_shared_nodes_and_well_foundedness() -> None:
    source = (
        "e(1,2). e(2,3). e(1,3).\nr(X,Y) :- e(X,Y).\nr(X,Z) :- r(X,Y), r(Y,Z).\nboth(X) :- r(1,X), r(X,3).\n"
    )
    proof = _proof(source, {}, "both(X)")
    seen: list[str] = []

    def walk(node: dict[str, Any], ancestors: tuple[str, ...]) -> None:
        if "fact" in node:
            assert node["fact"] not in ancestors, "a fact supports itself"
            if node["kind"] == "shared":
                assert node["fact"] in seen
            if node["kind"] == "rule":
                seen.append(node["fact"])
        for child in node.get("body", []):
            walk(child, (*ancestors, node.get("fact", "")))

    walk(proof, ())
    leaves = [c["kind"] for c in proof["body"][0]["body"]]
    assert leaves == ["ruleset_fact"]


def test_depth_cap_marks_truncated_nodes() -> None:
    source = "p(X, Y) :- e(X, Y).\np(X, Z) :- e(X, Y), p(Y, Z).\n"
    facts = {"e": [[i, i + 1] for i in range(30)]}
    result = reasoning.compile(source).evaluate(
        facts, ["p(0, 30)"], explain=True, limits=reasoning.Limits(proof_depth=5)
    )
    node = result.answers[0].answers[0].proof
    depth = 0
    while node and node["kind"] == "rule":
        node = node["body"][1]
        depth += 1
    assert depth == 5
    assert node is not None
    assert node["kind"] == "truncated"


def test_text_rendering_is_readable() -> None:
    facts = {"applicant": [["ann"]], "income": [["ann", 4200]]}
    proof = _proof(LOAN, facts, "band(A, B)")
    text = reasoning.render_proof(proof)
    assert text.splitlines()[0].startswith('band("ann",4)  [rule, line 5:')
    assert '    applicant("ann")  [case fact]' in text
    assert "  B = I/1000  [B = 4]" in text


def test_every_proof_conforms_to_the_published_schema() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(reasoning.proof_schema())
    facts = {
        "applicant": [["ann"], ["bob"]],
        "income": [["ann", 4200], ["bob", 100]],
        "account": [["ann", "k1"], ["ann", "k2"]],
    }
    result = reasoning.compile(LOAN).evaluate(
        facts, ["eligible(A)", "band(A, B)", "accounts(A, N)", "blocked(A)"], explain=True
    )
    proofs = [a.proof for q in result.answers for a in q.answers]
    assert len(proofs) == 5
    for proof in proofs:
        validator.validate(proof)


def test_folded_constants_keep_their_source_in_node_literals() -> None:
    # The parser folds -(-3) to 3, but a node's literal must be the rule's literal as
    # written: '3/8' is another literal than '-(-3) / 8' to a checker that parses both.
    cases = {
        "q(1). p(Z) :- q(X), Z = -(-3) / 8.": ("assignment", "Z = -(-3)/8", "p(0)"),
        "q(1). p(Z) :- q(X), Z = -(-2147483648)/8.": ("assignment", "Z = -(-2147483648)/8", "p(-268435456)"),
        "q(1). p(X) :- q(X), X < - ( - 3 ).": ("comparison", "X < - ( - 3 )", "p(1)"),
        "q(1). p(X) :- q(X), -(-(-1)) < X % c\n.": ("comparison", "-(-(-1)) < X", "p(1)"),
    }
    for source, (kind, literal, atom) in cases.items():
        proof = _proof(source, {}, "p(X)")
        assert proof["fact"] == atom
        node = proof["body"][1]
        assert (node["kind"], node["literal"]) == (kind, literal), source


def test_folded_constants_compare_equal_to_their_value() -> None:
    # the written form is for printing only: the rule is the same rule either way
    from entail.reasoning.parse import parse

    folded = parse("p(X) :- q(X), X = -(-3).").rules[0]
    plain = parse("p(X) :- q(X), X = 3.").rules[0]
    assert folded.body == plain.body


def test_a_proof_quotes_the_rule_as_written_inside_string_literals() -> None:
    """The rule text in a proof keeps a string literal's tabs and spaces (collapsing the
    source's whitespace made "tab\\tx  y" read "tab x y", a rule the program does not
    have) and leaves out a comment inside the rule (found by the differential split mode)."""
    from entail import reasoning

    source = 'p(X) :- e(X),   % why\n    X != "tab\tx  y".'
    rs = reasoning.compile(source)
    (answer,) = rs.evaluate({"e": [[1]]}, ["p(X)"], explain=True).answers[0].answers
    assert answer.proof is not None
    assert answer.proof["rule"]["text"] == 'p(X) :- e(X), X != "tab\tx  y".'
