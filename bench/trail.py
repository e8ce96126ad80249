"""The audit trail over a million local rows: building and verifying the signed
Merkle roots, and reverse-provenance queries.

Fills a DuckDB audit store (the file format the services use) in bulk with SQL:
N decision rows of one tenant spread over ``--days`` UTC days, with proofs'
provenance columns (rule ids, fact hashes, reason codes) as the worker's rows
carry them. Then

1. ``build_roots`` — encode every row (entail.row.v1), hash the leaves, build
   and sign one root per day, store the leaves;
2. ``verify_day`` for every day — recompute every leaf from the rows, check the
   stored leaves, the root and its Ed25519 signature;
3. provenance queries over a 30-day window: "used rule R of version V",
   "used fact F", "cited reason code C" — p50/p90 of first pages of 100.

Report, don't assert. Targets: build + verify of 1M rows ≤ 30 s; provenance
p50 ≤ 200 ms.

    .venv/bin/python bench/trail.py [--rows 1000000] [--days 10] [--queries 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from entail.audit import DuckDBAuditStore
from entail.audit import provenance_query as pq
from entail.audit.provenance import fact_hash
from entail.audit.roots import build_roots, verify_day
from entail.audit.signing import LocalEd25519Signer

START = datetime(2026, 1, 1, tzinfo=UTC)

FILL = """
INSERT INTO decisions
SELECT
  'dec_' || lpad(i::VARCHAR, 10, '0'), 'acme', 'loan', 1 + (i % 4), repeat('a', 64), md5(i::VARCHAR),
  'succeeded',
  '{"applicant":[["p' || i::VARCHAR || '"]],"income":[["p' || i::VARCHAR || '",' || (i % 100000)::VARCHAR
    || ',"salary"]]}',
  '["decision(A, D)","reason(A, R)"]', true,
  -- canonical JSON (keys sorted), as the service stores it
  '[{"answers":[{"args":["p' || i::VARCHAR || '",{"const":"' || code || '"}],"atom":"decision(\\"p'
    || i::VARCHAR || '\\",' || code || ')","bindings":{"A":"p' || i::VARCHAR || '"},"proof":{'
    || '"bindings":{"A":"p' || i::VARCHAR || '"},"body":[{"fact":"applicant(\\"p' || i::VARCHAR
    || '\\")","kind":"input"}],"fact":"decision(\\"p' || i::VARCHAR || '\\",' || code || ')",'
    || '"kind":"rule","rule":{"index":' || (i % 15)::VARCHAR
    || ',"line":29,"text":"decision(A, approved) :- applicant(A)."}}}],"query":"decision(A, D)"}]',
  md5('r' || i::VARCHAR) || md5('s' || i::VARCHAR), NULL, '{"derived_facts":7,"evaluation_ms":0.1}',
  'entail-reasoning/1', 'worker-1', false, NULL,
  ts - INTERVAL 5 MILLISECOND, ts - INTERVAL 4 MILLISECOND, ts, NULL, ts + INTERVAL 1 SECOND,
  ' ' || (i % 15)::VARCHAR || ' ' || ((i + 7) % 15)::VARCHAR || ' ',
  ' ' || substr(md5('f' || (i % 5000)::VARCHAR), 1, 16) || ' ',
  ' ' || code || ' '
FROM (
  SELECT i,
         CASE WHEN i % 3 = 0 THEN 'declined' WHEN i % 3 = 1 THEN 'approved' ELSE 'referred' END AS code,
         TIMESTAMPTZ '2026-01-01 00:00:00+00'
           + to_microseconds((i::DOUBLE * $days * 86400000000 / $n)::BIGINT) AS ts
  FROM range($n) t(i)
)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="entail-trail-") as tmp:
        path = Path(tmp) / "audit.duckdb"
        t0 = time.perf_counter()
        with DuckDBAuditStore(path) as store:
            store._conn.execute(FILL, {"n": args.rows, "days": args.days})  # type: ignore[union-attr]
        fill_s = time.perf_counter() - t0
        signer = LocalEd25519Signer(Path(tmp) / "keys")
        with DuckDBAuditStore(path) as store:
            t0, c0 = time.perf_counter(), time.process_time()
            built = build_roots(store, signer, grace=timedelta(0))
            build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            reports = [verify_day(store, signer.keyring, "acme", b.day) for b in built]
            verify_s, verify_cpu = time.perf_counter() - t0, time.process_time() - c0
            assert all(r.ok for r in reports), [r.to_json() for r in reports if not r.ok][:1]
            rows_verified = sum(r.rows for r in reports)

            window_end = START + timedelta(days=args.days)
            window_start = window_end - timedelta(days=30)
            times: dict[str, list[float]] = {"rule R of version V": [], "fact F": [], "reason code C": []}
            found: list[int] = []
            for _ in range(args.queries):
                kinds = {
                    "rule R of version V": {
                        "ruleset_name": "loan",
                        "ruleset_version": 1 + rng.randrange(4),
                        "rule": rng.randrange(15),
                    },
                    "fact F": {"fact": fact_hash(f"x{rng.randrange(5000)}")},  # a hash absent or rare
                    "reason code C": {"reason_code": rng.choice(["declined", "approved", "referred"])},
                }
                for label, criteria in kinds.items():
                    q = pq.build_query("acme", window_start, window_end, **criteria)  # type: ignore[arg-type]
                    t = time.perf_counter()
                    items, _ = pq.search(store, q, page_size=100)
                    times[label].append(time.perf_counter() - t)
                    found.append(len(items))
    total = build_s + verify_s
    # CPU time (all threads of this process) next to wall time: on a shared machine
    # the wall time says as much about the neighbours as about the code
    print("| step | wall | CPU | rows |\n|---|---|---|---|")
    print(f"| build + sign {len(built)} daily roots | {build_s:.1f} s | {build_cpu:.1f} s | {args.rows} |")
    print(f"| verify {len(reports)} days | {verify_s:.1f} s | {verify_cpu:.1f} s | {rows_verified} |")
    print(f"| **build + verify** | **{total:.1f} s** | {build_cpu + verify_cpu:.1f} s | target ≤ 30 s |")
    print(
        "\n| provenance query (30-day window, first page of 100) | p50 | p90 | queries |\n|---|---|---|---|"
    )
    for label, ts in times.items():
        ts.sort()
        p90 = ts[max(0, int(len(ts) * 0.9) - 1)]
        print(f"| {label} | {statistics.median(ts) * 1000:.1f} ms | {p90 * 1000:.1f} ms | {len(ts)} |")
    print(
        f"\nfilled {args.rows} rows over {args.days} days in {fill_s:.1f} s; "
        f"{statistics.mean(found):.0f} rows per page on average"
    )
    print(
        f"reproduce: .venv/bin/python bench/trail.py --rows {args.rows} --days {args.days}"
        f" --queries {args.queries}"
    )
    print(f"machine: nproc {os.cpu_count()}, {platform.platform()}, Python {platform.python_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
