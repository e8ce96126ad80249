"""``format_atoms`` (one template for rows without strings) prints exactly what ``format_atom`` prints."""

from __future__ import annotations

import pytest

from entail import reasoning
from entail.reasoning.terms import Const, Term, format_atom, format_atoms


@pytest.mark.parametrize(
    "rows",
    [
        [(1, 2), (-3, 2147483647), (-(2**31), 0)],
        [(Const("a"),), (7,), (Const("b'"),)],
        [(1, "x"), (2, 'q"\\\n%s'), (3, "")],
        [("%s", Const("c"), -1)],
        [(), ()],
        [],
    ],
)
def test_same_text_as_format_atom(rows: list[tuple[Term, ...]]) -> None:
    assert format_atoms("p_1'", rows) == [format_atom("p_1'", row) for row in rows]


def test_shown_atoms_of_a_run() -> None:
    rs = reasoning.compile('r(X, Y) :- e(X, Y). s(X) :- e(X, _). n :- e(_, "b").\n#defined e/2.')
    result = rs.evaluate({"e": [[1, "b"], [2, 3]]})
    assert result.shown_atoms() == ['e(1,"b")', "e(2,3)", "n", 'r(1,"b")', "r(2,3)", "s(1)", "s(2)"]
    assert result.shown_atoms() is not result.shown_atoms()  # callers may change their copy
    assert result.shown == [("e", (1, "b")), ("e", (2, 3)), ("n", ()), ("r", (1, "b")), ("r", (2, 3)),
                            ("s", (1,)), ("s", (2,))]  # fmt: skip
