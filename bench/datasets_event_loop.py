"""A decision over a dataset from a service process's point of view: what the first
decision (the materialisation) costs that process and its event loop, and the warm
decisions' latency.

An embedded Redis and the local dataset store; a random graph of ``--facts`` edges
as one dataset version; a ruleset whose two-hop relation is materialised. In this
process (as the worker or the backend would): an asyncio ticker every 5 ms while
the first decision runs (its lateness is the event loop's lag: what every other
request of the process would wait), this process's CPU seconds meanwhile, then
``--decisions`` warm decisions one after the other (each a new case):
``entail.dataset_eval.evaluate_recorded`` in a compute pool of 2 processes.

Report, don't assert: the machine is shared.

    .venv/bin/python bench/datasets_event_loop.py [--facts 100000] [--decisions 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from entail import dataset_eval
from entail.bootstrap import DatasetReaderOpener, open_dataset_store
from entail.compute import ComputePool
from entail.datasets.port import UploadPart
from entail.models import DatasetRef
from entail.settings import Settings
from entail.state.client import connect
from entail.state.embedded import EmbeddedRedis

PROGRAM = """%@dataset graph: edge(src: int, dst: int).
%@input ask(node: int).
two(X, Z) :- edge(X, Y), edge(Y, Z).
near(Z) :- ask(X), two(X, Z).
"""
LIMITS = {"wall_time_ms": 120_000, "derived_facts": 50_000_000, "input_facts": 1000, "program_bytes": 100_000}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def q(values: list[float], at: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(at * len(ordered)))] * 1000


async def run(facts: int, decisions: int) -> str:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with EmbeddedRedis(tmp / "redis") as server:
            settings = Settings(redis_url=server.url, data_dir=tmp)
            redis = connect(settings)
            pool = ComputePool(2)
            try:
                store = open_dataset_store(settings, redis)
                rnd = random.Random(16)
                lines = b"".join(
                    b'["edge",%d,%d]\n' % (rnd.randrange(facts), rnd.randrange(facts)) for _ in range(facts)
                )
                v, _ = await store.ingest(
                    "bench", "graph", [UploadPart("ndjson", _chunks(lines))], created_by="b"
                )
                refs = (DatasetRef(binding="graph", name="graph", version=v.version, hash=v.hash),)
                await asyncio.to_thread(pool.start)

                async def decide(node: int) -> dict[str, Any]:
                    case = dataset_eval.DatasetCase(
                        reader=DatasetReaderOpener(settings),
                        refs=refs,
                        source=PROGRAM,
                        filename="near.lp",
                        facts={"ask": [[node]]},
                        query=["near(Z)"],
                        explain=False,
                        limits=LIMITS,
                    )
                    return await dataset_eval.evaluate_recorded(pool, store, "bench", case, budget_ms=240_000)

                lags: list[float] = []
                running = True

                async def ticker() -> None:
                    while running:
                        t0 = time.perf_counter()
                        await asyncio.sleep(0.005)
                        lags.append(time.perf_counter() - t0 - 0.005)

                tick = asyncio.create_task(ticker())
                cpu0, t0 = time.process_time(), time.perf_counter()
                out = await decide(0)
                first, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                running = False
                await tick
                assert "error" not in out, out
                warm = []
                for i in range(1, decisions + 1):
                    t0 = time.perf_counter()
                    out = await decide(i)
                    warm.append(time.perf_counter() - t0)
                    assert "error" not in out, out
            finally:
                pool.close()
                await redis.aclose()
    return (
        f"first decision {first:.2f} s, this process's CPU meanwhile {cpu:.2f} s; event-loop lag "
        f"during it p50 {q(lags, 0.5):.1f} ms, p99 {q(lags, 0.99):.1f} ms, max {max(lags) * 1000:.1f} ms; "
        f"warm decisions p50 {q(warm, 0.5):.2f} ms, p90 {q(warm, 0.9):.2f} ms ({decisions})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=300)
    args = parser.parse_args()
    print(f"{args.facts:,} edges: " + asyncio.run(run(args.facts, args.decisions)))
    command = "command: .venv/bin/python bench/datasets_event_loop.py"
    print(f"{command} --facts {args.facts} --decisions {args.decisions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
