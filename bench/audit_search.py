"""Audit search over a million local rows: p50/p90 of a one-day, one-ruleset query.

Fills a DuckDB audit store (the same file format the services use) with N
decision rows spread over 365 days, 20 rulesets and 5 tenants, in bulk with SQL
(inserting a million rows through the port would measure the loader, not the
search), then times `search_decisions` for a random day and ruleset, first
page of 50, and the same with a predicate filter. Report, don't assert.

    .venv/bin/python bench/audit_search.py [--rows 1000000] [--queries 50]
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

START = datetime(2025, 1, 1, tzinfo=UTC)
QUERIES = (("one day, one ruleset", None), ("… and predicate decision/2", "decision/2"))

FILL = """
INSERT INTO decisions
SELECT
  'dec_' || lpad(i::VARCHAR, 10, '0')                        AS decision_id,
  'tenant' || (i % 5)::VARCHAR                               AS tenant,
  'rules' || (i % 20)::VARCHAR                               AS ruleset_name,
  1 + (i % 3)                                                AS ruleset_version,
  repeat('a', 64)                                            AS ruleset_hash,
  md5(i::VARCHAR)                                            AS request_hash,
  CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END    AS status,
  '{"applicant":[["p' || i::VARCHAR || '"]],"income":[["p' || i::VARCHAR || '",'
    || (i % 100000)::VARCHAR || ']]}'                        AS facts,
  '["decision(A, D)"]'                                       AS query,
  false                                                      AS explain,
  CASE WHEN i % 2 = 0
    THEN '[{"query":"decision(A, D)","answers":[{"atom":"decision(\\"p' || i::VARCHAR
         || '\\",approved)","args":["p","approved"],"bindings":{}}]}]'
    ELSE '[{"query":"decision(A, D)","answers":[{"atom":"flag(\\"p' || i::VARCHAR
         || '\\")","args":["p"],"bindings":{}}]}]'
  END                                                        AS answers,
  md5('r' || i::VARCHAR) || md5('s' || i::VARCHAR)           AS result_hash,
  NULL                                                       AS error,
  '{"rules":81}'                                             AS stats,
  'entail-reasoning/1'                                       AS engine_version,
  'worker-1'                                                 AS worker,
  false                                                      AS cached,
  ts - INTERVAL 5 MILLISECOND                                AS submitted_at,
  ts - INTERVAL 4 MILLISECOND                                AS started_at,
  ts                                                         AS completed_at,
  NULL                                                       AS masked_predicates,
  ts                                                         AS inserted_at,
  NULL                                                       AS rule_ids,
  NULL                                                       AS fact_hashes,
  NULL                                                       AS reason_codes
FROM (
  SELECT i,
         TIMESTAMPTZ '2025-01-01 00:00:00+00'
           + to_microseconds((i::DOUBLE * 31536000000000 / $n)::BIGINT) AS ts
  FROM range($n) t(i)
)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="entail-audit-") as tmp:
        path = Path(tmp) / "audit.duckdb"
        t0 = time.perf_counter()
        with DuckDBAuditStore(path) as store:
            store._conn.execute(FILL, {"n": args.rows})  # type: ignore[union-attr]
        fill_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        rows: dict[str, list[float]] = {label: [] for label, _ in QUERIES}
        counts: list[int] = []
        with DuckDBAuditStore(path) as store:
            for _ in range(args.queries):
                day = START + timedelta(days=rng.randrange(365))
                r = rng.randrange(20)  # the fill gives ruleset r to tenant r % 5
                tenant, ruleset = f"tenant{r % 5}", f"rules{r}"
                for label, predicate in QUERIES:
                    t = time.perf_counter()
                    page = store.search_decisions(
                        tenant, day, day + timedelta(days=1), ruleset_name=ruleset, predicate=predicate
                    )
                    rows[label].append(time.perf_counter() - t)
                    counts.append(len(page.items))
    print("| query | p50 | p90 | queries |")
    print("|---|---|---|---|")
    for label, times in rows.items():
        times.sort()
        p90 = times[int(len(times) * 0.9) - 1]
        print(f"| {label} | {statistics.median(times) * 1000:.1f} ms | {p90 * 1000:.1f} ms | {len(times)} |")
    print(
        f"\n{args.rows} rows over 365 days, 5 tenants, 20 rulesets; filled in {fill_s:.1f} s, "
        f"file {size_mb:.0f} MiB; first page of 50, {statistics.mean(counts):.1f} rows returned on average"
    )
    print(f"reproduce: .venv/bin/python bench/audit_search.py --rows {args.rows} --queries {args.queries}")
    print(f"machine: nproc {os.cpu_count()}, {platform.platform()}, Python {platform.python_version()}")
    print("target: p50 ≤ 200 ms for a one-day, one-ruleset query over 1 million rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
