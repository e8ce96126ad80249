"""Batch benchmark: the SQL path on DuckDB against clingo and the online engine, same run.

    .venv/bin/python bench/sql_batch.py [--reps N] [--only NAME[,NAME...]] [--with-big-peers]

Each (workload, engine) measurement runs in a fresh interpreter (this script
re-invoked with ``--worker``), so peak RSS is that engine's own. The SQL side
times ``run_batch`` over an existing DuckDB table with the outputs staying in
DuckDB (in memory); clingo's time is ground + solve, the online engine's is
compile + evaluate. Output counts (and, up to 5 million tuples, an
order-independent digest of the atoms) must agree between engines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from run import peak_rss_kib, set_digest
from workloads import cases

BENCH_DIR: Final = Path(__file__).resolve().parent
RESULTS_PATH: Final = BENCH_DIR / "results" / "sql_batch.json"
DIGEST_MAX: Final = 5_000_000
PEER_MAX_TUPLES: Final = 30_000_000  # above this clingo and the online engine are skipped


@dataclass(frozen=True)
class Workload:
    name: str
    program: str
    predicate: str
    edges: Callable[[], list[cases.Edge]]
    description: str
    big: bool = False


WORKLOADS: Final = {
    w.name: w
    for w in (
        Workload(
            "tc-chain-1000", cases.TC_PROGRAM, "edge", lambda: cases.chain_edges(1000), "TC, chain of 1000"
        ),
        Workload(
            "tc-random-2000",
            cases.TC_PROGRAM,
            "edge",
            lambda: cases.random_graph_edges(2000, 4000, seed=7),
            "TC, random 2000 nodes / 4000 edges",
        ),
        Workload(
            "tc-random-10000",
            cases.TC_PROGRAM,
            "edge",
            lambda: cases.random_graph_edges(10000, 20000, seed=7),
            "TC, random 10000 nodes / 20000 edges",
            big=True,
        ),
        Workload(
            "sg-tree-10",
            cases.SG_PROGRAM,
            "par",
            lambda: cases.binary_tree_parents(10),
            "SG, binary tree depth 10",
        ),
        Workload(
            "sg-tree-12",
            cases.SG_PROGRAM,
            "par",
            lambda: cases.binary_tree_parents(12),
            "SG, binary tree depth 12",
            big=True,
        ),
    )
}
ENGINES: Final = ("sql-duckdb", "clingo", "entail")


def worker_sql(w: Workload, reps: int) -> dict[str, Any]:
    import duckdb

    from entail import reasoning
    from entail.reasoning.sql import DuckDBBackend, run_batch

    edges = w.edges()
    times: list[int] = []
    count, sha, rounds = 0, "", 0
    for _ in range(reps):
        con = duckdb.connect()
        con.execute("CREATE TABLE input (a BIGINT, b BIGINT)")
        columns = [[e[0] for e in edges], [e[1] for e in edges]]
        con.execute("INSERT INTO input SELECT UNNEST(?) AS a, UNNEST(?) AS b", columns)
        start = time.perf_counter_ns()
        rs = reasoning.compile(w.program)
        manifest = run_batch(rs, DuckDBBackend(con), {w.predicate: "input"})
        times.append(time.perf_counter_ns() - start)
        out = manifest.outputs[0]
        count = out.rows
        rounds = max(s.iterations for s in manifest.strata)
        if count <= DIGEST_MAX:
            name = out.predicate.split("/")[0]
            rows = con.execute(f"SELECT c0, c1 FROM {out.table}").fetchall()
            count, sha = set_digest(f"{name}({a},{b})" for a, b in rows)
            del rows
        con.close()
    return {"times_ns": times, "maxrss_kib": peak_rss_kib(), "count": count, "sha256": sha, "rounds": rounds}


def worker_clingo(w: Workload, reps: int) -> dict[str, Any]:
    import clingo

    edges = w.edges()
    times: list[int] = []
    count, sha = 0, ""
    for _ in range(reps):
        text = "".join(f"{w.predicate}({u},{v}).\n" for u, v in edges)
        ctl = clingo.Control(["--warn=none"])
        ctl.add("base", [], w.program + text)
        start = time.perf_counter_ns()
        ctl.ground([("base", [])])
        symbols: list[Any] = []
        with ctl.solve(yield_=True) as handle:
            for model in handle:
                symbols = model.symbols(shown=True)
        times.append(time.perf_counter_ns() - start)
        count = len(symbols)
        if count <= DIGEST_MAX:
            count, sha = set_digest(str(s) for s in symbols)
        del symbols, ctl
    return {"times_ns": times, "maxrss_kib": peak_rss_kib(), "count": count, "sha256": sha}


def worker_entail(w: Workload, reps: int) -> dict[str, Any]:
    from entail import reasoning
    from entail.reasoning import format_atom

    edges = w.edges()
    limits = reasoning.Limits(derived_facts=200_000_000, wall_time_ms=3_600_000)
    times: list[int] = []
    count, sha = 0, ""
    for _ in range(reps):
        facts = {w.predicate: [list(e) for e in edges]}
        start = time.perf_counter_ns()
        result = reasoning.compile(w.program).evaluate(facts, limits=limits)
        # the answers as Python tuples inside the timer: a closure kept as bits makes
        # its tuples only when read (docs/engine.md), so reading them is part of the work
        relations = {sig: list(rows) for sig, rows in result.shown_relations().items()}
        times.append(time.perf_counter_ns() - start)
        count = sum(len(r) for r in relations.values())
        if count <= DIGEST_MAX:
            count, sha = set_digest(
                format_atom(sig[0], row) for sig, rows in relations.items() for row in rows
            )
        del result, relations
    return {"times_ns": times, "maxrss_kib": peak_rss_kib(), "count": count, "sha256": sha}


WORKERS: Final = {"sql-duckdb": worker_sql, "clingo": worker_clingo, "entail": worker_entail}


def measure(name: str, engine: str, reps: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", f"{name}:{engine}", "--reps", str(reps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {
            "error": proc.stderr.strip().splitlines()[-1]
            if proc.stderr.strip()
            else f"exit {proc.returncode}"
        }
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument(
        "--with-big-peers", action="store_true", help="also run clingo and the online engine on the big cases"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, engine = args.worker.split(":")
        print(json.dumps(WORKERS[engine](WORKLOADS[name], args.reps)))
        return 0
    names = [n for n in args.only.split(",") if n] or list(WORKLOADS)
    rows: list[dict[str, Any]] = []
    for name in names:
        w = WORKLOADS[name]
        res: dict[str, dict[str, Any]] = {}
        for engine in ENGINES:
            if engine != "sql-duckdb" and w.big and not args.with_big_peers:
                res[engine] = {"skipped": "needs --with-big-peers"}
                continue
            reps = 1 if w.big else args.reps
            res[engine] = measure(name, engine, reps)
            print(f"{name} {engine}: {summary(res[engine])}", file=sys.stderr, flush=True)
        rows.append({"workload": name, "description": w.description, "results": res})
    print_table(rows)
    RESULTS_PATH.parent.mkdir(exist_ok=True)
    RESULTS_PATH.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    return 0


def median_ms(r: dict[str, Any]) -> float | None:
    if "times_ns" not in r:
        return None
    return float(statistics.median(r["times_ns"])) / 1e6


def summary(r: dict[str, Any]) -> str:
    if "times_ns" not in r:
        return str(r.get("error") or r.get("skipped"))
    return f"{median_ms(r):.0f} ms, {r['count']:,} tuples, {r['maxrss_kib'] / 1024:.0f} MiB"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        "| workload | tuples | rounds | SQL/DuckDB ms | clingo ground+solve ms | online engine ms "
        "| SQL ÷ clingo | RSS SQL / clingo / online MiB | agree |"
    )
    print(head)
    print("|" + "---|" * 9)
    for row in rows:
        r = row["results"]
        sql, cl, en = r["sql-duckdb"], r["clingo"], r["entail"]
        t = {k: median_ms(v) for k, v in r.items()}
        ratio = f"{t['sql-duckdb'] / t['clingo']:.2f}x" if t["sql-duckdb"] and t["clingo"] else "-"
        rss = " / ".join(f"{v['maxrss_kib'] / 1024:.0f}" if "maxrss_kib" in v else "-" for v in (sql, cl, en))
        counts = {v["count"] for v in (sql, cl, en) if "count" in v}
        shas = {v["sha256"] for v in (sql, cl, en) if v.get("sha256")}
        agree = "yes" if len(counts) == 1 and len(shas) <= 1 else "NO"
        cells = [f"{x:.0f}" if x is not None else "-" for x in (t["sql-duckdb"], t["clingo"], t["entail"])]
        print(
            f"| {row['workload']} | {sql.get('count', 0):,} | {sql.get('rounds', '-')} "
            f"| {cells[0]} | {cells[1]} | {cells[2]} | {ratio} | {rss} | {agree} |"
        )


if __name__ == "__main__":
    sys.exit(main())
