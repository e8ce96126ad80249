"""Compile time is near-linear in the program (issue 13, item 5): checked through
deterministic proxies (generated source size, shared shapes), not timings."""

from __future__ import annotations

import threading

from entail import reasoning


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
