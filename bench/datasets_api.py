"""Datasets through the API: upload rate (facts/s) and time until a 1M-fact dataset
is usable in decisions.

Starts a real local stack (`bench/load.py`'s ``bench_stack``), writes an edge list of
``--facts`` facts (NDJSON and CSV), and for each format:

- **upload**: POST /v1/datasets/{name} over HTTP, streamed from the file (the SDK's
  ``push_dataset``), wall time and facts/s; the backend's CPU time for it;
- **read**: the worker's load of that version (``store.read``: every row, content
  hash verified), in this process, on the same files and Redis;
- **first decision**: a ruleset binding the dataset (``%@dataset graph: edge(int, int).``)
  published, then one decision asking about one node, timed from the upload's answer
  (materialisation included): "usable in decisions".

Targets (issue 16): upload >= 200k facts/s; usable within 10 s of the upload. Report,
don't assert: the machine is shared and the client runs on the same cores.

    .venv/bin/python bench/datasets_api.py [--facts 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import bench_stack

from entail.datasets.local_store import LocalDatasetStore
from entail.settings import Settings
from entail.state.client import connect

PROGRAM = """%@dataset graph: edge(src: int, dst: int).
%@input ask(node: int).
next(Y) :- ask(X), edge(X, Y).
"""


def write_inputs(directory: Path, facts: int) -> tuple[Path, Path]:
    rnd = random.Random(16)
    ndjson, csv = directory / "edges.ndjson", directory / "edge.csv"
    with ndjson.open("wb") as nd, csv.open("wb") as cs:
        for start in range(0, facts, 50_000):
            pairs = [(rnd.randrange(facts), rnd.randrange(facts)) for _ in range(min(50_000, facts - start))]
            nd.write(b"".join(b'["edge",%d,%d]\n' % p for p in pairs))
            # other facts than the NDJSON's: another content hash, so its first decision
            # materialises again (the worker's cache is keyed by the versions' hashes)
            cs.write(b"".join(b"%d,%d\n" % (b, a) for a, b in pairs))
    return ndjson, csv


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def upload(client: httpx.Client, name: str, path: Path, content_type: str, query: str) -> dict[str, Any]:
    def chunks() -> Any:
        with path.open("rb") as f:
            while chunk := f.read(1 << 18):
                yield chunk

    answer = client.post(
        f"/v1/datasets/{name}{query}",
        content=chunks(),
        headers={"Content-Type": content_type},
        timeout=httpx.Timeout(3600.0, connect=30.0),
    )
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


async def read_all(settings: Settings, tenant: str, name: str, version: int) -> tuple[float, int]:
    redis = connect(settings)
    try:
        store = LocalDatasetStore(redis, settings.data_dir / "datasets")
        found = await store.get(tenant, name, version)
        assert found is not None
        t0 = time.perf_counter()
        rows = await asyncio.to_thread(lambda: sum(sum(1 for _ in r) for _, _, r in store.read(found)))
        return time.perf_counter() - t0, rows
    finally:
        await redis.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ndjson, csv = write_inputs(tmp, args.facts)
        (tmp / "stack").mkdir()
        with bench_stack(tmp / "stack", extra_env={"ENTAIL_DATASET_MAX_BYTES": str(8 << 30)}) as stack:
            settings = Settings(redis_url=stack.env["ENTAIL_REDIS_URL"], data_dir=tmp / "stack")
            backend = next(c for c in stack.children if c.name == "backend")
            pid = backend.process.pid if backend.process else None
            headers = {"Authorization": f"Bearer {stack.api_key}"}
            rows: list[str] = []
            with httpx.Client(base_url=stack.backend_url, headers=headers, timeout=600) as client:
                for label, path, content_type, query in (
                    ("ndjson", ndjson, "application/x-ndjson", ""),
                    ("csv", csv, "text/csv", "?predicate=edge"),
                ):
                    name = f"graph-{label}"
                    cpu0 = process_cpu(pid) if pid else 0.0
                    t0 = time.perf_counter()
                    version = upload(client, name, path, content_type, query)
                    upload_s = time.perf_counter() - t0
                    cpu = (process_cpu(pid) - cpu0) if pid else float("nan")
                    read_s, read_rows = asyncio.run(read_all(settings, "dev", name, version["version"]))
                    # usable in decisions: publish a ruleset binding this version, decide once
                    t1 = time.perf_counter()
                    published = client.post(
                        "/v1/rulesets",
                        json={
                            "name": f"next-{label}",
                            "source": PROGRAM,
                            "datasets": {"graph": f"{name}@{version['version']}"},
                        },
                    )
                    first = (
                        client.post(
                            "/v1/decisions",
                            json={
                                "ruleset": f"next-{label}",
                                "facts": {"ask": [[1]]},
                                "query": ["next(Y)"],
                                "wait_ms": 60_000,
                            },
                            timeout=120,
                        )
                        if published.status_code in (200, 201)
                        else published
                    )
                    decided_s = time.perf_counter() - t1
                    answer = first.json() if first.content else {}
                    status = answer.get("status", first.status_code)
                    rows.append(
                        f"| {label} | {version['facts']:,} | {path.stat().st_size / 1e6:.0f} MB "
                        f"| {upload_s:.2f} s "
                        f"| {args.facts / upload_s:,.0f} | {cpu:.2f} s | {read_s:.2f} s ({read_rows:,} rows) "
                        f"| {upload_s + decided_s:.2f} s ({status}) |"
                    )
            load1, _, _ = os.getloadavg()
    print(f"datasets through the API, {args.facts:,} edge facts, one backend on 127.0.0.1")
    print(
        "| format | facts stored | body | upload (wall) | facts/s | backend CPU | read() | "
        "upload + first decision |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"load average (1 min) {load1:.2f} at end, {os.cpu_count()} CPUs")
    print(f"command: .venv/bin/python bench/datasets_api.py --facts {args.facts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
