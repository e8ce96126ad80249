"""Rules of one shape are planned and written once (compile time of large programs):
each rule instantiated from a shared shape must still read its own predicates,
constants and indexes, in plain and explaining code."""

from __future__ import annotations

from entail import reasoning
from entail.reasoning.parse import parse
from entail.reasoning.shapes import rule_shape

# same shape, differing in predicates and constants of every kind; the negations
# and constant arguments read through index slots, and 'seen' repeats a constant
PROGRAM = """
a(X) :- e(X, Y), n(Y, 1), not blocked(X, "k1").
b(X) :- f(X, Y), m(Y, 2), not held(X, "k2").
c(X) :- e(X, Y), n(Y, two), not blocked(X, k3).
seen(X) :- e(X, 1), n(X, 1).
seen2(X) :- f(X, 2), m(X, 2).
"""
FACTS = {
    "e": [[1, 1], [2, 2], [3, "two"]],
    "n": [[1, 1], [2, 1], ["two", "two"]],
    "f": [[5, 6], [7, 8]],
    "m": [[6, 2], [8, 3], [7, 2], [5, 2]],
    "blocked": [[2, "k1"], [3, "k3"]],
    "held": [[7, "k2"]],
}


def test_rules_of_one_shape_keep_their_own_predicates_and_constants() -> None:
    rs = reasoning.compile(PROGRAM)
    # the three rules share one factory; seen/seen2 share another
    assert rs.source_code.count("def _shape") == 2
    derived = {a for a in rs.evaluate(FACTS).shown_atoms() if a[0] in "abcs"}
    assert {"a(1)", "b(5)", "seen(1)"} <= derived
    assert "a(2)" not in derived  # blocked(2, "k1"): the negation reads its own constant
    # the same as each rule compiled alone, where no shape is shared
    alone = set()
    for line in PROGRAM.strip().splitlines():
        alone |= {a for a in reasoning.compile(line).evaluate(FACTS).shown_atoms() if a[0] in "abcs"}
    assert derived == alone


def test_explaining_code_of_shared_shapes_records_each_rule() -> None:
    rs = reasoning.compile(PROGRAM)
    result = rs.evaluate(FACTS, ["b(X)", "seen(X)"], explain=True)
    (b5,) = result.answers[0].answers
    assert b5.proof is not None
    assert b5.proof["rule"]["index"] == 1
    assert b5.proof["bindings"] == {"X": 5, "Y": 6}
    assert [c.get("fact", c.get("literal")) for c in b5.proof["body"]] == [
        "f(5,6)",
        "m(6,2)",
        'not held(5,"k2")',
    ]
    (seen,) = result.answers[1].answers
    assert seen.proof is not None and seen.proof["rule"]["index"] == 3


def test_shape_tells_apart_what_changes_a_plan() -> None:
    rules = parse(
        """
        p(X) :- e(X, Y), n(Y, 1).
        q(X) :- g(X, Y), k(Y, 9).
        p(X) :- e(X, Y), e(Y, 1).
        p(X) :- e(X, Y), n(Y, Y).
        p(X) :- e(X, Y), n(Y, 1), Y != 2.
        p(X) :- e(X, Y), n(Y, X + 1).
        """
    ).rules
    shapes = [rule_shape(r, set()) for r in rules]
    assert shapes[0] is not None and shapes[1] is not None
    assert shapes[0].key == shapes[1].key
    assert shapes[1].predicates == (("q", 1), ("g", 2), ("k", 2))
    assert len({s.key for s in shapes[:5] if s is not None}) == 4  # equal predicates, variables, literals
    assert shapes[5] is None  # arithmetic: planned and written on its own
    # a recursive predicate gets delta plans: another shape
    recursive = rule_shape(rules[0], {("e", 2)})
    assert recursive is not None and recursive.key != shapes[0].key


def test_recursive_rules_of_one_shape() -> None:
    source = """
    p(X, Y) :- e(X, Y).
    p(X, Z) :- p(X, Y), e(Y, Z).
    q(X, Y) :- g(X, Y).
    q(X, Z) :- q(X, Y), g(Y, Z).
    """
    rs = reasoning.compile(source)
    facts = {"e": [[1, 2], [2, 3]], "g": [["a", "b"], ["b", "c"], ["c", "d"]]}
    atoms = rs.evaluate(facts).shown_atoms()
    assert [a for a in atoms if a.startswith("p(")] == ["p(1,2)", "p(1,3)", "p(2,3)"]
    assert len([a for a in atoms if a.startswith("q(")]) == 6


def test_listing_shows_every_rule_and_is_python() -> None:
    # rules of a shared shape are built by calls, not compiled: the listing still shows them
    rs = reasoning.compile(PROGRAM)
    listing = rs.source_code
    for rule in rs.program.rules:
        assert f"# line {rule.span.line}: {rule.text}\n" in listing
    assert "r2_f0 = _shape0(" in listing and "k_" in listing.split("r2_f0 = ")[1].split("\n")[0]
    compile(listing, "<listing>", "exec")
