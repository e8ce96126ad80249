"""Every conformance case: the engine gives clingo's model, or the named error at its position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entail import reasoning

CASES = Path(__file__).parent
CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "program.lp").exists())


def _queries(case: Path) -> list[str]:
    path = case / "query.txt"
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _facts(case: Path) -> object:
    path = case / "facts.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_corpus_is_large_enough() -> None:
    assert len(CASE_DIRS) >= 60


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_case(case: Path) -> None:
    source = (case / "program.lp").read_text()
    err_file = case / "expected.err"
    if err_file.exists():
        _check_error(case, source, err_file.read_text().splitlines())
        return
    expected = json.loads((case / "expected.json").read_text())
    result = reasoning.compile(source, str(case / "program.lp")).evaluate(_facts(case), _queries(case))
    assert sorted(result.shown_atoms()) == expected["atoms"]
    for q in result.answers:
        assert sorted(a.atom for a in q.answers) == expected["answers"][q.query], q.query
    assert len(result.result_hash) == 64


def _check_error(case: Path, source: str, lines: list[str]) -> None:
    first = lines[0].split()
    code = first[0]
    position = first[1] if len(first) > 1 else None
    substrings = [line.strip() for line in lines[1:] if line.strip()]
    with pytest.raises(reasoning.EntailError) as info:
        reasoning.compile(source, "program.lp").evaluate(_facts(case), _queries(case))
    exc = info.value
    if isinstance(exc, reasoning.ProgramError):
        errors = [d for d in exc.diagnostics if d.severity == "error"]
        matching = [d for d in errors if d.code == code]
        assert matching, f"expected {code}, got {[d.render() for d in errors]}"
        if position is not None:
            line, column = position.split(":")
            assert any(
                d.line == int(line) and (column == "*" or d.column == int(column)) for d in matching
            ), f"expected {code} at {position}, got {[f'{d.line}:{d.column}' for d in matching]}"
        message = "\n".join(d.render() for d in matching)
    else:
        assert exc.code == code, f"expected {code}, got {exc.code}: {exc}"
        message = str(exc)
    for text in substrings:
        assert text in message, f"{text!r} not in {message!r}"
