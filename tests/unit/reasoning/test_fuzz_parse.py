"""Fuzzing the parser and compiler: any text is a program or a named error, never another exception.

Three sources of input, each bounded to a few hundred examples: arbitrary
Unicode text, mutations (insert, delete, replace, duplicate) of real programs,
and deep or long constructs built to reach the parser's recursion and size
guards. ``test_robustness.py`` covers token soup; this file covers bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entail import reasoning

LIMITS = reasoning.Limits(derived_facts=2_000, wall_time_ms=2_000, proof_nodes=2_000)
FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "entail" / "examples"
SEEDS: list[str] = [
    *sorted(p.read_text() for p in EXAMPLES.rglob("*.lp")),
    'p(X, "a\\"b") :- q(X), not r(X, _), X != 3, Y = X * 2 + 1, Y < 10.\n',
    "s(N) :- N = #sum{ X, Y : q(X), r(X, Y) }, N > 0.\n#show s/1.\n",
    "%* block *% m(X) :- q(X), #count{ Y : r(X, Y) } >= 2. % line\n",
    "lin(X) :- q(2*X+1).\nneg(-2147483648).\n",
]
# characters the lexer treats specially, then anything printable or not (no lone surrogates:
# they get their own test, test_surrogates_in_source)
SPECIAL = list("()[]{},.;:-+*/\\|&^~#%\"'_=<>!?@$` \t\n\r\x00\x0b\x0cXYZabcnot0123456789")
TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=["Cs"])),
    max_size=200,
)


def run(source: str) -> None:
    """Compile and evaluate with small limits; only the engine's named errors may escape."""
    error: reasoning.EntailError | None = None
    try:
        rs = reasoning.compile(source, limits=LIMITS)
        rs.evaluate({"q": [[1], [2]], "r": [[1, "x"], [2, 3]]}, ["p(X)"], explain=True, limits=LIMITS)
    except reasoning.EntailError as exc:  # any other exception fails the test
        error = exc
    if error is None:
        return
    assert error.code
    str(error).encode("utf-8")
    if isinstance(error, reasoning.ProgramError):
        assert error.diagnostics
        for d in error.diagnostics:
            assert d.line >= 1 and d.column >= 1, d
            d.render().encode("utf-8")


@FUZZ
@given(TEXT)
def test_arbitrary_text(source: str) -> None:
    run(source)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if kind == "insert":
            text = text[:at] + draw(TEXT.filter(bool).map(lambda t: t[:4])) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif kind == "replace" and at < len(text):
            text = text[:at] + draw(st.sampled_from(SPECIAL)) + text[at + 1 :]
        else:
            end = min(len(text), at + draw(st.integers(1, 30)))
            text = text[:end] + text[at:end] + text[end:]
    return text


@FUZZ
@given(mutated())
def test_mutated_programs(source: str) -> None:
    run(source)


DEEP = st.sampled_from(["(", "-(", "-", "f(", "#count{", "not ", "|", "1+", "X*", "p :- "])


@settings(FUZZ, max_examples=60)
@given(DEEP, st.integers(60, 5_000), st.sampled_from(["p({}1).", "p :- q(X), X = {}1.", "{}"]))
def test_deep_constructs(opener: str, depth: int, frame: str) -> None:
    closer = {"(": ")", "-(": ")", "f(": ")", "#count{": "}", "|": "|"}.get(opener, "")
    run(frame.format(opener * depth + "1" + closer * depth) if "{}" in frame else opener * depth)


@pytest.mark.parametrize(
    "source",
    [
        "p(" + ",".join(["1"] * 5_000) + ").",
        "p :- " + ", ".join(f"q(X{i})" for i in range(100)) + ".",
        "p(" + "+".join(["1"] * 5_000) + ").",
        '"' * 10_001,
        "%*" * 10_000,
        'p("' + "\\" * 9_999 + '").',
    ],
    ids=["5k-args", "100-atom-body", "5k-operators", "quotes", "open-comments", "backslashes"],
)
def test_long_constructs(source: str) -> None:
    run(source)


@settings(FUZZ, max_examples=100)
@given(TEXT, st.integers(0, 200), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
def test_surrogates_in_source(source: str, at: int, surrogate: str) -> None:
    """A str from a JSON API body can hold a lone surrogate: a program error, never an exception."""
    # compile() measures the source with surrogatepass; the lexer refuses the surrogate
    run(source[:at] + surrogate + source[at:])
    run(f'p("{surrogate}").')
