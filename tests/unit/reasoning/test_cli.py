"""The `entail` command, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n#show path/2.\n"


def entail(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entail.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "tc.lp").write_text(PROGRAM)
    (tmp_path / "a.json").write_text(json.dumps({"edge": [[1, 2], [2, 3]]}))
    (tmp_path / "b.lp").write_text("edge(7, 8).\n")
    return tmp_path


def test_run_atoms_matches_clingo_text(workdir: Path) -> None:
    proc = entail("run", "tc.lp", "--facts", "a.json", "--format", "atoms", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["path(1,2)", "path(1,3)", "path(2,3)"]


def test_run_jsonl_one_line_per_facts_file(workdir: Path) -> None:
    proc = entail(
        "run",
        "tc.lp",
        "--facts",
        "a.json",
        "--facts",
        "b.lp",
        "--query",
        "path(X, Y)",
        "--explain",
        "--format",
        "jsonl",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [doc["facts"] for doc in lines] == ["a.json", "b.lp"]
    assert [a["atom"] for a in lines[1]["answers"][0]["answers"]] == ["path(7,8)"]
    assert lines[1]["answers"][0]["answers"][0]["proof"]["kind"] == "rule"


def test_run_text_with_explain(workdir: Path) -> None:
    proc = entail("run", "tc.lp", "--facts", "a.json", "--query", "path(1, 3)", "--explain", cwd=workdir)
    assert proc.returncode == 0
    assert "?- path(1, 3)   (1 answer(s))" in proc.stdout
    assert "edge(2,3)  [case fact]" in proc.stdout


def test_run_reports_limits_and_bad_facts(workdir: Path) -> None:
    (workdir / "inf.lp").write_text("n(0).\nn(X + 1) :- n(X).\n")
    proc = entail("run", "inf.lp", "--max-derived-facts", "1000", cwd=workdir)
    assert proc.returncode == 3  # a limit was reached
    assert "error[limit-derived-facts]" in proc.stderr
    (workdir / "bad.json").write_text(json.dumps({"edge": [[1, 2.5]]}))
    proc = entail("run", "tc.lp", "--facts", "bad.json", cwd=workdir)
    assert proc.returncode == 1
    assert "/edge/0/1" in proc.stderr


def test_check_exit_codes_and_json(workdir: Path) -> None:
    assert entail("check", "tc.lp", cwd=workdir).returncode == 0
    (workdir / "bad.lp").write_text("p(X) :- q(Y).\n")
    proc = entail("check", "bad.lp", cwd=workdir)
    assert proc.returncode == 1
    assert "bad.lp:1:3: error[unsafe-variable]" in proc.stdout
    doc = json.loads(entail("check", "bad.lp", "--format", "json", cwd=workdir).stdout)
    assert doc["ok"] is False
    assert doc["diagnostics"][0]["code"] == "unsafe-variable"


def test_test_command_reports_differences(workdir: Path) -> None:
    (workdir / "cases.yaml").write_text(
        """
cases:
  - name: chain
    facts: {"edge": [[1, 2], [2, 3]]}
    expect:
      "path(1, X)": ["path(1, 2)", "path(1,3)"]
  - name: wrong on purpose
    facts_file: b.lp
    expect:
      "path(X, Y)": ["path(7,9)"]
    absent: ["path(7,8)"]
"""
    )
    proc = entail("test", "tc.lp", "cases.yaml", cwd=workdir)
    assert proc.returncode == 1
    assert "FAIL  wrong on purpose" in proc.stdout
    assert "?- path(X, Y): missing path(7,9)" in proc.stdout
    assert "?- path(X, Y): unexpected path(7,8)" in proc.stdout
    assert "path(7,8) holds but must be absent" in proc.stdout
    assert proc.stdout.strip().endswith("1 passed, 1 failed")


def test_test_command_on_a_folder_passes(workdir: Path) -> None:
    folder = workdir / "cases"
    folder.mkdir()
    (folder / "one.json").write_text(
        json.dumps([{"name": "x", "facts": {"edge": [[1, 2]]}, "expect": {"path(A,B)": ["path(1,2)"]}}])
    )
    proc = entail("test", "tc.lp", "cases", "-v", cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  x" in proc.stdout


def test_usage_errors_exit_2(workdir: Path) -> None:
    proc = entail("run", "missing.lp", cwd=workdir)
    assert proc.returncode == 2
    assert "missing.lp" in proc.stderr
    (workdir / "broken.yaml").write_text("cases: [ {name: x, expect: 3} ]")
    proc = entail("test", "tc.lp", "broken.yaml", cwd=workdir)
    assert proc.returncode == 2
    assert "'expect' maps each query" in proc.stderr
