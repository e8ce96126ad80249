"""``format_atoms`` and ``format_atoms_text`` (templates in C) print exactly what ``format_atom`` prints."""

from __future__ import annotations

import random

import pytest

from entail import reasoning
from entail.reasoning.terms import (
    INT_MAX,
    INT_MIN,
    SUP,
    Const,
    Term,
    format_atom,
    format_atoms,
    format_atoms_text,
)


@pytest.mark.parametrize(
    "rows",
    [
        [(1, 2), (-3, 2147483647), (-(2**31), 0)],
        [(Const("a"),), (7,), (Const("b'"),)],
        [(1, "x"), (2, 'q"\\\n%s'), (3, "")],
        [("%s", Const("c"), -1)],
        [(), ()],
        [],
        [(1, 2), (3, Const("a"))],  # integers first, then a constant: '%d' refuses it
        [(1,), ("s",), (2,)],
        [(5, -7, 0)] * 3 + [(1, 2, "x,y")],
        [(SUP, 1)],
    ],
)
def test_same_text_as_format_atom(rows: list[tuple[Term, ...]]) -> None:
    expected = [format_atom("p_1'", row) for row in rows]
    assert format_atoms("p_1'", rows) == expected
    assert format_atoms_text("p_1'", rows) == "".join(atom + "\n" for atom in expected)


@pytest.mark.parametrize("seed", range(40))
def test_generated_rows_same_text_as_format_atom(seed: int) -> None:
    rng = random.Random(seed)
    arity = rng.randrange(1, 4)
    pool: list[Term] = [0, -1, INT_MIN, INT_MAX, rng.randrange(-(10**6), 10**6)]
    if seed % 3 == 1:
        pool += [Const("c"), Const("d_'")]
    if seed % 3 == 2:
        pool += ["", "a b", 'q"\\', "%d", "\n"]
    rows = [tuple(rng.choice(pool) for _ in range(arity)) for _ in range(rng.randrange(1, 60))]
    if seed % 2:
        rows = [tuple(rng.randrange(-9, 9) for _ in range(arity)) for _ in range(30)] + rows  # ints first
    expected = [format_atom("p", row) for row in rows]
    assert format_atoms("p", rows) == expected
    assert format_atoms_text("p", rows) == "".join(atom + "\n" for atom in expected)


def test_shown_atoms_of_a_run() -> None:
    rs = reasoning.compile('r(X, Y) :- e(X, Y). s(X) :- e(X, _). n :- e(_, "b").\n#defined e/2.')
    result = rs.evaluate({"e": [[1, "b"], [2, 3]]})
    assert result.shown_atoms() == ['e(1,"b")', "e(2,3)", "n", 'r(1,"b")', "r(2,3)", "s(1)", "s(2)"]
    assert result.shown_atoms() is not result.shown_atoms()  # callers may change their copy
    assert result.shown_text() == "".join(atom + "\n" for atom in result.shown_atoms())
    assert rs.evaluate({}).shown_text() == ""
    assert result.shown == [("e", (1, "b")), ("e", (2, 3)), ("n", ()), ("r", (1, "b")), ("r", (2, 3)),
                            ("s", (1,)), ("s", (2,))]  # fmt: skip
