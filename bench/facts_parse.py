"""Ground facts in clingo syntax: the scanner (``parse_facts_lp``) against the general parser.

Two inputs, both as ``.lp`` text: the 200 loan cases of ``make bench`` as 200
case files (about 150 facts each, strings, ids and amounts), and one large file
of 300,000 ``edge(I, J).`` facts. Prints facts per second (CPU time, the best of
``--reps``, so a busy machine's waits do not count) and the command.

    .venv/bin/python bench/facts_parse.py [--reps 5] [--edges 300000] [--cases 200]

``--profile-passes N`` only reads the case files N times with the scanner (the
row's own work, nothing else), for a profiler:

    py-spy record -r 1000 -o out.svg -- .venv/bin/python bench/facts_parse.py --profile-passes 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import facts_to_lp
from workloads import cases

from entail.reasoning.facts import parse_facts_general, parse_facts_lp


def best_cpu(reps: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(reps):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--edges", type=int, default=300_000)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--profile-passes", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)

    texts = [facts_to_lp(c) for c in cases.loan_cases(args.cases)]
    if args.profile_passes:
        for _ in range(args.profile_passes):
            kept = [parse_facts_lp(t) for t in texts]  # kept, as the timed row keeps them
        return 0 if kept else 1
    case_facts = sum(len(parse_facts_general(t)) for t in texts)
    edges = "".join(f"edge({i},{i + 1}).\n" for i in range(args.edges))
    for text in [*texts, edges]:  # the contract, on the benchmark's own inputs
        assert parse_facts_lp(text).facts == parse_facts_general(text).facts

    options = f"--reps {args.reps} --edges {args.edges} --cases {args.cases}"
    print(f"$ .venv/bin/python bench/facts_parse.py {options}")
    print(f"load average {os.getloadavg()[0]:.2f}; CPU time, best of {args.reps}")
    print(f"{'input':<34} {'reader':<16} {'facts/s':>12} {'per file':>12}")
    rows = [
        (f"{args.cases} loan case files", texts, case_facts),
        (f"one file of {args.edges:,} edges", [edges], args.edges),
    ]
    for label, inputs, count in rows:
        for reader_name, reader in (("scanner", parse_facts_lp), ("general parser", parse_facts_general)):
            reps = args.reps if reader is parse_facts_lp or count < 100_000 else 1
            seconds = best_cpu(reps, lambda reader=reader, inputs=inputs: [reader(t) for t in inputs])
            per_file = seconds / len(inputs) * 1000
            print(f"{label:<34} {reader_name:<16} {count / seconds:>12,.0f} {per_file:>9.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
