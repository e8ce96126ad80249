"""Linear recursion closed as a graph (reasoning/linear.py) against clingo.

Random graphs (cycles, self loops, mixed terms) under every closure shape the
engine recognises, with seeds from other rules and later strata reading the
closed predicate; each model must be clingo's, and the closure must have run.
"""

from __future__ import annotations

import random

import pytest

from entail import reasoning

from .clingo_ref import FactsJson, clingo_all_atoms

SHAPES = (
    "p(X, Z) :- p(X, Y), e(Y, Z).",
    "p(X, Z) :- e(Y, Z), p(X, Y).",
    "p(X, Z) :- p(X, Y), e(Z, Y).",
    "p(X, Z) :- e(X, Y), p(Y, Z).",
    "p(X, Z) :- p(Y, Z), e(Y, X).",
)
SEEDS = (
    "p(X, Y) :- e(X, Y).",
    "p(X, Y) :- s(X, Y).",
    "p(X, Y) :- e(X, Y), X < Y.\np(X, Y) :- s(Y, X).",
)
LATER = "r(X) :- p(X, X).\nq(X, Y) :- p(X, Y), not p(Y, X).\nt(X) :- s(X, _), not p(X, 0).\n"


@pytest.mark.parametrize("seed", range(20))
def test_closures_match_clingo(seed: int) -> None:
    rnd = random.Random(1000 + seed)
    n = rnd.randint(1, 25)
    nodes: list[int | str] = [*range(n), "a", "b"]
    facts: dict[str, list[list[int | str]]] = {
        "e": [[rnd.choice(nodes), rnd.choice(nodes)] for _ in range(rnd.randint(0, 2 * n + 2))],
        "s": [[rnd.choice(nodes), rnd.choice(nodes)] for _ in range(rnd.randint(0, 4))],
    }
    step = rnd.choice(SHAPES)
    src = f"{rnd.choice(SEEDS)}\n{step}\n"
    if rnd.random() < 0.3:  # a second step relation of the same orientation
        src += step.replace("e(", "e2(") + "\n"
        facts["e2"] = [[rnd.choice(nodes), rnd.choice(nodes)] for _ in range(n)]
    src += LATER
    rs = reasoning.compile(src)
    given: FactsJson = facts
    assert any(st.closure is not None for st in rs._plain[0])
    assert sorted(rs.evaluate(given).model_atoms()) == clingo_all_atoms(src, given)
    # alone, nothing reads p after its stratum: the closure is kept as bits (closed.py)
    alone = src.replace(LATER, "")
    assert sorted(reasoning.compile(alone).evaluate(given).model_atoms()) == clingo_all_atoms(alone, given)


@pytest.mark.parametrize("seed", range(12))
def test_same_generation_matches_clingo(seed: int) -> None:
    rnd = random.Random(2000 + seed)
    n = rnd.randint(1, 20)
    nodes: list[int | str] = [*range(n), "a"]
    par: list[list[int | str]] = [
        [rnd.choice(nodes), rnd.choice(nodes)] for _ in range(rnd.randint(0, 2 * n))
    ]
    given: FactsJson = {"par": par, "e": [[rnd.choice(nodes), rnd.choice(nodes)] for _ in range(3)]}
    seedrule = rnd.choice(("sg(X, Y) :- par(X, P), par(Y, P), X != Y.", "sg(X, Y) :- e(X, Y)."))
    step = rnd.choice(
        (
            "sg(X, Y) :- par(X, XP), sg(XP, YP), par(Y, YP).",
            "sg(X, Y) :- par(Y, YP), sg(XP, YP), par(XP, X).",
        )
    )
    src = f"{seedrule}\n{step}\nfar(X) :- sg(X, Y), not sg(Y, X).\n"
    rs = reasoning.compile(src)
    assert any(st.closure is not None for st in rs._plain[0])
    assert sorted(rs.evaluate(given).model_atoms()) == clingo_all_atoms(src, given)
    alone = f"{seedrule}\n{step}\n"  # nothing reads sg after its stratum: bits (closed.py)
    assert sorted(reasoning.compile(alone).evaluate(given).model_atoms()) == clingo_all_atoms(alone, given)
