"""The ground-facts scanner gives exactly the general parser's facts, or hands the file to it.

``scan_ground_facts`` (reasoning/factscan.py) reads plain ground-fact files
without the general parser. Its contract: whenever it returns facts, the
general parser accepts the same text and gives the same facts (same values,
same types: ``Const`` vs ``str``); on anything else it returns None, and
``parse_facts_lp`` reports the general parser's own diagnostic. Generated
files cover strings with escapes and separators inside, negative and boundary
integers, constants, comments, odd blanks, several arities of one name and
near-misses the scanner must refuse.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entail import reasoning
from entail.reasoning.facts import parse_facts_general
from entail.reasoning.factscan import scan_ground_facts
from entail.reasoning.terms import Const, quote

GENERATED = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BLANKS = st.sampled_from(["", " ", "  ", "\t", "\n", "\r\n", " \n\t "])
NAMES = st.sampled_from(["p", "edge", "_q", "a'", "person_2", "x", "flag"])
CONSTANTS = st.sampled_from(["a", "approved", "_x", "b'", "zZ9_'", "notx", "not_", "nota"])
INTS = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from([0, -1, 2**31 - 1, -(2**31), 7, 42]),
)
STRINGS = st.text(
    alphabet=st.sampled_from([*'ab ,.()%*":-\\\n\t\r', "é", "€", "𝄞", "x"]),
    max_size=8,
)


@st.composite
def argument(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["int", "int", "const", "str", "str", "padded-int"]))
    if kind == "int":
        return str(draw(INTS))
    if kind == "padded-int":
        return "0" * draw(st.integers(1, 3)) + str(draw(st.integers(0, 2**31 - 1)))
    if kind == "const":
        return draw(CONSTANTS)
    return quote(draw(STRINGS))


@st.composite
def fact(draw: st.DrawFn) -> str:
    name = draw(NAMES)
    arity = draw(st.integers(0, 4))
    if arity == 0:
        return name + draw(BLANKS) + "."
    parts = [draw(BLANKS) + draw(argument()) + draw(BLANKS) for _ in range(arity)]
    return f"{name}({','.join(parts)}){draw(BLANKS)}."


@st.composite
def separator(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["blank", "blank", "line", "block", "none"]))
    if kind == "line":
        return draw(BLANKS) + "% a comment p(1). %* not a block\n"
    if kind == "block":
        return draw(BLANKS) + '%* block p(2).\n q("x"). *%' + draw(BLANKS)
    if kind == "none":
        return ""
    return draw(BLANKS) or " "


@st.composite
def facts_file(draw: st.DrawFn) -> str:
    facts = draw(st.lists(fact(), max_size=12))
    return "".join(draw(separator()) + f for f in facts) + draw(separator())


# edits that make a file something other than plain ground facts (or no valid file at all)
MUTATIONS = [
    "X", "_", "- 5", "-a", "f(x)", "1+2", "p :- q", "#show p/1", ")", "(", "..", "\f", "\v", "\x00",
    '"\\t"', '"unterminated', "%* open", "not", "2147483648", "-2147483649", ",", "p()", " (1)",
    "\ud800", "é", "1a", "3.5", "{", ";",
]  # fmt: skip


@st.composite
def mutated_file(draw: st.DrawFn) -> str:
    text = draw(facts_file())
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(MUTATIONS)) + text[at:]


def scan(text: str) -> dict[tuple[str, int], set[tuple[object, ...]]] | None:
    """``scan_ground_facts`` on both of its paths: a small file at once, and name by name."""
    from entail.reasoning import factscan

    at_once = scan_ground_facts(text)
    small = factscan._SMALL
    factscan._SMALL = -1
    try:
        by_name = scan_ground_facts(text)
    finally:
        factscan._SMALL = small
    assert (at_once is None) == (by_name is None), text
    assert at_once is None or by_name is None or typed(at_once) == typed(by_name), text
    return at_once


def general(text: str) -> dict[tuple[str, int], set[tuple[object, ...]]] | reasoning.ProgramError:
    try:
        return parse_facts_general(text, "f.lp").facts
    except reasoning.ProgramError as exc:
        return exc


def typed(facts: dict[tuple[str, int], set[tuple[object, ...]]]) -> set[tuple[object, ...]]:
    """Facts with each value's type, so 1 vs "1" vs Const("a") vs "a" never compare equal by accident."""
    return {(key, tuple((type(v).__name__, v) for v in row)) for key, rows in facts.items() for row in rows}


@GENERATED
@given(facts_file())
def test_plain_fact_files_take_the_fast_path_and_agree(text: str) -> None:
    expected = general(text)
    assert not isinstance(expected, reasoning.ProgramError), expected.render()
    got = scan(text)
    assert got is not None, f"the scanner refused a plain facts file: {text!r}"
    assert typed(got) == typed(expected)
    assert reasoning.parse_facts_lp(text).facts == expected


@GENERATED
@given(mutated_file())
def test_on_anything_else_the_scanner_agrees_or_hands_over(text: str) -> None:
    expected = general(text)
    got = scan(text)
    if got is not None:
        assert not isinstance(expected, reasoning.ProgramError), f"scanner accepted {text!r}"
        assert typed(got) == typed(expected)
    if isinstance(expected, reasoning.ProgramError):
        with pytest.raises(reasoning.ProgramError) as exc:
            reasoning.parse_facts_lp(text, "f.lp")
        assert [d.to_json() for d in exc.value.diagnostics] == [d.to_json() for d in expected.diagnostics]
    else:
        assert typed(reasoning.parse_facts_lp(text, "f.lp").facts) == typed(expected)


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ('p(a, -3, "x,y)."). p.', {("p", 3): {(Const("a"), -3, "x,y).")}, ("p", 0): {()}}),
        ('s("a\\"b\\\\n\\n").', {("s", 1): {('a"b\\n\n',)}}),
        ("e(1,2).e(1, 2).\ne(2,3).", {("e", 2): {(1, 2), (2, 3)}}),
        ("q(1). q(1,2). q(a).", {("q", 1): {(1,), (Const("a"),)}, ("q", 2): {(1, 2)}}),
        ("n(-2147483648, 2147483647, -0, 007).", {("n", 4): {(-(2**31), 2**31 - 1, 0, 7)}}),
        ("%* x *% r(1). % r(2).\n", {("r", 1): {(1,)}}),
        ("r(1).\n% r(2).\n%* r(3). *%", {("r", 1): {(1,)}}),
        ('s("a,b"). s("c,d").', {("s", 1): {("a,b",), ("c,d",)}}),
        ('s("a,b", 1). s(c, 2).', {("s", 2): {("a,b", 1), (Const("c"), 2)}}),
        ('t(" 1", -1,"-1", x).', {("t", 4): {(" 1", -1, "-1", Const("x"))}}),
        ("", {}),
        # a name with a nullary fact or several arities between others: the values of
        # the file are converted at once and cut per name, so each must take its share
        (
            "a(1). p(x). p. p(2, 3). z(4, 5).",
            {
                ("a", 1): {(1,)},
                ("p", 1): {(Const("x"),)},
                ("p", 0): {()},
                ("p", 2): {(2, 3)},
                ("z", 2): {(4, 5)},
            },
        ),
        ("a(1). p(7). p. z(8).", {("a", 1): {(1,)}, ("p", 0): {()}, ("p", 1): {(7,)}, ("z", 1): {(8,)}}),
    ],
)
def test_examples(text: str, facts: dict[tuple[str, int], set[tuple[object, ...]]]) -> None:
    got = scan(text)
    assert got is not None and typed(got) == typed(facts)
    assert typed(general(text)) == typed(facts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["p(X).", "p(- 1).", "p (1).", "p(f(a)).", "p(2147483648).", "not(1).", "p(not).", "p() .",
     'p("\\t").', "p(1)", "p(1) :- q.", "#show p/1.", "p(1)..", "p(1). %* open"],
)  # fmt: skip
def test_what_the_scanner_hands_to_the_parser(text: str) -> None:
    assert scan_ground_facts(text) is None


def test_diagnostics_are_the_general_parsers() -> None:
    with pytest.raises(reasoning.ProgramError) as exc:
        reasoning.parse_facts_lp("p(1).\np(X).\n", "f.lp")
    diagnostic = exc.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("invalid-facts", 2, 3)
    with pytest.raises(reasoning.ProgramError) as exc:
        reasoning.parse_facts_lp('p(1).\n  q("a\\q").\n', "f.lp")
    diagnostic = exc.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("syntax-error", 2, 7)


def test_a_large_file_is_one_pass_and_its_tokens_are_not_kept() -> None:
    from entail.reasoning import factscan

    text = "".join(f'edge({i},{i + 1}). name({i},"n{i}").\n' for i in range(120_000))
    got = scan_ground_facts(text)
    assert got is not None
    assert len(got[("edge", 2)]) == len(got[("name", 2)]) == 120_000
    assert len(factscan._VALUES) <= factscan._VALUES_KEPT


# The loose pass reads an argument list up to ')' and vouches for it only if every
# ','-separated piece is one whole token (or the list is integers clingo would read):
# each of these must reach the strict pass or the parser and come out as the parser says.
@pytest.mark.parametrize(
    "text",
    [
        's("a)b"). s("c").',  # ')' in a string: the loose fact ends early
        's("a).b"). t(1).',
        's("a,2147483648,b"). s(x).',  # a piece of a string looks like an integer out of range
        's("x,not,y"). s(y).',  # ... or like the keyword
        's("a,b", 1). s(c, 2). s(d).',
        "p(+1).", "p(1_0).", "p(1\v).", "p(\u0661).", "p(1,\f2).", "p( ).", "p().",
        "p(1 % c\n).", "p(1 %* c *%).", "p(1,\n 2).\np(3,\r\n4).",
        "a(1). b(2). a(3). b(\"x\"). a(4, 5). a.",  # interleaved names, several arities, nullary
        "p(1). p(1, 2). p(1, 2, 3). p. p(x).",
        "not.", "p(1). not(2).", "p(f(1)).", "p(1)).", "p((1)).", "p(1) (2).",
        "p(-1, - 1).", "p(--1).", "p(1-2).", "p(1 2).", "p(1,,2).", "p(1,\u00a02).", "p(-).",
    ],
)  # fmt: skip
def test_the_loose_pass_vouches_only_for_what_the_parser_reads_the_same(text: str) -> None:
    expected = general(text)
    got = scan(text)
    if isinstance(expected, reasoning.ProgramError):
        assert got is None, f"scanner accepted {text!r}"
        with pytest.raises(reasoning.ProgramError) as exc:
            reasoning.parse_facts_lp(text, "f.lp")
        assert [d.to_json() for d in exc.value.diagnostics] == [d.to_json() for d in expected.diagnostics]
    else:
        assert got is None or typed(got) == typed(expected)
        assert typed(reasoning.parse_facts_lp(text, "f.lp").facts) == typed(expected)


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ('s("a)b"). s("c").', {("s", 1): {("a)b",), ("c",)}}),
        ('s("a,2147483648,b"). s(x).', {("s", 1): {("a,2147483648,b",), (Const("x"),)}}),
        ('a(1). b(2). a(3). b("x"). a(4, 5). a.',
         {("a", 1): {(1,), (3,)}, ("b", 1): {(2,), ("x",)}, ("a", 2): {(4, 5)}, ("a", 0): {()}}),
        ("p(1,\n 2).\np(3,\r\n4).", {("p", 2): {(1, 2), (3, 4)}}),
    ],
)  # fmt: skip
def test_files_the_loose_pass_hands_on_are_still_read_without_the_parser(
    text: str, facts: dict[tuple[str, int], set[tuple[object, ...]]]
) -> None:
    got = scan(text)
    assert got is not None and typed(got) == typed(facts)


@pytest.mark.parametrize(
    "text",
    ["a" * 100_000, " " * 100_000 + "X", "p(" * 50_000, "%*" * 50_000, "p(1" * 40_000,
     "p(1). " * 20_000 + "X", "_" * 100_000, '"' * 100_000, "p(1)" * 30_000],
)  # fmt: skip
def test_text_that_is_not_facts_is_refused_in_linear_time(text: str) -> None:
    # an unanchored search retried every position: 40,000 letters took 10 s, 100,000 about a minute
    started = time.process_time()
    assert scan_ground_facts(text) is None
    assert time.process_time() - started < 1.0
