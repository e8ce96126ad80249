"""Example cases for a ruleset: facts, queries and the answers they must give.

The format (YAML or JSON, one file or a folder of them) is what ``entail test``
runs and what a published ruleset version may carry::

    cases:
      - name: ann is approved
        facts: {"applicant": [["ann"]], "income": [["ann", 500000]]}
        query: ["decision(A, D)"]
        expect:
          "decision(A, D)": ['decision("ann",approved)']
        absent: ['decision("ann",declined)']   # optional: atoms that must not hold
        reasons:                                 # optional: an answer's reason codes, in order
          'decision("ann",approved)': []

``expect`` compares the full answer set of each query (order and spacing do
not matter); ``absent`` lists atoms that must not be in the model; ``reasons``
maps an answer of one of the queries to the codes of its reasons (reasons.py),
in their order (weight, then code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EntailError, ProgramError
from .facts import FactSet, facts_from_json, parse_facts_lp
from .parse import parse_atom
from .ruleset import Ruleset
from .runtime import evaluate_term
from .terms import format_atom
from .textfile import (
    FACTS_FILE_BYTES,
    TEST_FILE_BYTES,
    FileReadError,
    check_json_depth,
    loads_json,
    read_text,
)


class TestFileError(EntailError):
    """A test file that cannot be read or does not follow the format."""

    code = "invalid-test-file"
    __test__ = False  # not a pytest class


@dataclass
class TestCase:
    name: str
    facts: dict[str, Any] | FactSet
    queries: list[str]
    expect: dict[str, list[str]]
    absent: list[str] = field(default_factory=list)
    source: str = ""
    reasons: dict[str, list[str]] = field(default_factory=dict)
    __test__ = False


@dataclass
class TestOutcome:
    case: TestCase
    passed: bool
    problems: list[str]
    __test__ = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.case.name, "passed": self.passed, "problems": self.problems}


def normalise_atom(text: str) -> str:
    """An atom as the engine prints it, so ``p(1, "a")`` and ``p(1,"a")`` compare equal."""
    atom = parse_atom(text.strip())
    values = []
    for arg in atom.args:
        v = evaluate_term(arg, {})
        if v is None:
            raise TestFileError(f"expected atom {text!r} must be ground")
        values.append(v)
    return format_atom(atom.predicate, tuple(values))


def _case_from(data: Any, where: str, base: Path | None, index: int) -> TestCase:
    if not isinstance(data, dict):
        raise TestFileError(f"{where}: case {index + 1} must be a mapping")
    known = {"name", "facts", "facts_file", "query", "queries", "expect", "absent", "reasons"}
    unknown = set(data) - known
    if unknown:
        raise TestFileError(f"{where}: case {index + 1} has unknown key(s) {sorted(unknown)}")
    name = str(data.get("name") or f"case {index + 1}")
    facts: dict[str, Any] | FactSet = data.get("facts") or {}
    if "facts_file" in data:
        path = (base or Path(".")) / str(data["facts_file"])
        facts = load_facts_file(path)
    raw_queries = data.get("query", data.get("queries")) or []
    if isinstance(raw_queries, str):
        raw_queries = [raw_queries]
    if not isinstance(raw_queries, list) or not all(isinstance(q, str) for q in raw_queries):
        raise TestFileError(f"{where}: case {name!r}: 'query' is a query string or a list of them")
    queries: list[str] = list(raw_queries)
    expect = data.get("expect") or {}
    if not isinstance(expect, dict) or not all(isinstance(q, str) for q in expect):
        raise TestFileError(f"{where}: case {name!r}: 'expect' maps each query to its answers")
    for q in expect:
        if q not in queries:
            queries.append(q)
    absent = data.get("absent") or []
    if not all(
        isinstance(atoms, list | None) and all(isinstance(a, str) for a in atoms or [])
        for atoms in expect.values()
    ):
        raise TestFileError(f"{where}: case {name!r}: each 'expect' entry is a list of atoms (strings)")
    if not isinstance(absent, list) or not all(isinstance(a, str) for a in absent):
        raise TestFileError(f"{where}: case {name!r}: 'absent' is a list of atoms (strings)")
    reasons = data.get("reasons") or {}
    if not isinstance(reasons, dict) or not all(
        isinstance(a, str) and isinstance(codes, list) and all(isinstance(c, str) for c in codes)
        for a, codes in reasons.items()
    ):
        raise TestFileError(f"{where}: case {name!r}: 'reasons' maps an answer to a list of reason codes")
    try:
        norm_expect = {q: sorted({normalise_atom(a) for a in (atoms or [])}) for q, atoms in expect.items()}
        norm_absent = [normalise_atom(a) for a in absent]
        norm_reasons = {normalise_atom(a): list(codes) for a, codes in reasons.items()}
    except ProgramError as exc:
        raise TestFileError(f"{where}: case {name!r}: {exc}") from None
    return TestCase(name, facts, queries, norm_expect, norm_absent, where, norm_reasons)


def load_test_cases(path: Path) -> list[TestCase]:
    """Cases from a YAML/JSON file, or from every such file in a folder (sorted)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
        if not files:
            raise TestFileError(f"{path}: no .yaml, .yml or .json test files")
        return [c for f in files for c in load_test_cases(f)]
    import yaml  # here: `entail run` and the services never read YAML (40 ms at start-up)

    try:
        text = read_text(path, TEST_FILE_BYTES)
        if path.suffix == ".json":
            data = loads_json(text, str(path))
        else:
            # flow-style nesting first: PyYAML would recurse 10,000 deep before failing
            check_json_depth(text, str(path), pointer=False)
            data = yaml.safe_load(text)
    except FileReadError as exc:
        raise TestFileError(str(exc)) from None
    except (yaml.YAMLError, ValueError) as exc:
        raise TestFileError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise TestFileError(f"{path}: not valid YAML: nested too deeply") from None
    return cases_from_data(data, str(path), path.parent)


def cases_from_data(data: Any, where: str = "<tests>", base: Path | None = None) -> list[TestCase]:
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, list):
        raise TestFileError(f"{where}: expected a list of cases (or a mapping with 'cases')")
    return [_case_from(c, where, base, i) for i, c in enumerate(data)]


def load_facts_file(path: Path) -> FactSet:
    """Case facts from a ``.json`` file (docs/engine.md, "Case facts") or an ``.lp`` file."""
    try:
        text = read_text(path, FACTS_FILE_BYTES)
        if path.suffix == ".lp":
            return parse_facts_lp(text, str(path))
        data = loads_json(text, str(path))
    except FileReadError as exc:
        raise TestFileError(str(exc)) from None
    return facts_from_json(data)


def run_test_case(ruleset: Ruleset, case: TestCase) -> TestOutcome:
    """Evaluate one case; the outcome lists every difference from what it expects."""
    try:
        result = ruleset.evaluate(case.facts, case.queries)
    except EntailError as exc:
        return TestOutcome(case, False, [f"evaluation failed: {exc}"])
    problems: list[str] = []
    by_query = {q.query: q for q in result.answers}
    for query, expected in case.expect.items():
        got = sorted(a.atom for a in by_query[query.strip()].answers)
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        for atom in missing:
            problems.append(f"?- {query}: missing {atom}")
        for atom in extra:
            problems.append(f"?- {query}: unexpected {atom}")
    if case.reasons:
        answers = {a.atom: a for q in result.answers for a in q.answers}
        for atom, codes in case.reasons.items():
            answer = answers.get(atom)
            if answer is None:
                problems.append(f"reasons of {atom}: not an answer of the case's queries")
                continue
            got = [r.code for r in answer.reasons or ()]
            if got != codes:
                problems.append(f"reasons of {atom}: expected {codes}, got {got}")
    if case.absent:
        model = set(result.model_atoms())
        for atom in case.absent:
            if atom in model:
                problems.append(f"{atom} holds but must be absent")
    return TestOutcome(case, not problems, problems)
