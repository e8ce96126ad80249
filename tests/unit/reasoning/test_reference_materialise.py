"""Materialisation's own work (reasoning/reference.py): which indexes it keeps up to
date while deriving, and that the model is still the whole program's."""

from __future__ import annotations

import sys

from entail import reasoning

SG = """%@dataset family: par(int, int).
sg(X, Y) :- par(X, P), par(Y, P), X != Y.
sg(X, Y) :- par(X, XP), sg(XP, YP), par(Y, YP).
same(A, B) :- ask(A, B), sg(A, B).
"""


def _slots(
    specs: list[list[tuple[int, tuple[int, ...]]]], rs: reasoning.Ruleset, name: str
) -> list[tuple[int, ...]]:
    pid = rs._layout.pid((name, 2))
    return [cols for _, cols in specs[pid]]


def test_an_index_only_the_first_round_reads_is_not_grown_with_the_closure() -> None:
    rs = reasoning.compile(SG)
    # the full variant of the recursive rule probes sg(XP, YP) by XP in the stratum's
    # first round (when sg holds only its base facts): built, never grown
    assert _slots(rs._shared_specs, rs, "sg") == [(0,)]
    assert _slots(rs._grown_specs, rs, "sg") == []
    # par's index is read by the delta variant and kept for cases: grown
    assert _slots(rs._grown_specs, rs, "par") == _slots(rs._kept_specs, rs, "par") == [(1,)]


def test_an_index_a_higher_stratum_reads_is_grown() -> None:
    rs = reasoning.compile(
        "%@dataset g: edge(int, int).\n"
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"
        "far(X) :- start(X), path(X, Y), last(Y).\n"
    )
    path = rs._layout.pid(("path", 2))
    lower = {slot for slot, _ in rs._shared_specs[path]}
    assert lower, "far/1 probes path through an index"
    assert lower <= {slot for slot, _ in rs._grown_specs[path]}


def test_base_facts_of_a_derived_predicate_reach_the_first_round() -> None:
    # sg has base facts of its own (program facts): the first round's probe of the
    # sg index must see them, and the model must be the whole program's
    rs = reasoning.compile(SG + "sg(100, 200).\n")
    tree = [[2, 1], [3, 1], [4, 2], [5, 2], [6, 3], [7, 3], [300, 100], [400, 200]]
    mat = rs.materialise({"family": {"par": tree}})
    whole = reasoning.compile(
        "".join(f"par({a},{b}).\n" for a, b in tree) + SG.split("\n", 1)[1] + "sg(100, 200).\n"
    )
    case = {"ask": [[300, 400], [4, 6], [4, 5], [2, 3], [300, 200]]}
    got = rs.evaluate(case, ["same(A, B)", "sg(A, B)"], reference=mat)
    want = whole.evaluate(case, ["same(A, B)", "sg(A, B)"])
    for i in range(2):
        assert [a.atom for a in got.answers[i].answers] == [a.atom for a in want.answers[i].answers]
    assert "same(300,400)" in [a.atom for a in got.answers[0].answers]


def test_the_interned_values_are_sized_from_a_sample() -> None:
    from entail.reasoning.reference import _sampled_size

    values: list[object] = [10**6 + i for i in range(50_000)] + [2**40 + i for i in range(50_000)]
    exact = sum(map(sys.getsizeof, values))
    assert abs(_sampled_size(values) - exact) <= exact // 100
    assert _sampled_size(values[:100]) == sum(map(sys.getsizeof, values[:100]))
