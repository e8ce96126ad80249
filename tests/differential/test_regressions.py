"""Minimised programs on which Entail and clingo disagreed, found by the random tests.

Each case is the smallest program (and facts) the minimiser reached; clingo's
answer set is the expected result.  Keep them when they pass: they are cheap,
and they name the bug they came from.
"""

from __future__ import annotations

import pytest

from entail import reasoning

from .clingo_ref import FactsJson, clingo_model

CASES: dict[str, tuple[str, FactsJson]] = {
    # An aggregate compared with ``=`` to a variable bound elsewhere in the body
    # must treat that variable as global inside its elements, not assign it.
    "agg-eq-bound-var-in-condition-extra": (
        "p(X) :- e(X,Y), #count{ L : e(X,L) } = X.",
        {"e": [[2, 11], [8, 1]]},
    ),
    "agg-eq-bound-var-in-condition-missing": (
        "p(X) :- e(X,Y), #count{ L : e(X,L) } = X.",
        {"e": [[1, 11], [8, 1]]},
    ),
    "agg-eq-bound-var-left-guard": (
        "p(X) :- e(X,Y), Y = #max{ M : f(M,Y) }.",
        {"e": [[-3, 9], [9, -3]], "f": [[9, "a"]]},
    ),
    "agg-eq-bound-var-multi-element": (
        "p(X) :- q(X), #count{ 3 : e(X); 2 : r } = X.",
        {"e": [[4]], "q": [[2]], "r": [[]]},
    ),
    "agg-eq-bound-var-in-tuple": (
        "p :- e(X), X = #count{ X : e(_) }.",
        {"e": [[1]]},
    ),
    # Arithmetic in an argument of a positive body atom is evaluated once the
    # variables in it are bound, whatever the source or join order.
    "arith-arg-before-binding-atom": (
        "p(X) :- f(X+1), e(X).",
        {"e": [[1], [2]], "f": [[2]]},
    ),
    "arith-arg-same-atom": (
        "p(X) :- e(X,X+1).",
        {"e": [[1, 2], [2, 2]]},
    ),
    "arith-arg-planner-order": (
        "p(Y) :- e(X,Y), e(12,Y+Y).",
        {"e": [[1, 6], [12, 12]]},
    ),
    # A linear argument binds its variable by inversion, wrapping at 32 bits.
    "linear-argument-binds": (
        "p(X) :- e(2*X+1). q(X) :- e((X+1)*2).",
        {"e": [[5], [4], [-2147483648], ["a"]]},
    ),
    # The delta atom of a recursive rule cannot lead when its arithmetic needs
    # variables of another atom.
    "delta-atom-with-arith-not-first": (
        "r(1). r(X) :- e(X,Y), r(X+Y-1).",
        {"e": [[2, 0], [3, 0], [5, -1]]},
    ),
    # clingo reads a rule with an empty body as a fact.
    "empty-body": ("p :- .", {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_regression(case: str) -> None:
    source, facts = CASES[case]
    expected = clingo_model(source, facts)
    try:
        actual = sorted(reasoning.compile(source).evaluate(facts).shown_atoms())
    except Exception as error:
        raise AssertionError(f"{source}\n{facts}\nclingo: {expected}\nEntail raised {error!r}") from error
    assert actual == expected, f"{source}\n{facts}\nclingo: {expected}\nEntail: {actual}"
