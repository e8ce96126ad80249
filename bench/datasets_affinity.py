"""Affinity of decisions over datasets in the compute pool: how many times the versions
are materialised, and the decisions' latency, with the pool's affinity and without.

An embedded Redis and the local dataset store (what `entail up` runs); ``--versions``
datasets of ``--facts`` random edges each, a ruleset whose two-hop relation is
materialised per version; a pool of ``--processes`` processes. Each round sends, at
once, one decision per version (a new case each) and one plain task (a 20 ms
sleep, as other traffic), ``--rounds`` rounds. "without" is the same pool
choosing the last idle process for every task (the pool before affinity).

Report, don't assert: the machine is shared.

    .venv/bin/python bench/datasets_affinity.py [--processes 3] [--versions 3] [--facts 20000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Hashable
from pathlib import Path
from typing import Any

from entail.bootstrap import DatasetReaderOpener, open_dataset_store
from entail.compute import ComputePool
from entail.dataset_eval import DatasetCase, ReferenceStats, evaluate_recorded
from entail.datasets.port import DatasetStore, DatasetVersion, UploadPart
from entail.models import DatasetRef
from entail.settings import Settings
from entail.state.client import connect
from entail.state.embedded import EmbeddedRedis

PROGRAM = """%@dataset graph: edge(src: int, dst: int).
%@input ask(node: int).
two(X, Z) :- edge(X, Y), edge(Y, Z).
near(Z) :- ask(X), two(X, Z).
"""


class PoolWithoutAffinity(ComputePool):
    """The pool before affinity: every task takes the last idle process."""

    def _choose(self, key: Hashable | None) -> int:
        return len(self._idle) - 1


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def edges(facts: int, seed: int) -> list[UploadPart]:
    rnd = random.Random(seed)
    lines = b"".join(b'["edge",%d,%d]\n' % (rnd.randrange(facts), rnd.randrange(facts)) for _ in range(facts))
    return [UploadPart("ndjson", _chunks(lines))]


async def run_mode(
    pool: ComputePool, settings: Settings, store: DatasetStore, versions: list[DatasetVersion], rounds: int
) -> dict[str, Any]:
    await asyncio.to_thread(pool.start)
    stats = ReferenceStats(pool.pids, settings.reference_cache_bytes)
    latencies: list[float] = []
    materialised = 0
    limits = {
        "wall_time_ms": 60_000,
        "derived_facts": 10_000_000,
        "input_facts": 1000,
        "program_bytes": 100_000,
    }

    async def one(v: DatasetVersion, node: int) -> None:
        nonlocal materialised
        case = DatasetCase(
            reader=DatasetReaderOpener(settings),
            refs=(DatasetRef(binding="graph", name=v.name, version=v.version, hash=v.hash),),
            source=PROGRAM,
            filename="near.lp",
            facts={"ask": [[node]]},
            query=["near(Z)"],
            explain=False,
            limits=limits,
        )
        t0 = time.perf_counter()
        out = await evaluate_recorded(pool, store, "bench", case, budget_ms=120_000, stats=stats)
        latencies.append(time.perf_counter() - t0)
        assert "error" not in out, out
        assert stats.last is not None
        materialised += bool(stats.last["materialised"])

    t0 = time.perf_counter()
    try:
        for r in range(rounds):
            await asyncio.gather(
                *(one(v, r * 10 + i) for i, v in enumerate(versions)),
                pool.run(time.sleep, 0.02, budget_ms=5_000),
            )
        wall = time.perf_counter() - t0
        kept = stats.stats()
    finally:
        pool.close()
    return {
        "materialised": materialised,
        "kept": kept.entries,
        "bytes": kept.bytes,
        "p50": statistics.median(latencies),
        "p90": sorted(latencies)[int(0.9 * len(latencies))],
        "wall": wall,
    }


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with EmbeddedRedis(tmp / "redis") as server:
            settings = Settings(redis_url=server.url, data_dir=tmp)
            redis = connect(settings)
            try:
                store = open_dataset_store(settings, redis)
                versions = [
                    (await store.ingest("bench", f"graph{i}", edges(args.facts, i), created_by="bench"))[0]
                    for i in range(args.versions)
                ]
                rows = []
                for label, cls in (("with affinity", ComputePool), ("without", PoolWithoutAffinity)):
                    pool = cls(args.processes, queue_max=64, queue_max_per_tenant=64)
                    found = await run_mode(pool, settings, store, versions, args.rounds)
                    p50, p90, wall = found["p50"] * 1000, found["p90"] * 1000, found["wall"]
                    rows.append(
                        f"| {label} | {found['materialised']} | {found['kept']} "
                        f"| {found['bytes'] / 1e6:.0f} MB | {p50:.1f} ms | {p90:.1f} ms | {wall:.2f} s |"
                    )
            finally:
                await redis.aclose()
    decisions = args.versions * args.rounds
    print(
        f"{decisions} decisions over {args.versions} dataset versions of {args.facts:,} edges, "
        f"{args.rounds} rounds, a pool of {args.processes} processes (+1 plain task a round)"
    )
    print("| pool | materialisations | models kept | bytes kept | p50 | p90 | wall |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"command: .venv/bin/python bench/datasets_affinity.py --processes {args.processes} "
        f"--versions {args.versions} --facts {args.facts} --rounds {args.rounds}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--facts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
