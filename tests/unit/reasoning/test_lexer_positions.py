"""The one-match-per-token lexer: positions after blanks, comments and strings, and
the errors of unterminated strings and block comments, as the parser reports them."""

from __future__ import annotations

import pytest

from entail.reasoning import ProgramError
from entail.reasoning.parse import _Lexer, parse


def _tokens(source: str) -> list[tuple[str, str, int, int]]:
    return [(t.kind, t.text, t.line, t.column) for t in _Lexer(source, "t.lp").tokens()]


def test_positions_after_blanks_comments_and_strings() -> None:
    source = 'p("a\\"b", X) :- \tq(X). % c\n%* two\nlines *%  r(1).\r\n  '
    assert _tokens(source) == [
        ("ident", "p", 1, 1),
        ("punct", "(", 1, 2),
        ("str", '"a\\"b"', 1, 3),
        ("punct", ",", 1, 9),
        ("var", "X", 1, 11),
        ("punct", ")", 1, 12),
        ("op", ":-", 1, 14),
        ("ident", "q", 1, 18),
        ("punct", "(", 1, 19),
        ("var", "X", 1, 20),
        ("punct", ")", 1, 21),
        ("punct", ".", 1, 22),
        ("ident", "r", 3, 11),
        ("punct", "(", 3, 12),
        ("num", "1", 3, 13),
        ("punct", ")", 3, 14),
        ("punct", ".", 3, 15),
        ("eof", "", 4, 3),
    ]
    assert parse(source).rules[0].head.args[0].value == 'a"b'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("source", "where", "message"),
    [
        ('p("ab).\n', (1, 3), "unterminated string"),
        ('p("a\\qb").', (1, 5), "unknown escape sequence"),
        ('p("a\x00").', (1, 5), "NUL"),
        ("p.\n  %* never closed\n", (2, 3), "unterminated block comment"),
        ("p. \x0c", (1, 4), "form feed"),
        ("p :- q(X) $ r.", (1, 11), "unexpected character '$'"),
    ],
)
def test_lexer_errors_point_at_the_token(source: str, where: tuple[int, int], message: str) -> None:
    with pytest.raises(ProgramError) as err:
        parse(source)
    diag = err.value.diagnostics[0]
    assert (diag.line, diag.column) == where
    assert message in diag.message
