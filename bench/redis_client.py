"""The Redis client's own cost per command, on the embedded server, in the same run.

Two comparisons (CPU time, not wall: the machine is shared):

* ``--parser`` (the default): hiredis's reply parser against redis-py's
  pure-Python one. redis-py parses replies in Python unless ``hiredis`` is
  installed; the library depends on ``redis[hiredis]`` for that.
* ``--transport``: loopback TCP against a Unix socket, for the asyncio client
  (what the services use, hiredis, on uvloop unless ``--loop asyncio``) and the
  synchronous one (tools). The Redis ``send`` was the largest single frame of the
  backend's and the worker's profiles; this asks how much of it the transport is.
  Both sides are counted: the client process (``time.process_time``) and the
  server (``/proc/<pid>/stat``), with the round trip's wall time (median per round).

Every decision costs the backend and the worker about ten requests to Redis
(``tests/integration/application/test_round_trips.py`` pins the counts), and the
relay a few more. The rounds use the shapes the service reads: a decision record
(a string of about 2 KB), a hash (a ruleset version's fields) and an integer.

    .venv/bin/python bench/redis_client.py [--commands 5000] [--runs 5]
    .venv/bin/python bench/redis_client.py --transport [--commands 5000] [--runs 5]
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.utils import HIREDIS_AVAILABLE

from entail.state.embedded import EmbeddedRedis

SyncRunner = Callable[[str, int], tuple[float, float]]
PARSERS = {"hiredis": _AsyncHiredisParser, "python": _AsyncRESP2Parser}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def server_cpu_s(pid: int) -> float:
    """utime + stime of the server process (clock ticks: 10 ms, so runs must be long)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Sample:
    client_ms: list[float] = field(default_factory=list)  # CPU per round of 3 commands
    server_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)  # median round trip of one round


async def one_async_run(url: str, rounds: int, parser: type | None = None) -> tuple[float, float]:
    """CPU seconds per round of GET (2 KB) + HGETALL (20 fields) + INCR, and the
    median wall seconds of a round."""
    options: dict[str, Any] = {"parser_class": parser} if parser else {}
    client = aioredis.Redis.from_url(url, **options)
    try:
        for _ in range(200):  # connect, warm the code paths
            await client.get("bench:record")
        walls: list[float] = []
        t0 = time.process_time()
        for _ in range(rounds):
            w0 = time.perf_counter()
            await client.get("bench:record")
            await client.hgetall("bench:version")
            await client.incr("bench:counter")
            walls.append(time.perf_counter() - w0)
        return (time.process_time() - t0) / rounds, statistics.median(walls)
    finally:
        await client.aclose()


def one_sync_run(url: str, rounds: int) -> tuple[float, float]:
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            client.get("bench:record")
        walls: list[float] = []
        t0 = time.process_time()
        for _ in range(rounds):
            w0 = time.perf_counter()
            client.get("bench:record")
            client.hgetall("bench:version")
            client.incr("bench:counter")
            walls.append(time.perf_counter() - w0)
        return (time.process_time() - t0) / rounds, statistics.median(walls)
    finally:
        client.close()


async def seed(url: str) -> None:
    setup = aioredis.Redis.from_url(url)
    await setup.set("bench:record", json.dumps({"facts": "x" * 1900, "n": list(range(20))}))
    await setup.hset("bench:version", mapping={f"field{i}": "v" * 40 for i in range(20)})
    await setup.aclose()


async def compare_parsers(server: EmbeddedRedis, args: argparse.Namespace) -> None:
    if not HIREDIS_AVAILABLE:
        sys.exit("hiredis is not installed: `make install` (the library depends on redis[hiredis])")
    per: dict[str, list[float]] = {name: [] for name in PARSERS}
    for _ in range(args.runs):
        for name, cls in PARSERS.items():
            per[name].append((await one_async_run(server.url, args.commands, cls))[0])
    medians = {name: statistics.median(v) * 1000.0 for name, v in per.items()}
    print("| parser | CPU per round of 3 commands (median) | per command |")
    print("|---|---|---|")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.3f} ms | {ms / 3:.3f} ms |")
    print(f"\nratio hiredis / python: {medians['hiredis'] / medians['python']:.2f}x")


async def compare_transports(server: EmbeddedRedis, args: argparse.Namespace) -> None:
    assert server.pid is not None
    urls = {"tcp": server.tcp_url, "unix": server.url}
    runners: dict[str, SyncRunner | None] = {"async": None, "sync": one_sync_run}
    samples = {(client, transport): Sample() for client in runners for transport in urls}
    for _ in range(args.runs):
        for client, sync_runner in runners.items():
            for transport, url in urls.items():  # alternated: both see the same minutes
                before = server_cpu_s(server.pid)
                if sync_runner is None:
                    cpu, wall = await one_async_run(url, args.commands)
                else:
                    cpu, wall = sync_runner(url, args.commands)
                s = samples[(client, transport)]
                s.client_ms.append(cpu * 1000)
                s.server_ms.append((server_cpu_s(server.pid) - before) * 1000 / (args.commands + 200))
                s.wall_ms.append(wall * 1000)
    print("Per round of 3 commands (GET 2 KB, HGETALL 20 fields, INCR), medians of the runs:\n")
    print("| client | transport | client CPU | server CPU | client + server | round trip (wall, p50) |")
    print("|---|---|---|---|---|---|")
    med = statistics.median
    for (client, transport), s in samples.items():
        total = med(s.client_ms) + med(s.server_ms)
        print(
            f"| {client} | {transport} | {med(s.client_ms):.3f} ms | {med(s.server_ms):.3f} ms "
            f"| {total:.3f} ms | {med(s.wall_ms):.3f} ms |"
        )
    print()
    for client in runners:
        tcp, unix = samples[(client, "tcp")], samples[(client, "unix")]
        both_tcp = med(tcp.client_ms) + med(tcp.server_ms)
        both_unix = med(unix.client_ms) + med(unix.server_ms)
        print(
            f"{client}: unix / tcp client CPU {med(unix.client_ms) / med(tcp.client_ms):.2f}x, "
            f"client + server {both_unix / both_tcp:.2f}x, "
            f"round trip {med(unix.wall_ms) / med(tcp.wall_ms):.2f}x"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=5000, help="rounds of three commands per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per variant, alternated")
    parser.add_argument("--transport", action="store_true", help="TCP against a Unix socket, not the parsers")
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop", help="the services use uvloop"
    )
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), unix_socket=Path(tmp) / "valkey.sock")
        server.start()
        try:
            await seed(server.url)
            await (compare_transports if args.transport else compare_parsers)(server, args)
        finally:
            server.stop()
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.1f}")
    flags = (" --transport" if args.transport else "") + f" --loop {args.loop}"
    flags += f" --commands {args.commands} --runs {args.runs}"
    print(f"reproduce: .venv/bin/python bench/redis_client.py{flags}")


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.run(run(arguments))
    else:
        asyncio.run(run(arguments))
