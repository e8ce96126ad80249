"""The Redis client's own CPU per command: hiredis's reply parser against redis-py's
pure-Python one, in the same run, on the same embedded server.

Every decision costs the backend and the worker about ten requests to Redis
(``tests/integration/application/test_round_trips.py`` pins the counts), and the
relay a few more. redis-py parses replies in Python unless ``hiredis`` is
installed; the library depends on ``redis[hiredis]`` for that. This bench shows
what the parser costs per command, with the shapes the service reads: a decision
record (a string of about 2 KB), a hash (a ruleset version's fields) and an integer.

    .venv/bin/python bench/redis_client.py [--commands 5000] [--runs 5]

It prints, per parser, the median CPU time (``time.process_time``) per round of
three commands, and the ratio. CPU time, not wall: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.utils import HIREDIS_AVAILABLE

from entail.state.embedded import EmbeddedRedis

PARSERS = {"hiredis": _AsyncHiredisParser, "python": _AsyncRESP2Parser}


async def one_run(url: str, parser: type, rounds: int) -> float:
    """CPU seconds per round of GET (2 KB) + HGETALL (20 fields) + INCR."""
    client = aioredis.Redis.from_url(url, parser_class=parser)
    try:
        for _ in range(200):  # connect, warm the code paths
            await client.get("bench:record")
        t0 = time.process_time()
        for _ in range(rounds):
            await client.get("bench:record")
            await client.hgetall("bench:version")
            await client.incr("bench:counter")
        return (time.process_time() - t0) / rounds
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=5000, help="rounds of three commands per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per parser, alternated")
    args = parser.parse_args()
    if not HIREDIS_AVAILABLE:
        sys.exit("hiredis is not installed: `make install` (the library depends on redis[hiredis])")
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        try:
            setup = aioredis.Redis.from_url(server.url)
            await setup.set("bench:record", json.dumps({"facts": "x" * 1900, "n": list(range(20))}))
            await setup.hset("bench:version", mapping={f"field{i}": "v" * 40 for i in range(20)})
            await setup.aclose()
            per: dict[str, list[float]] = {name: [] for name in PARSERS}
            for _ in range(args.runs):
                for name, cls in PARSERS.items():
                    per[name].append(await one_run(server.url, cls, args.commands))
        finally:
            server.stop()
    medians = {name: statistics.median(v) * 1000.0 for name, v in per.items()}
    print("| parser | CPU per round of 3 commands (median) | per command |")
    print("|---|---|---|")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.3f} ms | {ms / 3:.3f} ms |")
    print(f"\nratio hiredis / python: {medians['hiredis'] / medians['python']:.2f}x")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.1f}")
    print(f"reproduce: .venv/bin/python bench/redis_client.py --commands {args.commands} --runs {args.runs}")


if __name__ == "__main__":
    asyncio.run(main())
