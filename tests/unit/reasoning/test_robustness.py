"""A program error is never a traceback: random text and random token soup."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entail import reasoning

TOKENS = [
    "p", "q", "r", "a", "X", "Y", "_", "1", "-3", '"s"', "(", ")", ",", ".", ":-", "not",
    "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "\\", "#count", "#sum", "#min",
    "#max", "{", "}", ":", ";", "#show", "/", "%", "%*", "*%", "\n", " ",
]  # fmt: skip

LIMITS = reasoning.Limits(derived_facts=2_000, wall_time_ms=2_000)


def _run(source: str) -> None:
    error: reasoning.EntailError | None = None
    try:
        rs = reasoning.compile(source)
        rs.evaluate({"p": [[1], [2]], "q": [[1, "x"]]}, ["p(X)"], explain=True, limits=LIMITS)
    except reasoning.EntailError as exc:  # a named error is fine; anything else fails the test
        error = exc
    if error is not None:
        assert error.code
    if isinstance(error, reasoning.ProgramError):
        for d in error.diagnostics:
            assert d.line >= 1
            assert d.column >= 1
            assert d.render()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup_never_crashes(source: str) -> None:
    _run(source)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes(source: str) -> None:
    _run(source)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children),
        max_leaves=8,
    )
)
def test_arbitrary_json_facts_never_crash(facts: object) -> None:
    rs = reasoning.compile("r(X) :- p(X).")
    try:
        rs.evaluate(facts)  # type: ignore[arg-type]
    except reasoning.FactsError as exc:
        error: reasoning.FactsError | None = exc
    else:
        error = None
    assert error is None or error.code == "invalid-facts"
