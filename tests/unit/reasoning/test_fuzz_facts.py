"""Fuzzing the facts decoders: JSON values, raw bytes and ``.lp`` text give a named error or facts.

The engine's contract (docs/engine.md): ``facts_from_json`` raises FactsError
(with a JSON pointer) or InputFactsLimitExceeded and nothing else; the file
readers raise FileReadError subclasses; ``parse_facts_lp`` raises ProgramError.
Accepted facts are always printable as UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entail import reasoning
from entail.reasoning.textfile import FileReadError, decode_utf8, loads_json

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = st.one_of(
    st.sampled_from(["e", "not", "p_1", "Q", "_x", "a'b", "", "a/b", "~0", "edge", "\ud800", "e\x00"]),
    st.text(max_size=6),
)
SCALARS = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(),
    st.sampled_from([2**31, -(2**31) - 1, 10**400, True, False, None, 0.5, float("nan"), float("inf")]),
    st.text(max_size=8),  # includes lone surrogates and NUL
    st.floats(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(NAMES, inner, max_size=3),
    ),
    max_leaves=30,
)
FACTS_LIKE = st.one_of(
    VALUES,
    st.dictionaries(NAMES, st.lists(st.lists(SCALARS, max_size=4), max_size=5), max_size=4),
    st.dictionaries(NAMES, st.lists(VALUES, max_size=4), max_size=3),
)


def check_facts(data: Any, arities: dict[str, int] | None = None) -> None:
    error: reasoning.EntailError | None = None
    try:
        facts = reasoning.facts_from_json(data, arities, max_facts=8)
    except (reasoning.FactsError, reasoning.InputFactsLimitExceeded) as exc:  # nothing else may escape
        error = exc
    if isinstance(error, reasoning.FactsError):
        assert error.path == "" or error.path.startswith("/"), error.path
        str(error).encode("utf-8")
        json.dumps(error.to_json(), ensure_ascii=False).encode("utf-8")
    elif isinstance(error, reasoning.InputFactsLimitExceeded):
        assert error.value == 9
    else:
        assert len(facts) <= 8
        for atom in facts.atoms():
            atom.encode("utf-8")
            assert "\x00" not in atom


@FUZZ
@given(FACTS_LIKE)
def test_facts_from_json_raises_only_named_errors(data: Any) -> None:
    check_facts(data)


@FUZZ
@given(FACTS_LIKE, st.dictionaries(st.sampled_from(["e", "edge", "p_1"]), st.integers(0, 4), max_size=3))
def test_facts_from_json_with_arities(data: Any, arities: dict[str, int]) -> None:
    check_facts(data, arities)


# bytes that look like JSON facts, broken in every way a file can be
JSONISH = st.lists(
    st.one_of(
        st.sampled_from([b"{", b"}", b"[", b"]", b",", b":", b'"e"', b'"\\ud800"', b"1", b"-", b"1e999"]),
        st.sampled_from(
            [b"\xff", b"\xfe\xff", b"\xef\xbb\xbf", b"\x00", b"\xc3", b"\xed\xa0\x80", b'"\\u0000"']
        ),
        st.sampled_from([b"true", b"null", b"9" * 4400, b"[" * 100, b"]" * 100, b'"\\', b" ", b"\n"]),
        st.binary(max_size=8),
    ),
    max_size=40,
).map(b"".join)


@FUZZ
@given(JSONISH)
def test_facts_file_bytes_raise_only_named_errors(data: bytes) -> None:
    message = ""
    try:
        value = loads_json(decode_utf8(data, "facts.json"), "facts.json")
    except FileReadError as exc:  # nothing else may escape
        message = str(exc)
    if message:
        assert message.startswith("facts.json: ")
    else:
        check_facts(value)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                ["e(1).", 'e("a").', "e(X).", "e(1,2).", "p :- q.", "#show e/1.", "e(-3).", "\n"]
            ),
            st.sampled_from(["e(1+2).", "e(a).", 'e("\\n").', "not(1).", "e(", ")", ".", "%", "\x00"]),
            st.text(max_size=5),
        ),
        max_size=20,
    ).map(" ".join)
)
def test_lp_facts_raise_only_program_errors(text: str) -> None:
    error: reasoning.ProgramError | None = None
    try:
        facts = reasoning.parse_facts_lp(text, "facts.lp")
    except reasoning.ProgramError as exc:  # nothing else may escape
        error = exc
    if error is None:
        for atom in facts.atoms():
            atom.encode("utf-8")
        return
    for d in error.diagnostics:
        assert d.line >= 1 and d.column >= 1
        d.render()
