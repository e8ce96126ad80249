"""The caller's CPU per Redis request: the client's path against a direct call.

``Redis.execute_command`` (the blocking pool's check-out and release, the retry
wrapper, redis-py's hooks) against :class:`entail.state.direct_calls.DirectCalls`
(a send and the client's parse on a connection kept out of the pool), the same
command (``EVALSHA`` of a one-``GET`` script) on the embedded server, uvloop and
hiredis as the services run. Alternated ``--runs`` times; CPU from
``time.process_time`` (this process only: the server's CPU is not counted).

    .venv/bin/python bench/direct_calls_cpu.py --calls 5000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from entail.settings import Settings
from entail.state.client import connect_clients
from entail.state.direct_calls import direct_calls
from entail.state.embedded import EmbeddedRedis

SCRIPT = "return redis.call('GET', KEYS[1])"


async def run(calls_per_run: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        try:
            redis = connect_clients(Settings(redis_url=server.url)).primary
            sha = await redis.script_load(SCRIPT)
            await redis.set("k", "x" * 200)
            direct = direct_calls(redis)
            ways: dict[str, Callable[[], Awaitable[Any]]] = {
                "client (execute_command)": lambda: redis.execute_command("EVALSHA", sha, 1, "k"),  # type: ignore[no-untyped-call]
                "direct (DirectCalls.call)": lambda: direct.call("EVALSHA", sha, 1, "k"),
            }
            cpu: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(runs):
                for name, call in ways.items():
                    t0 = time.process_time()
                    for _ in range(calls_per_run):
                        await call()
                    cpu[name].append((time.process_time() - t0) / calls_per_run * 1e6)
            for name, values in cpu.items():
                each = ", ".join(f"{v:.0f}" for v in values)
                print(f"{name}: median {statistics.median(values):.1f} µs CPU per request ({each})")
            await redis.aclose()
        finally:
            server.stop()
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.1f}")
    print(f"reproduce: .venv/bin/python bench/direct_calls_cpu.py --calls {calls_per_run} --runs {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="requests per run and way")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    uvloop.run(run(args.calls, args.runs))


if __name__ == "__main__":
    main()
