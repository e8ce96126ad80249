"""Compile time is near-linear in the program (issue 13, item 5): checked through
deterministic proxies (generated source size, shared shapes), not timings."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import pytest

from entail import reasoning
from entail.reasoning import ruleset
from entail.reasoning.ruleset import _compile_in_pieces


def _chain(n: int) -> str:
    return f"p(X0, X{n}) :- " + ", ".join(f"e(X{i}, X{i + 1})" for i in range(n)) + "."


def test_generated_source_grows_linearly_with_a_long_rule() -> None:
    # continuation functions used to receive every bound variable: quadratic source
    small = len(reasoning.compile(_chain(500)).source_code)
    large = len(reasoning.compile(_chain(2000)).source_code)
    assert large < 4.5 * small, (small, large)


def test_rules_differing_in_predicates_and_constants_share_one_shape() -> None:
    source = "".join(f'r{i}(X, Y) :- e(X, Y), n(Y, {i}), m(Y, "s{i}", c{i}).\n' for i in range(200))
    rs = reasoning.compile(source + 'm(7, "s3", c3). m(7, "s4", c3).\n')
    assert rs.source_code.count("def _shape") == 1
    facts = {"e": [[1, 7]], "n": [[7, 3], [7, 4]]}
    # each rule keeps its own predicate and constants: only r3 has all three matching
    assert [a for a in rs.evaluate(facts).shown_atoms() if a.startswith("r")] == ["r3(1,7)"]


def test_explaining_code_is_built_once_under_concurrency() -> None:
    rs = reasoning.compile("path(X, Y) :- e(X, Y).\npath(X, Z) :- path(X, Y), e(Y, Z).")
    facts = {"e": [[i, i + 1] for i in range(30)]}
    results: list[str] = []

    def run() -> None:
        result = rs.evaluate(facts, ["path(0, X)"], explain=True)
        results.append(result.result_hash)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 4
    assert results[0] == rs.evaluate(facts, ["path(0, X)"]).result_hash


# the benchmark's loan program (bench/run.py's decision rows): a 57 KB generated module
LOAN = Path(__file__).resolve().parents[3] / "bench" / "workloads" / "loan.lp"


def _peak_of_compile(source: str) -> tuple[int, reasoning.Ruleset]:
    reasoning.compile(source)  # imports and caches warm
    tracemalloc.start()
    try:
        rs = reasoning.compile(source)
        return tracemalloc.get_traced_memory()[1], rs
    finally:
        tracemalloc.stop()


def test_the_generated_module_is_compiled_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython's compiler holds a module's AST and symbol tables at once (about 120
    # bytes per character): the loan program's 57 KB module peaked at 7 MiB, most of
    # a decision worker's own RSS; compiled a few KB at a time the peak stays small
    source = "".join(line for line in LOAN.read_text().splitlines(keepends=True) if not line.startswith("%@"))
    peak, rs = _peak_of_compile(source)
    assert len(rs.source_code) > 40_000
    assert peak < 4 * 2**20, peak
    # the same ruleset compiled whole: the peak the pieces avoid
    monkeypatch.setattr(ruleset, "COMPILE_PIECE_CHARS", 10**9)
    whole, again = _peak_of_compile(source)
    assert whole > peak + 2 * 2**20, (whole, peak)
    assert again.source_code == rs.source_code


def test_pieces_keep_the_modules_line_numbers() -> None:
    source = "def f():\n    return 1\n\n\ndef g():\n    raise ValueError\n" * 400
    codes = _compile_in_pieces(source, "<pieces>")
    assert len(codes) > 1
    namespace: dict[str, object] = {}
    for code in codes:
        exec(code, namespace)
    g = namespace["g"]
    assert callable(g)
    # the last g defined: line 6 of the last repetition
    assert g.__code__.co_firstlineno == 6 * 400 - 1
