"""Decisions over a dataset through the whole local stack: where the materialisation
runs, how it affects the worker's event loop, and the decision latency after it.

Starts a real local stack (`bench/load.py`'s ``bench_stack``), uploads a random graph
of ``--facts`` edges as a dataset, publishes a ruleset that reads it (its two-hop
relation is case-independent: materialised once per version), then:

- **first decision** (the version is materialised): its wall time, the worker
  process's own CPU seconds meanwhile (the service process; a pool process's CPU
  is not in it), and the round trips of ``GET /healthz`` on the worker, one every
  20 ms for as long as the first decision runs (p50, p99, max): the
  worker's event loop answering while a materialisation runs;
- **warm decisions**: ``--decisions`` decisions one after the other, each a new
  case (no result-cache hit), end to end (POST /v1/decisions with wait_ms): p50, p99.

Report, don't assert: the machine is shared and the client runs on the same cores.

    .venv/bin/python bench/datasets_service.py [--facts 100000] [--decisions 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets_api import process_cpu, upload
from load import bench_stack

PROGRAM = """%@dataset graph: edge(src: int, dst: int).
%@input ask(node: int).
two(X, Z) :- edge(X, Y), edge(Y, Z).
near(Z) :- ask(X), two(X, Z).
"""


def write_edges(path: Path, facts: int) -> None:
    rnd = random.Random(16)
    with path.open("wb") as out:
        for start in range(0, facts, 50_000):
            pairs = [(rnd.randrange(facts), rnd.randrange(facts)) for _ in range(min(50_000, facts - start))]
            out.write(b"".join(b'["edge",%d,%d]\n' % p for p in pairs))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def decide(client: httpx.Client, node: int) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    answer = client.post(
        "/v1/decisions",
        json={"ruleset": "near", "facts": {"ask": [[node]]}, "query": ["near(Z)"], "wait_ms": 120_000},
        timeout=180,
    )
    elapsed = time.perf_counter() - t0
    body: dict[str, Any] = answer.json()
    return elapsed, body


def probe(url: str, stop: threading.Event, out: list[float]) -> None:
    """Round trips every 20 ms (paced: the probe's own CPU is the same whatever the
    worker does, and leaves the cores to the work it measures)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            client.get("/healthz").raise_for_status()
            out.append(time.perf_counter() - t0)
            stop.wait(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        edges = tmp / "edges.ndjson"
        write_edges(edges, args.facts)
        (tmp / "stack").mkdir()
        with bench_stack(tmp / "stack") as stack:
            worker = next(c for c in stack.children if c.name == "worker")
            worker_pid = worker.process.pid if worker.process else None
            headers = {"Authorization": f"Bearer {stack.api_key}"}
            with httpx.Client(base_url=stack.backend_url, headers=headers, timeout=600) as client:
                version = upload(client, "graph", edges, "application/x-ndjson", "")
                published = client.post(
                    "/v1/rulesets",
                    json={
                        "name": "near",
                        "source": PROGRAM,
                        "datasets": {"graph": f"graph@{version['version']}"},
                    },
                )
                published.raise_for_status()
                # idle round trips first: the baseline of the probe
                idle: list[float] = []
                stop = threading.Event()
                prober = threading.Thread(target=probe, args=(stack.worker_url, stop, idle))
                prober.start()
                time.sleep(1.0)
                stop.set()
                prober.join()
                busy: list[float] = []
                stop = threading.Event()
                prober = threading.Thread(target=probe, args=(stack.worker_url, stop, busy))
                cpu0 = process_cpu(worker_pid) if worker_pid else float("nan")
                prober.start()
                first_s, first = decide(client, 0)
                stop.set()
                prober.join()
                worker_cpu = (process_cpu(worker_pid) - cpu0) if worker_pid else float("nan")
                assert first.get("status") == "succeeded", first
                warm = []
                for i in range(1, args.decisions + 1):
                    elapsed, body = decide(client, i)
                    assert body.get("status") == "succeeded", body
                    warm.append(elapsed)
    ms = 1000.0
    print(f"decisions over a {args.facts:,}-edge dataset through the local stack")
    print(
        f"first decision (materialisation): {first_s:.2f} s; worker process CPU meanwhile {worker_cpu:.2f} s"
    )
    print(
        f"worker GET /healthz round trips, idle: p50 {statistics.median(idle) * ms:.1f} ms, "
        f"max {max(idle) * ms:.1f} ms ({len(idle)})"
    )
    print(
        f"... during the materialisation: p50 {statistics.median(busy) * ms:.1f} ms, "
        f"p99 {percentile(busy, 0.99) * ms:.1f} ms, max {max(busy) * ms:.1f} ms ({len(busy)} round trips)"
    )
    print(
        f"warm decisions ({len(warm)}, one at a time, end to end): "
        f"p50 {statistics.median(warm) * ms:.1f} ms, p99 {percentile(warm, 0.99) * ms:.1f} ms"
    )
    load1, _, _ = os.getloadavg()
    print(f"load average (1 min) {load1:.2f} at end, {os.cpu_count()} CPUs")
    command = "command: .venv/bin/python bench/datasets_service.py"
    print(f"{command} --facts {args.facts} --decisions {args.decisions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
