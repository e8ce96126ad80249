"""Linear recursion evaluated as a graph closure (reasoning/linear.py).

Each model is checked against the semi-naive rounds, which the explaining code
always uses (proofs need premises), and the round count shows which path ran.
"""

from __future__ import annotations

import random

import pytest

from entail import reasoning
from entail.reasoning.linear import GroupedRounds, LinearClosure, detect
from entail.reasoning.parse import parse

TC = "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"
TC_LEFT = "path(X, Y) :- edge(X, Y).\npath(X, Z) :- edge(X, Y), path(Y, Z).\n"


def _closure(src: str) -> LinearClosure | GroupedRounds | None:
    rs = reasoning.compile(src)
    found = [st.closure for st in rs._plain[0] if st.closure is not None]
    assert len(found) <= 1
    return found[0] if found else None


def _same_model(src: str, facts: dict[str, list[list[object]]]) -> reasoning.Result:
    rs = reasoning.compile(src)
    plain = rs.evaluate(facts)
    rounds = rs.evaluate(facts, explain=True)
    assert plain.model_atoms() == rounds.model_atoms()
    return plain


@pytest.mark.parametrize(
    "src",
    [
        TC,
        TC_LEFT,
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- edge(Y, Z), path(X, Y).\n",  # body order
        "path(X, Y) :- edge(Y, X).\npath(X, Z) :- path(X, Y), edge(Z, Y).\n",  # e read backwards
        TC + "path(X, Z) :- path(X, Y), link(Y, Z).\n",  # two step relations
    ],
)
def test_closure_shapes_are_recognised(src: str) -> None:
    assert _closure(src) is not None


@pytest.mark.parametrize(
    "src",
    [
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), path(Y, Z).\n",  # non-linear
        TC + "path(X, Z) :- edge(X, Y), path(Y, Z).\n",  # both orientations
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z), Z != 3.\n",  # a filter
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, 3), Z = 3.\n",
        "path(X, Y) :- edge(X, Y).\npath(X, X) :- path(X, Y), edge(Y, X).\n",  # repeated variable
        "path(X, Y) :- edge(X, Y).\npath(Z, Z) :- path(X, Y), edge(Y, Z).\n",
        "p(X, Y, W) :- e(X, Y, W).\np(X, Z, W) :- p(X, Y, W), e(Y, Z, W).\n",  # arity 3
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"
        "q(X, Y) :- path(X, Y).\npath(X, Y) :- q(Y, X).\n",  # two predicates in the stratum
        "n(0).\nn(X + 1) :- n(X), X < 5.\n",
    ],
)
def test_other_shapes_keep_the_rounds(src: str) -> None:
    assert _closure(src) is None


def test_detect_reports_the_kept_column_and_steps() -> None:
    program = parse(TC_LEFT)
    rules = [r for r in program.rules if not r.is_fact]
    pids = {("path", 2): 0, ("edge", 2): 1}
    found = detect(rules, [("path", 2)], True, pids.__getitem__)
    assert isinstance(found, LinearClosure)
    assert (found.pid, found.keep) == (0, 1)
    assert [(s.pid, s.src, s.dst) for s in found.steps] == [(1, 1, 0)]
    assert detect(rules, [("path", 2)], False, pids.__getitem__) is None


def test_chain_is_closed_in_one_step() -> None:
    edges: list[list[object]] = [[i, i + 1] for i in range(300)]
    result = _same_model(TC + "#show path/2.\n", {"edge": edges})
    assert len(result.shown_atoms()) == 300 * 301 // 2
    # first rounds, then the closure (the rounds take one per chain link)
    assert result.stats["rounds"] <= 3
    assert result.stats["derived_facts"] == 300 * 301 // 2


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_with_cycles_match_the_rounds(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(2, 40)
    edges: list[list[object]] = [[rnd.randrange(n), rnd.randrange(n)] for _ in range(rnd.randint(1, 3 * n))]
    links: list[list[object]] = [[rnd.randrange(n), rnd.randrange(n)] for _ in range(rnd.randint(0, n))]
    start: list[list[object]] = [[rnd.randrange(n), f"s{rnd.randrange(3)}"] for _ in range(3)]
    programs = [
        TC,
        TC_LEFT,
        # seeds from other rules and input facts of the closed predicate, two steps
        "path(X, Y) :- edge(X, Y), X < Y.\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"
        "path(X, Z) :- path(X, Y), link(Z, Y).\n",
        # mixed terms, and later strata reading the closure through indexes and negation
        TC_LEFT + "path(S, X) :- start(X, S).\nback(X) :- path(X, 3).\nfar(X, Y) :- path(X, Y), "
        "edge(Y, _), not path(Y, X).\nnone(X) :- edge(X, _), not path(X, X).\n",
    ]
    for src in programs:
        assert _closure(src) is not None
        _same_model(src, {"edge": edges, "link": links, "start": start, "path": [[0, n - 1]]})


def test_the_derived_facts_limit_holds() -> None:
    rs = reasoning.compile(TC)
    edges = [[i, i + 1] for i in range(200)]
    with pytest.raises(reasoning.DerivedFactsLimitExceeded) as info:
        rs.evaluate({"edge": edges}, limits=reasoning.Limits(derived_facts=5_000))
    assert info.value.limit == 5_000 and info.value.value > 5_000


def test_sets_larger_than_the_limit_give_the_stratum_back_to_the_rounds() -> None:
    # one source at the head of a chain of 300: the model is 300 facts, but the
    # closure's per-node sets hold 300*299/2 nodes, more than the limit allows
    src = "path(X, Y) :- start(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n#show path/2.\n"
    facts: dict[str, list[list[object]]] = {"start": [[0, 1]], "edge": [[i, i + 1] for i in range(1, 300)]}
    rs = reasoning.compile(src)
    result = rs.evaluate(facts, limits=reasoning.Limits(derived_facts=1_000))
    assert len(result.shown_atoms()) == 300
    assert result.stats["rounds"] > 100  # the rounds finished it
    assert rs.evaluate(facts).stats["rounds"] <= 4


def test_giving_up_after_some_facts_were_added_keeps_the_model() -> None:
    # sources near the chain's end are added first (sinks first), then the sets
    # toward the head pass the limit: the rounds go on from every fact so far
    src = "path(X, Y) :- start(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"
    starts: list[list[object]] = [[f"s{k}", k] for k in range(290, 300)] + [["s0", 1]]
    facts: dict[str, list[list[object]]] = {"start": starts, "edge": [[i, i + 1] for i in range(1, 300)]}
    rs = reasoning.compile(src)
    limits = reasoning.Limits(derived_facts=1_000)
    plain = rs.evaluate(facts, limits=limits)
    rounds = rs.evaluate(facts, limits=limits, explain=True)
    assert plain.model_atoms() == rounds.model_atoms()
    assert plain.stats["derived_facts"] == rounds.stats["derived_facts"]
    assert plain.stats["rounds"] > 100


SG = "sg(X, Y) :- par(X, P), par(Y, P), X != Y.\nsg(X, Y) :- par(X, XP), sg(XP, YP), par(Y, YP).\n"


@pytest.mark.parametrize(
    "src",
    [
        SG,
        # body order; up read backwards
        "sg(X, Y) :- e(X, Y).\nsg(X, Y) :- sg(XP, YP), up(XP, X), par(Y, YP).\n",
    ],
)
def test_same_generation_runs_grouped_rounds(src: str) -> None:
    assert isinstance(_closure(src), GroupedRounds)


@pytest.mark.parametrize(
    "src",
    [
        "sg(X, Y) :- e(X, Y).\nsg(X, Y) :- par(X, P), sg(P, P), par(Y, P).\n",  # a repeated variable
        "sg(X, Y) :- e(X, Y).\nsg(X, Y) :- par(X, XP), sg(XP, YP), par(Y, YP), X != Y.\n",  # a filter
        "sg(X, Y) :- e(X, Y).\nsg(X, Y) :- par(X, XP, Y, YP), sg(XP, YP).\n",  # one atom for both
        SG + "sg(X, Y) :- sg(X, Z), par(Z, Y).\n",  # two recursive rules
    ],
)
def test_other_same_generation_shapes_keep_the_rounds(src: str) -> None:
    assert _closure(src) is None


@pytest.mark.parametrize("seed", range(12))
def test_same_generation_on_random_graphs_matches_the_rounds(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(2, 30)
    par: list[list[object]] = [[rnd.randrange(n), rnd.randrange(n)] for _ in range(rnd.randint(1, 2 * n))]
    src = SG + "far(X) :- sg(X, Y), not sg(Y, X).\nnear(X) :- sg(X, 1).\n"
    result = _same_model(src, {"par": par})
    rounds = reasoning.compile(src).evaluate({"par": par}, explain=True)
    assert result.stats["derived_facts"] == rounds.stats["derived_facts"]


def test_same_generation_stops_at_the_derived_facts_limit() -> None:
    # a complete binary tree of depth 8: 65,024 sg facts
    par = [[c, (c - 1) // 2] for c in range(1, 2**9 - 1)]
    rs = reasoning.compile(SG)
    assert len(rs.evaluate({"par": par}).model_atoms()) > 60_000
    with pytest.raises(reasoning.DerivedFactsLimitExceeded) as info:
        rs.evaluate({"par": par}, limits=reasoning.Limits(derived_facts=10_000))
    assert info.value.limit == 10_000 and info.value.value > 10_000
