"""The worker's CPU per push on its HTTP path alone: a refused push (no push
secret: authentication, a 401 problem+json), so no Redis command, job or
evaluation is on the path, only the server, the routing and the answer.

Starts the worker (``entail_worker.app.create_app`` under uvicorn with uvloop and
httptools, as ``python -m entail_worker`` does) from each given source tree on an
embedded Redis, sends ``--pushes`` POSTs one at a time over one keep-alive
connection, and reads the worker's CPU from ``/proc`` around them. Trees are run
alternately, ``--runs`` times each; medians are printed.

    .venv/bin/python bench/worker_push_cpu.py                      # this checkout
    git archive <commit> | tar -x -C /tmp/before                    # a tree to compare
    .venv/bin/python bench/worker_push_cpu.py /tmp/before .
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from entail.state.embedded import EmbeddedRedis

BODY = b'{"message": {"data": "", "messageId": "1"}, "subscription": "s"}'


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(tree: Path, redis_url: str, pushes: int) -> float:
    """Microseconds of the worker's CPU per refused push."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        PYTHONPATH=f"{tree}/shared:{tree}/run_services/reasoning_worker:{tree}/devstack",
        ENTAIL_REDIS_URL=redis_url,
        ENTAIL_PUSH_AUTH="secret",
        ENTAIL_PUSH_SECRET="bench-secret",
        ENTAIL_WORKER_PROCESSES="1",
    )
    code = (
        "import uvicorn; from entail_worker.app import create_app; "
        f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning', "
        "loop='uvloop', http='httptools')"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            for _ in range(300):  # warm
                client.post("/push/reasoning-jobs", content=BODY)
            before = cpu_s(worker.pid)
            for _ in range(pushes):
                response = client.post("/push/reasoning-jobs", content=BODY)
            after = cpu_s(worker.pid)
            if response.status_code != 401:
                raise SystemExit(f"expected a 401, got {response.status_code}: {response.text}")
            return (after - before) / pushes * 1e6
    finally:
        worker.terminate()
        worker.wait()


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("trees", nargs="*", type=Path, default=[Path(__file__).resolve().parent.parent])
    parser.add_argument("--pushes", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp)) as redis:
        results: dict[Path, list[float]] = {tree: [] for tree in args.trees}
        for _ in range(args.runs):
            for tree in args.trees:
                results[tree].append(run(tree.resolve(), redis.url, args.pushes))
    for tree, values in results.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{tree}: worker CPU per refused push {statistics.median(values):.0f} us (runs: {runs})")
    print(f"load average (1 min) {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
