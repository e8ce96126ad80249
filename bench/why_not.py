"""What a why-not explanation costs (issue 17 §3: ≤ 2 ms for one atom on the loan example).

A declined loan applicant, evaluated once; then ``explain_absent`` for
``decision("dee",approved)`` (the negation of ``declined`` holds) and for
``stable_job("dee")`` with a too-short employment (a comparison fails, read
from two facts), and ``decision("dee",referred)``. Each is timed over many
calls; the median of ``--reps`` batches is printed, in CPU time, so a busy
machine's waits do not count.

    .venv/bin/python bench/why_not.py [--reps 21]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from entail import reasoning
from entail.reasoning.why_not import explain_absent

LOAN = Path(__file__).resolve().parents[1] / "shared/entail/examples/loan/program.lp"
DECLINED = {
    "applicant": [["dee"]],
    "income": [["dee", 2000000, "salary"], ["dee", 300000, "rent"]],
    "debt": [["dee", 900000, "car"]],
    "credit_event": [["dee", "default", 2023], ["dee", "late_payment", 2019]],
    "requested": [["dee", 9000000]],
    "employment": [["dee", 8]],
}
ATOMS = ('decision("dee",approved)', 'decision("dee",referred)', 'stable_job("dee")')
BUDGET_MS = 2.0


def median_ms(reps: int, inner: int, atom: str, result: reasoning.Result) -> float:
    times = []
    for _ in range(reps):
        start = time.process_time()
        for _ in range(inner):
            explain_absent(result, atom)
        times.append((time.process_time() - start) / inner * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--inner", type=int, default=200)
    args = parser.parse_args()
    rs = reasoning.compile(LOAN.read_text())
    result = rs.evaluate(DECLINED, ["decision(A, D)"])
    worst = 0.0
    for atom in ATOMS:
        ms = median_ms(args.reps, args.inner, atom, result)
        worst = max(worst, ms)
        print(f"why-not {atom}: median {ms:.3f} ms (CPU, {args.reps} x {args.inner} calls)")
    verdict = "within" if worst <= BUDGET_MS else "OVER"
    print(f"worst median {worst:.3f} ms: {verdict} the {BUDGET_MS} ms budget")
    print("command: .venv/bin/python bench/why_not.py")


if __name__ == "__main__":
    main()
