"""Linear recursion evaluated as a graph closure (reasoning/linear.py).

Each model is checked against the semi-naive rounds, which the explaining code
always uses (proofs need premises), and the round count shows which path ran.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest

from entail import reasoning
from entail.reasoning import linear
from entail.reasoning.closed import ClosedRelation
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


# a later rule reading path through an index: the closure is made of tuples (sets per
# component, linear.close), not kept grouped as bits (linear.close_bits)
INDEXED = "at(X) :- path(X, 7).\n"


def test_sets_larger_than_the_limit_give_the_stratum_back_to_the_rounds() -> None:
    # one source at the head of a chain of 300: the model is 300 facts, but the
    # closure's per-node sets hold 300*299/2 nodes, more than the limit allows
    src = "path(X, Y) :- start(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n#show path/2.\n" + INDEXED
    facts: dict[str, list[list[object]]] = {"start": [[0, 1]], "edge": [[i, i + 1] for i in range(1, 300)]}
    rs = reasoning.compile(src)
    result = rs.evaluate(facts, limits=reasoning.Limits(derived_facts=1_000))
    assert len(result.shown_atoms()) == 300
    assert result.stats["rounds"] > 100  # the rounds finished it
    assert rs.evaluate(facts).stats["rounds"] <= 5  # 4 and the stratum of at/1


def test_giving_up_after_some_facts_were_added_keeps_the_model() -> None:
    # sources near the chain's end are added first (sinks first), then the sets
    # toward the head pass the limit: the rounds go on from every fact so far
    src = "path(X, Y) :- start(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n" + INDEXED
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


# ---------------------------------------------------------------- kept grouped (closed.py)


def _relation(result: reasoning.Result, name: str) -> object:
    return result._store.F[result._sigs.index((name, 2))]


def test_a_closure_nothing_indexes_is_kept_as_bits() -> None:
    edges: list[list[object]] = [[i, i + 1] for i in range(50)] + [[50, 0], [7, "x"], ["x", "y"]]
    rs = reasoning.compile(TC + "#show path/2.\n")
    plain, rounds = rs.evaluate({"edge": edges}), rs.evaluate({"edge": edges}, explain=True)
    kept, made = _relation(plain, "path"), _relation(rounds, "path")
    assert isinstance(kept, ClosedRelation) and isinstance(made, set)
    # it reads like the set of tuples the rounds made
    assert len(kept) == len(made) == 51 * 53 + 1 and set(kept) == made and kept == made
    assert (3, "y") in kept and (0, 0) in kept and ("y", 3) not in kept and (3, "nowhere") not in kept
    assert (3,) not in kept and "path" not in kept and (3, 4, 5) not in kept
    assert kept | {(1, "new")} == made | {(1, "new")} and isinstance(kept - made, set)
    assert plain.shown_atoms() == rounds.shown_atoms()
    assert plain.stats["derived_facts"] == rounds.stats["derived_facts"]


def test_a_left_linear_closure_keeps_its_second_column() -> None:
    edges: list[list[object]] = [["a", "b"], ["b", "c"], ["c", "a"], ["c", "d"], ["e", "a"]]
    rs = reasoning.compile(TC_LEFT)
    kept = _relation(rs.evaluate({"edge": edges}), "path")
    assert isinstance(kept, ClosedRelation)
    assert set(kept) == set(_relation(rs.evaluate({"edge": edges}, explain=True), "path"))
    assert ("e", "d") in kept and ("d", "e") not in kept


def test_an_indexed_or_materialised_closure_stays_a_set() -> None:
    edges: list[list[object]] = [[i, i + 1] for i in range(20)]
    assert isinstance(_relation(reasoning.compile(TC + INDEXED).evaluate({"edge": edges}), "path"), set)


def test_bits_close_what_the_sets_gave_back_to_the_rounds() -> None:
    # the case of test_sets_larger_than_the_limit_...: 300 facts under a limit of 1,000,
    # which the sets' intermediate 300*299/2 nodes passed; the bits finish it in one step
    src = "path(X, Y) :- start(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n#show path/2.\n"
    facts: dict[str, list[list[object]]] = {"start": [[0, 1]], "edge": [[i, i + 1] for i in range(1, 300)]}
    result = reasoning.compile(src).evaluate(facts, limits=reasoning.Limits(derived_facts=1_000))
    assert len(result.shown_atoms()) == 300
    assert result.stats["rounds"] <= 4


def test_bits_keep_the_model_small() -> None:
    # a chain of 400: 80,200 facts, about 7 MB as a set of tuples; as bits, 400 ints
    # of at most 400 bits (the tuples are made when the relation is read)
    rs = reasoning.compile(TC)
    edges: list[list[object]] = [[i, i + 1] for i in range(400)]
    tracemalloc.start()
    try:
        result = rs.evaluate({"edge": edges})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.stats["derived_facts"] == 400 * 401 // 2
    assert peak < 1_000_000, peak


def _peak(rs: reasoning.Ruleset, facts: dict[str, list[list[object]]]) -> tuple[int, object]:
    tracemalloc.start()
    try:
        result = rs.evaluate(facts)
        return tracemalloc.get_traced_memory()[1], _relation(result, "path")
    finally:
        tracemalloc.stop()


def test_a_forest_is_kept_in_short_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3,000 separate edges, 6,000 nodes: each int starts at its lowest target, so a
    # source's is one bit long, not up to 6,000 (which would be 2 MB in all)
    edges: list[list[object]] = [[2 * i, 2 * i + 1] for i in range(3_000)]
    rs = reasoning.compile(TC)
    peak, kept = _peak(rs, {"edge": edges})
    assert isinstance(kept, ClosedRelation) and len(kept) == 3_000
    assert set(kept) == {(a, b) for a, b in edges}
    monkeypatch.setattr(linear, "BITS_MAX_BYTES", 0)
    peak_sets, made = _peak(rs, {"edge": edges})
    assert isinstance(made, set) and made == kept
    assert peak < peak_sets, (peak, peak_sets)


def test_bits_past_their_bound_leave_the_closure_to_the_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    edges: list[list[object]] = [[i, i + 1] for i in range(200)] + [[200, 0]]
    rs = reasoning.compile(TC)
    assert isinstance(_relation(rs.evaluate({"edge": edges}), "path"), ClosedRelation)
    # a cycle of 201: 201 ints of 201 bits, more than 1,000 bytes
    monkeypatch.setattr(linear, "BITS_MAX_BYTES", 1_000)
    result = rs.evaluate({"edge": edges})
    kept = _relation(result, "path")
    assert isinstance(kept, set) and len(kept) == 201 * 201
    assert result.stats["rounds"] <= 3


def test_bits_stop_at_the_derived_facts_limit() -> None:
    rs = reasoning.compile(TC)
    with pytest.raises(reasoning.DerivedFactsLimitExceeded) as info:
        rs.evaluate(
            {"edge": [[i, i + 1] for i in range(1000)]}, limits=reasoning.Limits(derived_facts=100_000)
        )
    assert info.value.limit == 100_000 and info.value.value == 1000 * 1001 // 2


@pytest.mark.parametrize("seed", range(12))
def test_same_generation_as_bits_matches_the_rounds(seed: int) -> None:
    rnd = random.Random(100 + seed)
    n = rnd.randint(2, 30)
    par: list[list[object]] = [[rnd.randrange(n), rnd.randrange(n)] for _ in range(rnd.randint(1, 2 * n))]
    par += [[f"c{k}", rnd.randrange(n)] for k in range(3)]  # mixed terms
    rs = reasoning.compile(SG)
    plain, rounds = rs.evaluate({"par": par}), rs.evaluate({"par": par}, explain=True)
    kept = _relation(plain, "sg")
    assert isinstance(kept, ClosedRelation)
    assert kept == _relation(rounds, "sg") and plain.model_atoms() == rounds.model_atoms()
    assert plain.stats["derived_facts"] == rounds.stats["derived_facts"]


def test_same_generation_as_bits_keeps_the_model_small(monkeypatch: pytest.MonkeyPatch) -> None:
    # a complete binary tree of depth 7: 21,844 sg facts
    par: list[list[object]] = [[c, (c - 1) // 2] for c in range(1, 2**8 - 1)]
    rs = reasoning.compile(SG)
    tracemalloc.start()
    try:
        result = rs.evaluate({"par": par})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(_relation(result, "sg"), ClosedRelation) and len(result.model_atoms()) > 21_000
    assert peak < 1_000_000, peak
    # past the bound: the grouped rounds over tuples, the same model
    monkeypatch.setattr(linear, "BITS_MAX_BYTES", 0)
    again = rs.evaluate({"par": par})
    assert isinstance(_relation(again, "sg"), set) and again.model_atoms() == result.model_atoms()
