"""What the answer diagnostics (issue 17: type_infer.py, query_check.py) cost.

- the loan case: one evaluation with a query, and the case-fact kind check it
  includes (a cache hit after the first case of a shape);
- 20,000 one-line rules (``compile-rules-20000``): compile, then the first
  evaluation with a query (the kind inference over every rule, once per shape
  of case facts) against an evaluation without queries (no check).

CPU time, the best of ``--reps``, so a busy machine's waits do not count.

    .venv/bin/python bench/answer_diagnostics.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import one_line_rules

from entail import reasoning
from entail.reasoning.facts import facts_from_json

LOAN = Path(__file__).resolve().parents[1] / "shared/entail/examples/loan"


def best_cpu(reps: int, work: Callable[[], object], inner: int = 1) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        for _ in range(inner):
            work()
        best = min(best, (time.process_time() - start) / inner)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    rs = reasoning.compile((LOAN / "program.lp").read_text())
    facts = facts_from_json(json.loads((LOAN / "ann.json").read_text()), dict(rs.analysis.signatures))
    rs.evaluate(facts, ["decision(A, D)"])
    whole = best_cpu(args.reps, lambda: rs.evaluate(facts, ["decision(A, D)"]), 500)
    check = best_cpu(args.reps, lambda: rs._input_types.clashes(facts.facts), 500)
    print(f"loan: evaluation with a query {whole * 1e6:.0f} us, of which the kind check {check * 1e6:.1f} us "
          f"({100 * check / whole:.1f}%)")  # fmt: skip

    source = one_line_rules(20000)
    start = time.process_time()
    big = reasoning.compile(source)
    compiled = time.process_time() - start
    case = {"e": [[1, 2], [2, 3]], "n": [[2, 5], [3, 7]]}
    start = time.process_time()
    big.evaluate(case, ["r5(X, Y)"])
    first = time.process_time() - start
    plain = best_cpu(args.reps, lambda: big.evaluate(case))
    print(f"compile-rules-20000: compile {compiled * 1e3:.0f} ms; first evaluation with a query "
          f"{first * 1e3:.0f} ms against {plain * 1e3:.0f} ms without queries "
          f"(the kind inference, once per shape of case facts)")  # fmt: skip
    print("command: .venv/bin/python bench/answer_diagnostics.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
