"""Does a DuckDB file survive two processes taking turns on it?

The local audit store opens its file per operation in shared mode, because the
backend and the audit sink are two processes and DuckDB lets one process in at
a time (docs/audit.md). This bench does what they do, with nothing of ours in
the way: two processes each open the file, insert one row, close it, and again,
``--rows`` times (one of them also reads its row back in an open of its own),
and ``--pairs`` such pairs run at once on their own files. Then it counts the
rows: every insert committed, so every row must be there.

``--mode raw`` leaves the hand-over to DuckDB's own lock; ``--mode gate`` takes
the store's gate (entail.audit.file_gate) around each open-to-close span. Both
modes run in the same invocation, alternating, so they see the same machine.

    .venv/bin/python bench/duckdb_handover.py --pairs 3 --rows 300 --rounds 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

WORKER = """
import sys, time, duckdb
from entail.audit.file_gate import FileGate
path, mode, reader = sys.argv[1], sys.argv[4], sys.argv[5] == "1"
start, rows = int(sys.argv[2]), int(sys.argv[3])
gate = FileGate(path)

def turn(sql, params):
    if mode == "gate":
        gate.acquire(60.0)
    try:
        while True:
            try:
                conn = duckdb.connect(path)
            except duckdb.IOException as exc:  # DuckDB's own lock: the other process has the file
                if "lock" not in str(exc).lower():
                    raise
                time.sleep(0.002)
                continue
            try:
                conn.execute(sql, params).fetchall()
            finally:
                conn.close()
            return
    finally:
        gate.release()

for i in range(start, start + rows):
    turn("INSERT INTO t VALUES (?, ?)", [i, "x" * 200])
    if reader:
        turn("SELECT pad FROM t WHERE id = ?", [i])
"""


@dataclass
class PairResult:
    rows: int  # rows found at the end
    failed: int  # processes that ended with an error (a failed open or read)


def start_pair(
    directory: Path, name: str, rows: int, mode: str
) -> tuple[Path, list[subprocess.Popen[bytes]]]:
    path = directory / f"{name}.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, pad VARCHAR)")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(start), str(rows), mode, reader],
            stderr=subprocess.PIPE,
        )
        for start, reader in ((0, "1"), (1_000_000, "0"))
    ]
    return path, procs


def finish_pair(path: Path, procs: list[subprocess.Popen[bytes]]) -> PairResult:
    failed = 0
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            failed += 1
            last = err.decode(errors="replace").strip().splitlines()[-1:]
            print(f"    a process failed: {' '.join(last)[:160]}", flush=True)
    try:
        with duckdb.connect(str(path)) as conn:
            found = conn.execute("SELECT count(*) FROM t").fetchone()
        count = int(found[0]) if found else 0
    except duckdb.Error as exc:
        print(f"    the file does not open: {exc}"[:200], flush=True)
        count = 0
    return PairResult(count, failed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=3, help="pairs of processes at once (default 3)")
    parser.add_argument("--rows", type=int, default=300, help="rows each process inserts (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each mode (default 3)")
    args = parser.parse_args()
    shape = f"{args.pairs} pairs x 2 processes x {args.rows} rows, {args.rounds} rounds"
    print(f"duckdb {duckdb.__version__}; {shape}")
    totals: dict[str, list[int]] = {"raw": [0, 0, 0, 0], "gate": [0, 0, 0, 0]}  # pairs, short, lost, failed
    with tempfile.TemporaryDirectory(prefix="handover-") as tmp:
        for round_ in range(args.rounds):
            for mode in ("raw", "gate"):
                started = time.monotonic()
                pairs = [
                    start_pair(Path(tmp), f"{mode}{round_}_{p}", args.rows, mode) for p in range(args.pairs)
                ]
                results = [finish_pair(path, procs) for path, procs in pairs]
                t = totals[mode]
                for r in results:
                    t[0] += 1
                    lost = 2 * args.rows - r.rows
                    t[1] += lost > 0 or r.failed > 0
                    t[2] += lost if not r.failed else 0
                    t[3] += r.failed
                print(
                    f"  round {round_ + 1} {mode:4}: rows "
                    + ", ".join(f"{r.rows}{' (a process failed)' if r.failed else ''}" for r in results)
                    + f" of {2 * args.rows} each; {time.monotonic() - started:.0f} s",
                    flush=True,
                )
    print("\nmode  pairs  pairs short of rows  rows lost (pairs with no failed process)  processes failed")
    for mode, (n_pairs, short, lost, failed) in totals.items():
        print(f"{mode:5} {n_pairs:5}  {short:20}  {lost:40}  {failed:16}")
    print(
        f"\nreproduce: .venv/bin/python bench/duckdb_handover.py --pairs {args.pairs} --rows {args.rows} "
        f"--rounds {args.rounds}"
    )


if __name__ == "__main__":
    main()
