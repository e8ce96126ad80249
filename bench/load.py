"""Closed-loop load through the whole local stack: decisions/s and p50/p99 latency.

Starts a real local stack (embedded Redis, backend, worker, relay: `entail_dev.stack.Stack`)
on free ports, then for concurrency 1, 16 and 64 runs, for a fixed time each:

- ``healthz``: GET /healthz — a trivial endpoint of the same backend (the ceiling);
- ``cache-hit``: POST /v1/decisions with the same loan case (answered from the cache);
- ``distinct``: POST /v1/decisions with a new loan case every time, wait_ms=10000
  (publish → relay → worker → evaluate → store → done signal → answer).

Each worker coroutine sends its next request when the previous one answers.
Report, don't assert: the machine is shared, and the load generator runs on the
same 2 cores as the services it measures.

    .venv/bin/python bench/load.py [--seconds 5] [--concurrency 1,16,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from entail_dev.stack import Stack, example_case

from entail.net import free_port
from entail.settings import Settings

HERE = Path(__file__).resolve().parent


@contextmanager
def bench_stack(
    tmp: Path,
    *,
    extra_keys: list[dict[str, Any]] | None = None,
    extra_env: dict[str, str] | None = None,
    **settings: Any,
) -> Iterator[Stack]:
    """The local stack on free ports under ``tmp``, its output in ``tmp/stack.log``,
    rate limits out of the way; stopped on exit. ``extra_keys`` (key entries) and
    ``extra_env`` (ENTAIL_* for the services) go to the stack as they are."""
    ports = {"backend_port": free_port(), "worker_port": free_port(), "audit_sink_port": free_port()}
    config = Settings(data_dir=tmp, **ports, **settings)
    with (tmp / "stack.log").open("w") as out:
        stack = Stack(
            config,
            out=out,
            colour=False,
            extra_env={
                "ENTAIL_DATA_DIR": str(tmp),
                "ENTAIL_RATE_LIMIT_PER_S": "1000000",
                "ENTAIL_RATE_LIMIT_BURST": "1000000",
                **(extra_env or {}),
            },
            extra_keys=extra_keys,
        )
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()


def loan_case(i: int) -> dict[str, Any]:
    name = f"c{i}"
    return {
        "applicant": [[name]],
        "income": [[name, 1_000_000 + 7919 * i % 6_000_000, "salary"]],
        "employment": [[name, i % 120]],
        "requested": [[name, 5_000_000 + i % 20_000_000]],
    }


async def run_cell(client: httpx.AsyncClient, kind: str, concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds
    hit_body = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"]}

    async def one() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            if kind == "healthz":
                r = await client.get("/healthz")
                ok = r.status_code == 200
            elif kind == "cache-hit":
                r = await client.post("/v1/decisions", json=hit_body)
                ok = r.status_code == 200 and r.json()["cached"]
            else:
                body = {
                    "ruleset": "loan",
                    "facts": loan_case(next(counter) + concurrency * 1_000_000),
                    "query": ["decision(A, D)"],
                    "wait_ms": 10_000,
                }
                r = await client.post("/v1/decisions", json=body)
                ok = r.status_code == 200 and r.json()["status"] == "succeeded"
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "kind": kind,
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        if latencies
        else float("nan"),
    }


async def measure(url: str, key: str, seconds: float, levels: list[int]) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    headers = {"Authorization": f"Bearer {key}"}
    rows = []
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        warm = await client.post(
            "/v1/decisions",
            json={"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"], "wait_ms": 10_000},
        )
        warm.raise_for_status()
        for concurrency in levels:
            for kind in ("healthz", "cache-hit", "distinct"):
                row = await run_cell(client, kind, concurrency, seconds)
                rows.append(row)
                print(
                    f"… {kind:<9} c={concurrency:<3} {row['per_s']:8.1f}/s  p50 {row['p50_ms']:7.2f} ms",
                    file=sys.stderr,
                )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    ceiling = {r["concurrency"]: r["per_s"] for r in rows if r["kind"] == "healthz"}
    lines = [
        "| workload | concurrency | requests/s | p50 | p99 | errors | vs healthz |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["per_s"] / ceiling[r["concurrency"]] if ceiling.get(r["concurrency"]) else float("nan")
        lines.append(
            f"| {r['kind']} | {r['concurrency']} | {r['per_s']:.1f} | {r['p50_ms']:.2f} ms | "
            f"{r['p99_ms']:.2f} ms | {r['errors']} | {ratio:.0%} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="entail-load-") as tmp, bench_stack(Path(tmp)) as stack:
        rows = asyncio.run(measure(stack.backend_url, stack.api_key, args.seconds, levels))
    print(table(rows))
    load = os.getloadavg()[0]
    command = f".venv/bin/python bench/load.py --seconds {args.seconds:g} --concurrency {args.concurrency}"
    print(f"\nreproduce: {command}")
    print(
        f"machine: nproc {os.cpu_count()}, {platform.platform()}, Python {platform.python_version()}, "
        f"load average (1 min) {load:.2f} at end; one backend, one worker, one relay, embedded valkey, "
        "and the load generator all on this machine"
    )
    out_file = HERE / "results" / "load.json"
    out_file.parent.mkdir(exist_ok=True)
    out_file.write_text(json.dumps({"rows": rows, "seconds": args.seconds}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
