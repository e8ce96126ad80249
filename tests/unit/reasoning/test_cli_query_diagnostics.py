"""Query and type diagnostics in `entail check --query` and `entail run` (issue 17)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from entail.cli import main

PROGRAM = "reports(bob, ann).\nmanager(E, M) :- employee(E), reports(E, M).\n"


def entail(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "org.lp"
    path.write_text(PROGRAM)
    (tmp_path / "strings.json").write_text(json.dumps({"employee": [["bob"]]}))
    return path


def test_check_warns_about_queries_with_column_and_suggestion(program: Path) -> None:
    code, out, _ = entail("check", str(program), "--query", "mangaer(E, M)", "--query", " manager(E)")
    assert code == 0  # warnings only
    assert (
        "<query>:1:1: warning[query-unknown-predicate]: predicate 'mangaer/2' is neither in the program"
        in out
    )
    assert "did you mean 'manager/2'?" in out
    assert "<query>:1:2: warning[query-arity-mismatch]" in out
    assert out.rstrip().endswith("0 error(s), 3 warning(s)")  # with the undefined employee/1


def test_check_refuses_a_query_that_does_not_parse(program: Path) -> None:
    code, out, _ = entail("check", str(program), "--query", "manager(E,", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False
    assert doc["diagnostics"][-1]["code"] == "invalid-query"
    assert doc["diagnostics"][-1]["column"] == 11


def test_run_shows_the_clash_the_case_facts_bring(program: Path, tmp_path: Path) -> None:
    facts = str(tmp_path / "strings.json")
    code, out, _ = entail(
        "run", str(program), "--facts", facts, "--query", "manager(E, M)", "--format", "text"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "?- manager(E, M)   (0 answer(s))"
    assert lines[1].startswith(f"{program}:2:39: warning[type-clash]: variable 'E' joins employee/1")
    # other formats keep stdout machine-readable and print the warnings on stderr
    code, out, err = entail(
        "run", str(program), "--facts", facts, "--query", "manager(E, M)", "--format", "json"
    )
    assert json.loads(out)["answers"][0]["diagnostics"][0]["code"] == "type-clash"
    assert "warning[type-clash]" in err
