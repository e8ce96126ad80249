"""The library's docstring examples run as tests (in ``make test-fast`` with the rest of tests/unit).

Only modules whose source holds a ``>>>`` are imported, so a module with import
side effects or an optional dependency (the BigQuery client, the services) never
breaks the collection: an example is a promise of the module that writes it.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "shared" / "entail"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def modules_with_examples() -> list[str]:
    names = []
    for path in sorted(LIBRARY.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def collect() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests: list[doctest.DocTest] = []
    for name in modules_with_examples():
        tests.extend(t for t in finder.find(importlib.import_module(name)) if t.examples)
    return sorted(tests, key=lambda t: t.name)


DOCTESTS = collect()


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_example(test: doctest.DocTest) -> None:
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS, verbose=False)
    outcome = runner.run(test, out=report.append, clear_globs=True)
    assert outcome.failed == 0, "".join(report)


def test_the_collector_finds_the_engine_examples() -> None:
    # a collector that silently finds nothing would pass forever
    names = {t.name for t in DOCTESTS}
    for expected in (
        "entail.reasoning.ruleset",
        "entail.reasoning.bindings",
        "entail.reasoning.bindings.linear",
        "entail.reasoning.query.parse_query",
    ):
        assert expected in names, sorted(names)


def test_a_wrong_example_fails() -> None:
    # the runner reports a mismatch instead of swallowing it
    wrong = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "wrong", "<wrong>", 0)
    report: list[str] = []
    outcome = doctest.DocTestRunner(optionflags=FLAGS).run(wrong, out=report.append)
    assert outcome.failed == 1
    assert "Expected:\n    3\nGot:\n    2" in "".join(report)
