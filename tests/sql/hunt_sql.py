"""A long differential run of the SQL path (DuckDB) by hand: every disagreement with clingo is recorded.

    .venv/bin/python -m tests.sql.hunt_sql --count 5000 --out /tmp/sql-hunt.jsonl

The pytest test stops at the first disagreement and shrinks it; this keeps going
and writes one JSON line per disagreement or slow program (kind, detail, seconds,
program, facts), then prints a count per kind.  A program whose SQL run exceeds
``--timeout`` seconds is interrupted and recorded as ``slow``; DuckDB's memory is
capped (``--memory``), and the program under test is kept in ``<out>.current`` so a
run that dies of a blow-up outside DuckDB still names its program. ``--seed``
makes a run reproducible.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from typing import Any

import duckdb
from differential.clingo_ref import clingo_all_atoms
from differential.programs import Program, stratified_programs
from hypothesis import HealthCheck, Phase, given, seed, settings

from entail import reasoning
from entail.reasoning.sql import DuckDBBackend

from .harness import atoms, sql_model


def compare(program: Program, timeout: float, memory: str = "2GB") -> tuple[str, str] | None:
    """None when the SQL path agrees with clingo on every predicate, else (kind, detail)."""
    try:
        rs = reasoning.compile(program.source)
    except reasoning.EntailError as error:
        return ("entail-refuses", f"{error.code}: {error}")
    names = {name for name, _ in rs.analysis.signatures}
    try:
        expected = [a for a in clingo_all_atoms(program.source, program.facts) if a.split("(")[0] in names]
    except Exception as error:  # clingo's own crash or refusal: not ours
        return ("clingo-error", repr(error))
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory}'")
    timer = threading.Timer(timeout, con.interrupt)
    timer.start()
    try:
        backend = DuckDBBackend(con, dest_schema="out")
        actual = atoms(sql_model(program.source, program.facts, backend=backend, all_predicates=True)[0])
    except duckdb.InterruptException:
        return ("slow", f"interrupted after {timeout} s")
    except Exception as error:
        return (f"sql-crash {type(error).__name__}", str(error)[:300])
    finally:
        timer.cancel()
        con.close()
    if actual != expected:
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        return ("model", f"missing {missing[:5]} extra {extra[:5]}")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--out", default="sql-hunt.jsonl")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--slow", type=float, default=2.0, help="record programs slower than this (s)")
    parser.add_argument("--memory", default="2GB", help="DuckDB memory_limit per program")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    kinds: Counter[str] = Counter()
    started = time.monotonic()
    with open(args.out, "w", encoding="utf-8") as out:

        @settings(
            max_examples=args.count,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(stratified_programs())
        def run(program: Program) -> None:
            with open(f"{args.out}.current", "w", encoding="utf-8") as current:
                json.dump({"source": program.source, "facts": program.facts}, current, ensure_ascii=False)
            t0 = time.monotonic()
            found = compare(program, args.timeout, args.memory)
            seconds = time.monotonic() - t0
            kinds["programs"] += 1
            if kinds["programs"] % 200 == 0:
                elapsed = time.monotonic() - started
                progress = f"{kinds['programs']} programs, {elapsed:.0f} s: {dict(kinds)}"
                print(progress, file=sys.stderr, flush=True)
            if found is None:
                kinds["agree"] += 1
                if seconds < args.slow:
                    return
                kinds["agree-but-slow"] += 1
                found = ("agree-but-slow", "")
            kind, detail = found
            if kind != "agree-but-slow":
                kinds[kind] += 1
            record: dict[str, Any] = {
                "kind": kind,
                "detail": detail,
                "seconds": round(seconds, 2),
                "source": program.source,
                "facts": program.facts,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()

        if args.seed is not None:
            run = seed(args.seed)(run)
        run()
    print(f"{kinds['programs']} programs in {time.monotonic() - started:.0f} s")
    for kind, n in kinds.most_common():
        print(f"  {kind}: {n}")
    return 0 if kinds["agree"] == kinds["programs"] else 1


if __name__ == "__main__":
    sys.exit(main())
