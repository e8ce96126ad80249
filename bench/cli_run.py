"""``entail run`` end to end against clingo's own CLI (``python -m clingo``), in the same run.

Process start, reading, reasoning and printing are all included: each
measurement is the wall time of whole processes, as a user at a shell sees it.

- ``tc-chain-1000``: transitive closure of a 1000-node chain, 499,500 ``path/2``
  atoms printed. ``entail run tc.lp --facts chain.lp --format atoms`` against
  ``python -m clingo tc.lp chain.lp`` (the facts in a file of their own for both).
- ``loan-200``: the 200 loan cases of ``make bench`` as 200 ``.lp`` files.
  ``entail run loan.lp --facts c000.lp ... c199.lp --format atoms`` (one process,
  the ruleset compiled once) against one ``python -m clingo loan.lp cNNN.lp`` per
  case (clingo's CLI takes one problem per process; given all files at once it
  would merge the cases into one model).

Prints the medians of ``--reps`` runs of each (wall time, and CPU time of the
processes, which a busy machine's waits do not inflate), the ratios entail/clingo
and the load average:

    .venv/bin/python bench/cli_run.py [--reps 5] [--only tc|loan] [--no-bytecode-cache]

Both sides run with Python's bytecode cache, as on a user's machine (Python
writes ``__pycache__`` on the first run): the cache lives in the run's temporary
directory (``PYTHONPYCACHEPREFIX``), filled by one untimed run of each command,
and ``PYTHONDONTWRITEBYTECODE`` is dropped. With ``--no-bytecode-cache`` every
process compiles its modules from source (entail: about 0.1 s of CPU, clingo's
Python wrapper 0.03 s), which is what a shell with ``PYTHONDONTWRITEBYTECODE=1``
sees.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import facts_to_lp
from workloads import cases

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
ENTAIL = str(ROOT / ".venv" / "bin" / "entail")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(commands: list[list[str]], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of running the commands one after another.

    Each must succeed (clingo exits 10 or 30). On a shared machine the wall time
    includes the waits for a CPU; the CPU time does not, so both are printed.
    """
    started, cpu = time.perf_counter(), children_cpu()
    for command in commands:
        done = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, env=env
        )
        if done.returncode not in (0, 10, 30):
            raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return time.perf_counter() - started, children_cpu() - cpu


def count_lines(command: list[str], env: dict[str, str]) -> int:
    out = subprocess.run(command, capture_output=True, check=False, env=env).stdout
    return out.count(b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", choices=["tc", "loan"])
    parser.add_argument(
        "--no-bytecode-cache", action="store_true", help="compile every module from source in every process"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="entail-cli-bench-") as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        if args.no_bytecode_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        rows: list[tuple[str, list[list[str]], list[list[str]]]] = []
        if args.only in (None, "tc"):
            (work / "tc.lp").write_text(cases.TC_PROGRAM)
            edges = "".join(f"edge({a},{b}).\n" for a, b in cases.chain_edges(1000))
            (work / "chain.lp").write_text(edges)
            entail = [ENTAIL, "run", str(work / "tc.lp"), "--facts", str(work / "chain.lp")]
            entail += ["--format", "atoms"]
            entail += ["--max-derived-facts", "10000000", "--timeout-ms", "600000"]
            atoms = count_lines(entail, env)
            assert atoms == cases.expected_tc_chain(1000), atoms
            clingo = [PYTHON, "-m", "clingo", str(work / "tc.lp"), str(work / "chain.lp")]
            rows.append((f"tc-chain-1000 ({atoms:,} atoms printed)", [entail], [clingo]))
        if args.only in (None, "loan"):
            (work / "loan.lp").write_text(cases.loan_program())
            files = []
            for i, facts in enumerate(cases.loan_cases(200)):
                path = work / f"c{i:03}.lp"
                path.write_text(facts_to_lp(facts))
                files.append(str(path))
            entail = [ENTAIL, "run", str(work / "loan.lp"), "--format", "atoms"]
            for path_text in files:
                entail += ["--facts", path_text]
            clingo_runs = [[PYTHON, "-m", "clingo", str(work / "loan.lp"), f] for f in files]
            rows.append(("loan-200 (200 case files)", [entail], clingo_runs))

        for _, entail_runs, clingo_runs in rows:  # untimed: fills the bytecode cache
            timed(entail_runs[:1], env)
            timed(clingo_runs[:1], env)
        only = f" --only {args.only}" if args.only else ""
        cache = " --no-bytecode-cache" if args.no_bytecode_cache else ""
        print(f"$ .venv/bin/python bench/cli_run.py --reps {args.reps}{only}{cache}")
        print(f"{'workload':<38} {'entail wall':>11} {'clingo wall':>11} {'ratio':>6}"
              f" {'entail CPU':>10} {'clingo CPU':>10} {'ratio':>6}  load")  # fmt: skip
        for label, entail_runs, clingo_runs in rows:
            entail_times, clingo_times = [], []
            for _ in range(args.reps):  # interleaved, so both see the same load
                entail_times.append(timed(entail_runs, env))
                clingo_times.append(timed(clingo_runs, env))
            ew, ec = (statistics.median(t[i] for t in entail_times) for i in (0, 1))
            cw, cc = (statistics.median(t[i] for t in clingo_times) for i in (0, 1))
            print(
                f"{label:<38} {ew:>10.3f}s {cw:>10.3f}s {ew / cw:>5.2f}x"
                f" {ec:>9.3f}s {cc:>9.3f}s {ec / cc:>5.2f}x  {os.getloadavg()[0]:.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
