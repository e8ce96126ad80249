"""Reference data in the engine (issue 16): decisions over a materialised model vs clingo.

Workloads (bench/workloads programs, the graph given as a dataset):

- ``tc``: ``path`` = the transitive closure of ``edge`` (a forest of chains of
  8 nodes), the case asks ``ok(A, B) :- ask(A, B), path(A, B).``;
- ``sg``: same generation over ``par`` (a forest of complete binary trees of
  depth 3), the case asks ``same(A, B) :- ask(A, B), sg(A, B).``.

Sizes are reference (dataset) facts: 10k, 100k and, with ``--million``, 1M.
Times are CPU time of the measuring process (``time.process_time``: both engines
run single-threaded here, and CPU time is what a shared machine keeps honest).
Each case holds 20 ``ask`` facts (half of them true). Every measurement runs in
its own process (RSS is the process's resident-set growth):

- entail: ``materialise`` (rows -> model, indexes) once: the warm-up (after
  ``rs.demanded``, which compiles the demand rewrite once per ruleset: printed
  apart, it is no per-version cost); then
  ``--decisions`` decisions ``evaluate(case, [query], reference=m)`` + the
  answers' text + ``result_hash``: per-decision p50 / p90. In two modes: ``demand``
  (what ``materialise`` does by default: ``path`` / ``sg`` are evaluated on
  demand per case, reasoning/demand.py, so the model holds the dataset facts
  and their indexes) and ``full`` (``materialise(..., demand=False)``: every
  predicate materialised, what a case over the demand budget falls back to);
- clingo: the whole program (facts as text) ``ground`` + ``solve`` once (parse
  before the timer), the model read.

The first case's answers are checked against clingo's (its ``ask`` facts are part
of clingo's program). Targets: per decision p50 <= 2 ms at every size; warm-up
<= 0.5x clingo ground+solve; materialised RSS <= 0.5x clingo's.

    .venv/bin/python bench/datasets_engine.py            # 10k and 100k (about a minute)
    .venv/bin/python bench/datasets_engine.py --million  # and 1M
    .venv/bin/python bench/datasets_engine.py --mode demand --million  # one mode only
    .venv/bin/python bench/datasets_engine.py --chain300 # the issue's 300-edge chain
    # materialise only, three times (what the warm-up profiles record):
    py-spy record --rate 200 -o out.svg -- \
        .venv/bin/python bench/datasets_engine.py --materialise sg --sizes 100000
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.workloads.cases import SG_PROGRAM, TC_PROGRAM  # noqa: E402

CHAIN = 8  # nodes per chain (tc): 7 edges, 28 path facts
TREE_DEPTH = 3  # levels of each binary tree (sg): 14 par facts, 70 sg facts
CASE_FACTS = 20


def _no_show(program: str) -> str:
    return "\n".join(line for line in program.splitlines() if not line.startswith("#show"))


PROGRAMS = {
    "tc": (
        "%@dataset graph: edge(int, int).\n%@input ask(int, int).\n"
        + _no_show(TC_PROGRAM)
        + "\nok(A, B) :- ask(A, B), path(A, B).\n#show ok/2.\n",
        "edge",
        "ok(A,B)",
    ),
    "sg": (
        "%@dataset family: par(int, int).\n%@input ask(int, int).\n"
        + _no_show(SG_PROGRAM)
        + "\nsame(A, B) :- ask(A, B), sg(A, B).\n#show same/2.\n",
        "par",
        "same(A,B)",
    ),
}


def graph(workload: str, size: int) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """The dataset rows (about ``size``) and pairs known to be in the closure."""
    rows: list[list[int]] = []
    true_pairs: list[tuple[int, int]] = []
    base = 0
    if workload == "tc":
        while len(rows) < size:
            nodes = list(range(base + 1, base + CHAIN + 1))
            rows.extend([a, b] for a, b in itertools.pairwise(nodes))
            true_pairs.append((nodes[0], nodes[-1]))
            base += CHAIN
    else:
        last = 2 ** (TREE_DEPTH + 1) - 1
        while len(rows) < size:
            rows.extend([base + c, base + c // 2] for c in range(2, last + 1))
            true_pairs.append((base + last, base + last - 1))  # two leaves of one level
            base += last
    return rows, true_pairs


def cases(workload: str, size: int, count: int) -> list[dict[str, list[list[int]]]]:
    rows, true_pairs = graph(workload, size)
    top = max(max(r) for r in rows)
    rng = random.Random(16)
    out = []
    for _ in range(count):
        asks = [list(p) for p in rng.sample(true_pairs, CASE_FACTS // 2)]
        asks += [[rng.randint(1, top), rng.randint(1, top)] for _ in range(CASE_FACTS - len(asks))]
        out.append({"ask": asks})
    return out


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker_entail(workload: str, size: int, decisions: int, mode: str = "demand") -> dict[str, Any]:
    from entail import reasoning

    source, pred, query = PROGRAMS[workload]
    limits = reasoning.Limits(derived_facts=50_000_000, wall_time_ms=600_000)
    rs = reasoning.compile(source, limits=limits)
    t0 = time.process_time()
    assert rs.demanded  # the rewrite's compile: once per ruleset, not per version
    rewrite_s = time.process_time() - t0
    todo = cases(workload, size, decisions)
    gc.collect()
    before = rss()
    rows, _ = graph(workload, size)
    t0 = time.process_time()
    mat = rs.materialise({next(iter(rs.datasets)): {pred: rows}}, limits=limits, demand=mode == "demand")
    warm = time.process_time() - t0
    del rows
    gc.collect()
    grown = rss() - before
    times = []
    first: list[str] = []
    on_demand = 0
    for i, case in enumerate(todo):
        t = time.process_time()
        result = rs.evaluate(case, [query], reference=mat)
        atoms = [a.atom for a in result.answers[0].answers]
        result.result_hash  # noqa: B018  (a decision computes it)
        times.append(time.process_time() - t)
        on_demand += result.stats.get("reference_mode") == "demand"
        if i == 0:
            first = atoms
    return {
        "mode": mat.stats.get("mode", "full"),
        "on_demand": on_demand / len(todo),
        "warmup_s": warm,
        "rewrite_s": rewrite_s,
        "rss_bytes": grown,
        "nbytes": mat.nbytes,
        "model_facts": mat.facts,
        "dataset_facts": mat.stats["dataset_facts"],
        "p50_ms": statistics.median(times) * 1000,
        "p90_ms": sorted(times)[int(len(times) * 0.9)] * 1000,
        "answers": first,
    }


def worker_clingo(workload: str, size: int) -> dict[str, Any]:
    import clingo

    source, pred, _ = PROGRAMS[workload]
    first = cases(workload, size, 1)[0]
    gc.collect()
    before = rss()
    rows, _ = graph(workload, size)
    text = "".join(f"{pred}({a},{b}).\n" for a, b in rows)
    text += "".join(f"ask({a},{b}).\n" for a, b in first["ask"])
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], source + text)
    del rows, text
    t0 = time.process_time()
    ctl.ground([("base", [])])
    shown: list[str] = []
    atoms = 0

    def on_model(m: clingo.Model) -> None:
        nonlocal atoms
        shown.extend(str(s) for s in m.symbols(shown=True))
        atoms = len(m.symbols(atoms=True))

    ctl.solve(on_model=on_model)
    elapsed = time.process_time() - t0
    gc.collect()
    return {"ground_solve_s": elapsed, "rss_bytes": rss() - before, "atoms": atoms, "answers": sorted(shown)}


def run_worker(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def chain300() -> None:
    """The issue's example: a 300-edge chain, ``ok(A,B) :- ask(A,B), path(A,B).``, one ask."""
    from entail import reasoning

    edges = [[i, i + 1] for i in range(1, 301)]
    body = (
        "path(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"
        "ok(A, B) :- ask(A, B), path(A, B).\n"
    )
    inline = reasoning.compile("".join(f"edge({a},{b}).\n" for a, b in edges) + body)
    rs = reasoning.compile("%@dataset graph: edge(int, int).\n" + body)
    mat = rs.materialise({"graph": {"edge": edges}})
    case = {"ask": [[1, 301]]}

    def cpu(fn: Any, n: int) -> float:
        times = []
        for _ in range(n):
            t = time.process_time()
            fn()
            times.append(time.process_time() - t)
        return statistics.median(times) * 1000

    before = cpu(lambda: inline.evaluate(case, ["ok(A,B)"]), 20)
    after = cpu(lambda: rs.evaluate(case, ["ok(A,B)"], reference=mat), 200)
    # with only ok/2 shown, path/2 is evaluated on demand (reasoning/demand.py)
    shown = reasoning.compile("%@dataset graph: edge(int, int).\n" + body + "#show ok/2.\n")
    t0 = time.process_time()
    lean = shown.materialise({"graph": {"edge": edges}})
    lean_ms = (time.process_time() - t0) * 1000
    demand = cpu(lambda: shown.evaluate(case, ["ok(A,B)"], reference=lean), 50)
    d = shown.evaluate(case, ["ok(A,B)"], reference=lean)
    assert d.stats["reference_mode"] == "demand" and [a.atom for a in d.answers[0].answers] == ["ok(1,301)"]
    r = rs.evaluate(case, ["ok(A,B)"], reference=mat)
    old = inline.evaluate(case, ["ok(A,B)"])
    assert [a.atom for a in r.answers[0].answers] == [a.atom for a in old.answers[0].answers] == ["ok(1,301)"]
    print("300-edge chain, one ask (median CPU per decision):")
    print(f"  before (closure in the source, re-derived): {before:8.3f} ms, rounds {old.stats['rounds']}")
    print(f"  after  (closure materialised once)        : {after:8.3f} ms, rounds {r.stats['rounds']}")
    print(f"  materialise once: {mat.stats['elapsed_ms']:.1f} ms, {mat.facts} facts")
    print(
        f"  on demand (#show ok/2: path not materialised): {demand:8.3f} ms, rounds {d.stats['rounds']}, "
        f"derived {d.stats['derived_facts']}; materialise {lean_ms:.1f} ms, {lean.facts} facts"
    )


def materialise_only(workload: str, size: int, runs: int = 3, demand: bool = True) -> None:
    """``materialise`` alone, ``runs`` times (for a profiler): CPU per run."""
    from entail import reasoning

    source, pred, _ = PROGRAMS[workload]
    limits = reasoning.Limits(derived_facts=50_000_000, wall_time_ms=600_000)
    rs = reasoning.compile(source, limits=limits)
    for _ in range(runs):
        rows, _ = graph(workload, size)
        gc.collect()
        t0 = time.process_time()
        mat = rs.materialise({next(iter(rs.datasets)): {pred: rows}}, limits=limits, demand=demand)
        print(f"{workload} {size}: materialise {time.process_time() - t0:.3f} s CPU, {mat.facts} facts")
        del mat, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--million", action="store_true", help="also 1M reference facts (minutes, GBs)")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--decisions", type=int, default=300)
    ap.add_argument("--only", choices=sorted(PROGRAMS))
    ap.add_argument(
        "--mode",
        choices=["demand", "full"],
        help="only this mode (default both: demand = the default materialisation, full = everything)",
    )
    ap.add_argument("--chain300", action="store_true")
    ap.add_argument("--materialise", choices=sorted(PROGRAMS), help="materialise only, 3 times (to profile)")
    args = ap.parse_args()
    if args.worker:
        kind, workload, size = args.worker[0], args.worker[1], int(args.worker[2])
        if kind == "entail":
            print(json.dumps(worker_entail(workload, size, int(args.worker[3]), args.worker[4])))
        else:
            print(json.dumps(worker_clingo(workload, size)))
        return
    if args.chain300:
        chain300()
        return
    sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.million else [])
    if args.materialise:
        for size in sizes:
            materialise_only(args.materialise, size, demand=args.mode != "full")
        return
    cmd = "python bench/datasets_engine.py " + " ".join(sys.argv[1:])
    print(f"# {cmd.strip()}   (each figure from its own process; clingo {_clingo_version()})")
    header = (
        f"{'workload':8} {'ref facts':>9} {'mode':6} {'model':>9} | {'p50 ms':>7} {'p90 ms':>7} | "
        f"{'warm-up s':>9} {'clingo s':>8} {'ratio':>6} | "
        f"{'RSS MB':>7} {'nbytes MB':>9} {'clingo MB':>9} {'ratio':>6}"
    )
    print(header)
    ok = True
    modes = [args.mode] if args.mode else ["demand", "full"]
    rewrite_ms: dict[str, str] = {}
    for workload in [args.only] if args.only else sorted(PROGRAMS):
        for size in sizes:
            c = run_worker("clingo", workload, str(size))
            for mode in modes:
                e = run_worker("entail", workload, str(size), str(args.decisions), mode)
                rewrite_ms[workload] = f"{e['rewrite_s'] * 1000:.0f} ms"
                same = sorted(e["answers"]) == c["answers"]
                ok = ok and same
                full_share = 1 - e["on_demand"]
                fell = f"  ({full_share:.0%} answered in full)" if mode == "demand" and full_share else ""
                print(
                    f"{workload:8} {e['dataset_facts']:>9} {e['mode']:6} {e['model_facts']:>9} | "
                    f"{e['p50_ms']:7.3f} {e['p90_ms']:7.3f} | "
                    f"{e['warmup_s']:9.2f} {c['ground_solve_s']:8.2f} "
                    f"{e['warmup_s'] / c['ground_solve_s']:6.2f} | "
                    f"{e['rss_bytes'] / 1e6:7.1f} {e['nbytes'] / 1e6:9.1f} {c['rss_bytes'] / 1e6:9.1f} "
                    f"{e['rss_bytes'] / max(1, c['rss_bytes']):6.2f}"
                    + fell
                    + ("" if same else "  ANSWERS DIFFER")
                )
    once = ", ".join(f"{w} {ms}" for w, ms in rewrite_ms.items())
    print(f"(the demand rewrite's compile, once per ruleset and not in the warm-up: {once})")
    sys.exit(0 if ok else 2)


def _clingo_version() -> str:
    import clingo

    return str(clingo.__version__)


if __name__ == "__main__":
    main()
