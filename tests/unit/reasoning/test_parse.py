"""The parser: accepted syntax and syntax errors with precise positions."""

from __future__ import annotations

import pytest

from entail import reasoning
from entail.reasoning.parse import parse


def _syntax_error(source: str) -> reasoning.Diagnostic:
    with pytest.raises(reasoning.ProgramError) as info:
        reasoning.compile(source)
    diag = info.value.diagnostics[0]
    assert diag.code == "syntax-error"
    return diag


def test_comments_and_strings_with_escapes() -> None:
    source = '%* block\n comment *% s("a\\"b\\\\c\\nd"). % trailing\nt(x).\n'
    result = reasoning.compile(source).evaluate()
    assert result.shown_atoms() == ['s("a\\"b\\\\c\\nd")', "t(x)"]
    assert result.facts("s", 1) == [('a"b\\c\nd',)]


def test_rule_text_and_positions_are_kept() -> None:
    program = parse("p(1).\n  q(X) :-   p(X),\n   X > 0.\n")
    rule = program.rules[1]
    assert rule.text == "q(X) :- p(X), X > 0."
    assert (rule.span.line, rule.span.column) == (2, 3)


@pytest.mark.parametrize(
    ("source", "line", "column", "fragment"),
    [
        ("p(1)", 1, 4, "missing '.'"),
        ("p(1).\nq(X) :- p(X) r(X).", 2, 14, "expected '.' or ','"),
        ('p("abc).', 1, 3, "unterminated string"),
        ("p(1). %* never closed", 1, 7, "unterminated block comment"),
        ("p((1).", 1, 6, "expected ')'"),
        ("not p(1).", 1, 1, "'not' is not allowed in a rule head"),
        ("{ p(1) }.", 1, 1, "choice rules are not supported"),
        ("p(1..3).", 1, 4, "intervals"),
        ("p(f(1)).", 1, 3, "function terms are not supported"),
        (":- p(1).", 1, 1, "integrity constraints"),
        ("p(X) :- q(X); r(X).", 1, 13, "';' between body literals"),
        ("#const n = 3.", 1, 1, "'#const' is not supported"),
        ("p(1) :- #count{X : q(X)}.", 1, 9, "an aggregate needs a comparison"),
        ("p(1) :- N = #avg{X : q(X)}.", 1, 13, "unknown aggregate"),
        ("p(99999999999).", 1, 3, "does not fit in 32 bits"),
        ("p(1) :- q(1), $.", 1, 15, "unexpected character"),
    ],
)
def test_syntax_errors_point_at_the_problem(source: str, line: int, column: int, fragment: str) -> None:
    diag = _syntax_error(source)
    assert (diag.line, diag.column) == (line, column), diag.render()
    assert fragment in diag.message


def test_render_shows_a_caret_under_the_token() -> None:
    diag = _syntax_error("p(1).\nq(X) :- p(X) r(X).")
    rendered = diag.render()
    assert rendered.splitlines()[0] == (
        "<program>:2:14: error[syntax-error]: expected '.' or ',' after a literal, found 'r'"
    )
    assert rendered.splitlines()[1:] == ["2 | q(X) :- p(X) r(X).", "                 ^"]


def test_operators_have_clingo_precedence() -> None:
    result = reasoning.compile("v(A) :- A = 2 + 3 * 4 - -2. w(B) :- B = (2 + 3) * 4.").evaluate()
    assert result.shown_atoms() == ["v(16)", "w(20)"]
