"""Constructs outside the fragment are refused by name, and input clingo's lexer
rejects is rejected with a position (issue 13, item 6)."""

from __future__ import annotations

import pytest

from entail import reasoning


@pytest.mark.parametrize(
    ("source", "position", "words"),
    [
        ("q(2).\fp.", (1, 6), "form feed"),
        ("q(2).\vp.", (1, 6), "vertical tab"),
        ('q("a\x00b").', (1, 5), "NUL"),
        ('p("\ud800").', (1, 4), "surrogate"),
        ("p(1). \udfff", (1, 7), "surrogate"),
        ("p(Y) :- q(X), Y = X ** 2.", (1, 21), "'**' is not supported"),
        ("p(Y) :- q(X), Y = X & 1.", (1, 21), "'&' is not supported"),
        ("p(Y) :- q(X), Y = X ? 1.", (1, 21), "'?' is not supported"),
        ("p(Y) :- q(X), Y = X ^ 1.", (1, 21), "'^' is not supported"),
        ("p(Y) :- q(X), Y = ~X.", (1, 19), "'~' is not supported"),
        ("p(Y) :- q(X), Y = @f(X).", (1, 19), "external function"),
        ("p(X) :- q(X), X = #inf.", (1, 19), "'#inf' as a value is not supported"),
        ("p(X) :- q(X), X = #sup.", (1, 19), "'#sup' as a value is not supported"),
        ("p(N) :- N = #sum+{ X : q(X) }.", (1, 13), "'#sum+' is not supported"),
        ("&sum{ X : q(X) } = 1.", (1, 1), "theory atoms"),
        ("p :- &sum{ X : q(X) } = 1.", (1, 6), "theory atoms"),
    ],
)
def test_refused_with_name_and_position(source: str, position: tuple[int, int], words: str) -> None:
    with pytest.raises(reasoning.ProgramError) as info:
        reasoning.compile(source)
    first = info.value.diagnostics[0]
    assert first.code == "syntax-error"
    assert (first.line, first.column) == position
    assert words in first.message
    info.value.render().encode("utf-8")  # printable even when the source holds a surrogate


def test_raw_tab_in_a_string_is_still_accepted() -> None:
    # clingo accepts it (only NUL is a lexer error inside strings)
    assert reasoning.compile('p("a\tb").').evaluate({}).shown_atoms() == ['p("a\tb")']


def test_body_literal_limit_is_named() -> None:
    body = ", ".join(f"q(X{i})" for i in range(11))
    agg = "N = #count{ X : " + ", ".join(f"q(X{i})" for i in range(10)) + " }"
    limits = reasoning.Limits(rule_body_literals=10)
    for source in (f"p :- {body}.", f"\np(N) :- {agg}."):
        with pytest.raises(reasoning.RuleBodyLimitExceeded) as info:
            reasoning.compile(source, limits=limits)
        assert info.value.code == "limit-rule-body"
        assert info.value.to_json()["line"] == source.count("\n", 0, source.index("p")) + 1
    reasoning.compile(f"p :- {', '.join(f'q(X{i})' for i in range(10))}.", limits=limits)


def test_compile_time_limit_is_named_and_checked_during_planning() -> None:
    # a 3,000-atom chain rule plans in well under a second; with a 1 ms budget the
    # clock, checked per planned literal, stops it with the named error
    body = ", ".join(f"e(X{i}, X{i + 1})" for i in range(3000))
    with pytest.raises(reasoning.CompileTimeLimitExceeded) as info:
        reasoning.compile(f"p(X0, X3000) :- {body}.", limits=reasoning.Limits(compile_time_ms=1))
    assert info.value.code == "limit-compile-time"
    assert info.value.limit == 1
