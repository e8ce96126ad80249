"""Shape checks of the conformance corpus, and agreement of expected.json with clingo.

This does not run the engine (that test belongs to the engine); it checks that every
case folder is well formed, that every committed ``expected.json`` is exactly what
``regen.py`` computes with clingo, and cross-checks some error cases against clingo.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def _load_regen() -> ModuleType:
    name = "_conformance_regen"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "regen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


regen = _load_regen()

CASES = regen.case_dirs(HERE)
ERROR_CASES = [c for c in CASES if regen.is_error_case(c)]
MODEL_CASES = [c for c in CASES if not regen.is_error_case(c)]

ALLOWED_FILES = {"program.lp", "facts.json", "query.txt", "expected.json", "expected.err"}
PROGRAM_CODES = {"syntax-error", "unsafe-variable", "unstratifiable", "arity-mismatch"}
LINE_ONLY_CODES = {"syntax-error", "unstratifiable"}
ERR_FIRST_LINE = re.compile(r"(?P<code>[a-z-]+)(?: (?P<line>[0-9]+):(?P<col>[0-9]+|\*))?\Z")
CASE_NAME = re.compile(r"[a-z0-9_]+\Z")


def _ids(cases: list[Path]) -> list[str]:
    return [c.name for c in cases]


def _program_lines(case: Path) -> list[str]:
    return (case / "program.lp").read_text(encoding="utf-8").split("\n")


def _parse_err(case: Path) -> tuple[str, int | None, int | None, list[str]]:
    lines = (case / "expected.err").read_text(encoding="utf-8").splitlines()
    assert lines, "expected.err is empty"
    m = ERR_FIRST_LINE.match(lines[0])
    assert m, f"bad first line of expected.err: {lines[0]!r}"
    line = int(m["line"]) if m["line"] else None
    col = None if m["col"] in (None, "*") else int(m["col"])
    return m["code"], line, col, lines[1:]


# --------------------------------------------------------------------------- corpus


def test_corpus_size_and_coverage() -> None:
    assert len(CASES) >= 75
    assert len(ERROR_CASES) >= 15
    codes = {_parse_err(c)[0] for c in ERROR_CASES}
    assert codes == PROGRAM_CODES | {"invalid-facts"}


def test_every_folder_is_a_case() -> None:
    for entry in HERE.iterdir():
        if entry.is_dir() and not entry.name.startswith((".", "__")):
            assert (entry / "program.lp").exists(), f"{entry.name} has no program.lp"
            assert CASE_NAME.match(entry.name), f"bad case name {entry.name!r}"


# --------------------------------------------------------------------------- every case


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_case_files(case: Path) -> None:
    names = {p.name for p in case.iterdir()}
    assert names <= ALLOWED_FILES, f"unexpected files: {sorted(names - ALLOWED_FILES)}"
    assert ("expected.json" in names) != ("expected.err" in names), (
        "need exactly one of expected.json / expected.err"
    )
    raw = (case / "program.lp").read_bytes()
    text = raw.decode("utf-8")
    assert "\r" not in text
    assert text.startswith("% "), "program.lp must start with a one-line '% ...' comment"
    assert len(text.split("\n", 1)[0]) > 10, "the first comment line should say what is checked"
    if (case / "facts.json").exists():
        json.loads((case / "facts.json").read_text(encoding="utf-8"))
    for q in regen.read_queries(case):
        regen.parse_query(q)


@pytest.mark.parametrize("case", MODEL_CASES, ids=_ids(MODEL_CASES))
def test_expected_json_shape(case: Path) -> None:
    text = (case / "expected.json").read_text(encoding="utf-8")
    doc: Any = json.loads(text)
    assert regen.render(doc) == text, "expected.json is not in canonical form (run regen.py)"
    assert set(doc) <= {"atoms", "answers"}
    atoms = doc["atoms"]
    assert isinstance(atoms, list)
    assert all(isinstance(a, str) for a in atoms)
    assert atoms == sorted(set(atoms))
    if (case / "query.txt").exists():
        answers = doc["answers"]
        assert list(answers) == regen.read_queries(case)
        for matched in answers.values():
            assert matched == sorted(set(matched))
    else:
        assert "answers" not in doc
    if (case / "facts.json").exists():
        regen.facts_to_clingo(json.loads((case / "facts.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("case", ERROR_CASES, ids=_ids(ERROR_CASES))
def test_expected_err_shape(case: Path) -> None:
    code, line, col, extra = _parse_err(case)
    assert all(s.strip() for s in extra), "message substrings must not be blank"
    if code == "invalid-facts":
        assert line is None, "invalid-facts has no position"
        assert (case / "facts.json").exists()
        return
    assert code in PROGRAM_CODES
    assert line is not None, f"{code} needs a line:column position"
    lines = _program_lines(case)
    assert 1 <= line <= len(lines)
    assert all(ln.isascii() for ln in lines), "error programs stay ASCII (columns = bytes)"
    if col is None:
        assert code in LINE_ONLY_CODES, f"{code} needs an exact column"
    else:
        assert 1 <= col <= len(lines[line - 1]) + 1
        assert not lines[line - 1][col - 1 : col].isspace(), "position points at whitespace"
    assert not (case / "query.txt").exists()


# --------------------------------------------------------------------------- clingo


@pytest.mark.parametrize("case", MODEL_CASES, ids=_ids(MODEL_CASES))
def test_expected_json_matches_clingo(case: Path) -> None:
    pytest.importorskip("clingo")
    committed = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    assert regen.clingo_expected(case) == committed


def _clingo_run(program: str) -> tuple[int | None, list[str]]:
    """(number of models or None when clingo rejects the program, log messages)."""
    import clingo

    messages: list[str] = []
    ctl = clingo.Control(["--warn=none", "--models=0"], logger=lambda _c, m: messages.append(m))
    try:
        ctl.add("base", [], program)
        ctl.ground([("base", [])])
    except RuntimeError:
        return None, messages
    count = 0

    def on_model(_model: Any) -> None:
        nonlocal count
        count += 1

    ctl.solve(on_model=on_model)
    return count, messages


UNSAFE_CASES = [c for c in ERROR_CASES if _parse_err(c)[0] == "unsafe-variable"]
FACTS_CASES = [c for c in ERROR_CASES if _parse_err(c)[0] == "invalid-facts"]
UNSAFE_NOTE = re.compile(r":(\d+):(\d+)-\d+: note: '[^']+' is unsafe")


@pytest.mark.parametrize("case", MODEL_CASES + FACTS_CASES, ids=_ids(MODEL_CASES + FACTS_CASES))
def test_one_arity_per_predicate(case: Path) -> None:
    """The engine rejects a name used with two arities (clingo does not): avoid it."""
    clingo = pytest.importorskip("clingo")
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], (case / "program.lp").read_text(encoding="utf-8"))
    if not regen.is_error_case(case) and (case / "facts.json").exists():
        facts = json.loads((case / "facts.json").read_text(encoding="utf-8"))
        ctl.add("base", [], regen.facts_to_clingo(facts))
    ctl.ground([("base", [])])
    arities: dict[str, set[int]] = {}
    for name, arity, _positive in ctl.symbolic_atoms.signatures:
        arities.setdefault(name, set()).add(arity)
    assert {n: a for n, a in arities.items() if len(a) > 1} == {}


@pytest.mark.parametrize("case", UNSAFE_CASES, ids=_ids(UNSAFE_CASES))
def test_unsafe_cases_agree_with_clingo(case: Path) -> None:
    """clingo rejects them too, and its earliest unsafe-variable note is our position."""
    pytest.importorskip("clingo")
    _code, line, col, _extra = _parse_err(case)
    models, messages = _clingo_run((case / "program.lp").read_text(encoding="utf-8"))
    assert models is None, "clingo accepted the program"
    log = "".join(messages)
    notes = sorted((int(a), int(b)) for a, b in UNSAFE_NOTE.findall(log))
    assert notes, log
    assert notes[0] == (line, col), log


@pytest.mark.parametrize("case", FACTS_CASES, ids=_ids(FACTS_CASES))
def test_invalid_facts_programs_are_fine(case: Path) -> None:
    """Only the facts are wrong: the program alone has one model on clingo."""
    pytest.importorskip("clingo")
    models, messages = _clingo_run((case / "program.lp").read_text(encoding="utf-8"))
    assert models == 1, messages
