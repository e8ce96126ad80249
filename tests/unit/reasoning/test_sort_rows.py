"""``sort_rows`` gives the exact term order (``row_key``) on every shape of relation.

Large relations take a grouped path (by first value, then the rest); these
inputs cover its branches: many rows per first value, all first values
distinct, too few groups to bother, every type of value and their mixes in
either column, and arities 1 to 3.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from entail.reasoning import terms
from entail.reasoning.terms import INF, INT_MAX, INT_MIN, SUP, Const, Term, row_key, sort_rows

SIZE = 400


@pytest.fixture(autouse=True)
def _small_relations_take_the_grouped_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terms, "_BUCKETED_FROM", 64)  # small inputs, every branch


def _ints(rng: random.Random) -> Term:
    return rng.choice([rng.randrange(-50, 50), rng.randrange(INT_MIN, INT_MAX)])


def _strs(rng: random.Random) -> Term:
    return rng.choice(["", "a", "b", "ab", "é", "Z", "a\n", '"']) + str(rng.randrange(10_000))


def _consts(rng: random.Random) -> Term:
    return Const(rng.choice(["a", "b", "c_1", "z'"]) + str(rng.randrange(10_000)))


def _infinities(rng: random.Random) -> Term:
    return rng.choice([INF, SUP])


def _mixed(rng: random.Random) -> Term:
    return rng.choice([_ints, _strs, _consts, _infinities])(rng)


KINDS: dict[str, Callable[[random.Random], Term]] = {
    "ints": _ints,
    "strs": _strs,
    "consts": _consts,
    "mixed": _mixed,
}


def _heads(kind: str, count: int, rng: random.Random) -> list[Term]:
    """``count`` distinct values of one kind (or of all kinds, in turn)."""
    made: dict[str, Callable[[int], Term]] = {
        "ints": lambda i: i * 7919 - 2**30,
        "strs": lambda i: rng.choice(["", "a", "é", "Z"]) + str(i),
        "consts": lambda i: Const(f"c{i}"),
    }
    kinds = list(made) if kind == "mixed" else [kind]
    values = [made[kinds[i % len(kinds)]](i) for i in range(count)]
    if kind == "mixed":
        values += [INF, SUP]
    rng.shuffle(values)
    return values


@pytest.mark.parametrize("head_kind", list(KINDS))
@pytest.mark.parametrize("rest_kind", list(KINDS))
@pytest.mark.parametrize("heads", [1, 10, 300, SIZE])
def test_pairs_in_term_order(head_kind: str, rest_kind: str, heads: int) -> None:
    rng = random.Random(f"{head_kind}-{rest_kind}-{heads}")
    pool = _heads(head_kind, heads, rng)
    rows: set[tuple[Term, ...]] = set()
    if heads == SIZE:
        rows = {(head, KINDS[rest_kind](rng)) for head in pool}  # every first value once
    while len(rows) < SIZE:
        rows.add((rng.choice(pool), KINDS[rest_kind](rng)))
    assert sort_rows(rows) == sorted(rows, key=row_key)


@pytest.mark.parametrize("arity", [1, 2, 3])
@pytest.mark.parametrize("kind", ["ints", "strs", "mixed"])
def test_arities_in_term_order(arity: int, kind: str) -> None:
    rng = random.Random(f"{arity}-{kind}")
    rows: set[tuple[Term, ...]] = set()
    while len(rows) < SIZE:
        few = kind == "ints" and arity > 1  # many rows per first value
        head = rng.randrange(5) if few else KINDS[kind](rng)
        rows.add((head, *(KINDS[kind](rng) for _ in range(arity - 1)))[:arity])
    assert sort_rows(rows) == sorted(rows, key=row_key)
    assert sort_rows(list(rows)) == sorted(rows, key=row_key)


def test_transitive_closure_of_a_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real threshold
    rows = {(a, b) for a in range(120) for b in range(a + 1, 120)}  # 7,140 rows, 119 groups
    assert len(rows) >= terms._BUCKETED_FROM
    assert sort_rows(rows) == sorted(rows)
    assert sort_rows(set()) == [] and sort_rows({(1, 2)}) == [(1, 2)]
