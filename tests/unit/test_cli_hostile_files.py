"""Hostile files through the real ``entail`` process: a diagnostic and an exit code, no traceback.

Each input class of issue 13 (item 4) is here: bytes that are not UTF-8 in
every kind of file the CLI reads, UTF-16 JSON with and without a byte-order
mark, JSON nested 10,000 deep, lone surrogates and NULs in facts, and endless
devices (``/dev/zero``, ``/dev/urandom``) that must stop at the size cap.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entail.cli import main

EXIT_FAIL, EXIT_USAGE, EXIT_LIMIT = 1, 2, 3
PROGRAM = "#defined e/1.\np(X) :- e(X).\n"


def entail(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI's ``main`` in this process (an exception would fail the test: no traceback path)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd):
        code = main(list(args), out, err)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def entail_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real ``entail`` process, for what only a process shows (exit status, stderr, argv bytes)."""
    return subprocess.run(
        [sys.executable, "-m", "entail.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Error:" not in proc.stderr.replace("error[", ""), proc.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "ok.lp").write_text(PROGRAM)
    (tmp_path / "latin1.lp").write_bytes(b'p(1).\nq(X) :- p(X), X = "caf\xe9".\n')
    (tmp_path / "latin1.json").write_bytes(b'{"e": [["caf\xe9"]]}')
    (tmp_path / "latin1_facts.lp").write_bytes(b"e(1).\ne(\xff).\n")
    (tmp_path / "latin1.yaml").write_bytes(b"cases:\n  - name: caf\xe9\n")
    (tmp_path / "latin1_cases.json").write_bytes(b'[{"name": "caf\xe9"}]')
    return tmp_path


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("run", "latin1.lp"), "latin1.lp:2:23: error[invalid-encoding]: invalid UTF-8 at byte offset 28"),
        (("check", "latin1.lp"), "latin1.lp:2:23: error[invalid-encoding]: invalid UTF-8 at byte offset 28"),
        (("test", "latin1.lp", "latin1.yaml"), "invalid UTF-8 at byte offset 28"),
    ],
)
def test_program_not_utf8_is_a_diagnostic_with_line_column_and_offset(
    workdir: Path, args: tuple[str, ...], where: str
) -> None:
    proc = entail_process(*args, cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_FAIL
    assert where in proc.stdout + proc.stderr


def test_check_json_reports_the_encoding_diagnostic(workdir: Path) -> None:
    proc = entail("check", "--format", "json", "latin1.lp", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_FAIL
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    [diagnostic] = doc["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"], diagnostic["column"]) == ("invalid-encoding", 2, 23)
    assert "byte offset 28" in diagnostic["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "ok.lp", "--facts", "latin1.json"), "latin1.json: invalid UTF-8 at byte offset 12"),
        (("run", "ok.lp", "--facts", "latin1_facts.lp"), "latin1_facts.lp: invalid UTF-8 at byte offset 8"),
        (("test", "ok.lp", "latin1.yaml"), "latin1.yaml: invalid UTF-8 at byte offset 20"),
        (("test", "ok.lp", "latin1_cases.json"), "latin1_cases.json: invalid UTF-8 at byte offset 14"),
    ],
)
def test_facts_and_test_files_not_utf8(workdir: Path, args: tuple[str, ...], message: str) -> None:
    proc = entail(*args, cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert message in proc.stderr


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        ("utf-16", "UTF-16 (little-endian byte-order mark)"),
        ("utf-16-be", "UTF-16-BE"),
        ("utf-16-le", "UTF-16-LE"),
        ("utf-8-sig", "UTF-8 with a byte-order mark"),
        ("utf-32", "UTF-32"),
    ],
)
def test_facts_json_in_another_encoding_is_named(workdir: Path, encoding: str, named: str) -> None:
    (workdir / "facts.json").write_bytes(json.dumps({"e": [[1]]}).encode(encoding))
    proc = entail("run", "ok.lp", "--facts", "facts.json", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert named in proc.stderr


def test_facts_json_nested_10000_deep_names_the_pointer(workdir: Path) -> None:
    (workdir / "deep.json").write_text('{"e": [' + "[" * 10_000 + "]" * 10_000 + "]}")
    proc = entail("run", "ok.lp", "--facts", "deep.json", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert "deep.json: /e/0" + "/0" * 62 + ": JSON nested deeper than 64 levels" in proc.stderr


def test_test_file_nested_10000_deep(workdir: Path) -> None:
    (workdir / "deep.yaml").write_text("cases: " + "[" * 10_000 + "]" * 10_000 + "\n")
    (workdir / "deep_cases.json").write_text('{"cases": ' + "[" * 10_000 + "]" * 10_000 + "}")
    proc = entail("test", "ok.lp", "deep_cases.json", cwd=workdir)
    assert proc.returncode == EXIT_USAGE
    assert "deep_cases.json: /cases" + "/0" * 63 + ": JSON nested deeper than 64 levels" in proc.stderr
    proc = entail("test", "ok.lp", "deep.yaml", cwd=workdir)
    assert proc.returncode == EXIT_USAGE
    assert "deep.yaml: brackets nested deeper than 64 levels" in proc.stderr
    # block-style YAML nesting reaches PyYAML's recursion, which is caught too
    (workdir / "block.yaml").write_text("".join(" " * i + "- \n" for i in range(0, 4_000, 2)))
    proc = entail("test", "ok.lp", "block.yaml", cwd=workdir)
    assert proc.returncode == EXIT_USAGE
    assert "block.yaml: not valid YAML" in proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"e": [["\\ud800"]]}', "/e/0/0: string contains a lone surrogate U+D800"),
        ('{"e": [["ok", "x\\udfffy"]]}', "/e/0/1: string contains a lone surrogate U+DFFF"),
        ('{"e": [["a\\u0000b"]]}', "/e/0/0: string contains a NUL character"),
        ('{"\\ud800": [[1]]}', "a predicate name contains a lone surrogate"),
        ('{"not": [[1]]}', "/not: 'not' is a keyword"),
        ('{"e": [[true]]}', "/e/0/0: unsupported value: boolean true"),
        ('{"e": [[2147483648]]}', "/e/0/0: integer 2147483648 does not fit in 32 bits"),
    ],
)
def test_bad_values_in_facts_are_named_with_a_pointer(workdir: Path, text: str, message: str) -> None:
    (workdir / "facts.json").write_text(text)
    proc = entail("run", "ok.lp", "--facts", "facts.json", "--format", "jsonl", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_FAIL
    assert message in json.loads(proc.stdout)["error"]["message"]


def test_number_longer_than_python_converts(workdir: Path) -> None:
    (workdir / "facts.json").write_text('{"e": [[' + "9" * 5000 + "]]}")
    proc = entail("run", "ok.lp", "--facts", "facts.json", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert "a number with more than 4300 digits" in proc.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("command", [("run",), ("check",), ("check", "--format", "json")])
def test_endless_program_stops_at_the_size_limit(
    workdir: Path, device: str, command: tuple[str, ...]
) -> None:
    started = time.monotonic()
    proc = (entail_process if device == "/dev/urandom" else entail)(*command, device, cwd=workdir)
    assert time.monotonic() - started < 20
    no_traceback(proc)
    assert proc.returncode == EXIT_LIMIT
    if "json" in command:
        assert json.loads(proc.stdout)["error"]["code"] == "limit-program-size"
    else:
        assert f"error[limit-program-size]: {device}: program size limit exceeded" in proc.stderr


def test_endless_facts_and_test_files_stop_at_their_caps(workdir: Path) -> None:
    proc = entail("run", "ok.lp", "--facts", "/dev/zero", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_LIMIT
    assert "error[limit-file-size]: /dev/zero: file size limit exceeded" in proc.stderr
    proc = entail("test", "ok.lp", "/dev/urandom", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_LIMIT
    assert "limit-file-size" in proc.stderr


def test_a_large_regular_program_names_its_size_and_is_not_a_usage_error(workdir: Path) -> None:
    (workdir / "big.lp").write_text("p(1).\n" * 200_000)  # 1.2 MB > 1 MB
    proc = entail("run", "big.lp", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_LIMIT
    assert "program size limit exceeded: 1200000 bytes, limit is 1000000 bytes" in proc.stderr


def test_test_file_entries_of_the_wrong_type(workdir: Path) -> None:
    (workdir / "odd.yaml").write_text(
        "cases:\n  - name: x\n    expect: {'p(X)': [[1, 2]]}\n  - name: y\n    absent: 3\n"
    )
    proc = entail("test", "ok.lp", "odd.yaml", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert "each 'expect' entry is a list of atoms" in proc.stderr
    (workdir / "odd.yaml").write_text("cases:\n  - name: y\n    absent: 3\n")
    proc = entail("test", "ok.lp", "odd.yaml", cwd=workdir)
    assert proc.returncode == EXIT_USAGE
    assert "'absent' is a list of atoms" in proc.stderr
    (workdir / "odd.yaml").write_text("cases:\n  - name: z\n    expect: {3: ['p(1)']}\n")
    proc = entail("test", "ok.lp", "odd.yaml", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert "'expect' maps each query" in proc.stderr


def test_batch_reads_its_program_and_mapping_with_the_same_guards(workdir: Path) -> None:
    proc = entail("batch", "/dev/zero", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_LIMIT
    assert "/dev/zero: file size limit exceeded" in proc.stderr
    proc = entail("batch", "latin1.lp", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_FAIL
    assert "latin1.lp: invalid UTF-8 at byte offset 28" in proc.stderr
    (workdir / "deep.json").write_text("{" + '"a": [' * 5_000 + "]" * 5_000 + "}")
    proc = entail("batch", "ok.lp", "--mapping", "deep.json", cwd=workdir)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert "deep.json: /a" + "/0" * 63 + ": JSON nested deeper than 64 levels" in proc.stderr


def test_query_argument_that_is_not_utf8(workdir: Path) -> None:
    # undecodable argv bytes reach Python as lone surrogates (PEP 383); they must not reach the engine
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"entail.cli", b"run", b"ok.lp", b"--query", b'p("\xff")'],
        cwd=workdir,
        capture_output=True,
        timeout=60,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == EXIT_USAGE
    assert 'entail: --query p("\\xff") is not valid UTF-8 (byte 0xff at character 3)' in stderr
