"""Where the service path spends its time: py-spy flame graphs per process, and
Redis commands per decision.

Starts the local stack with the audit sink on (``bench/load.py``'s ``bench_stack``),
then:

1. ``--commands``: counts the Redis commands (``INFO commandstats`` deltas) of
   ``--count`` uncached decisions and of ``--count`` cache hits, sent one at a
   time, and prints a table of commands per decision;
2. ``--profile``: drives distinct decisions at ``--concurrency`` while py-spy
   records each process (backend, worker, relay, sink with its gunicorn worker)
   for ``--duration`` seconds, writing ``bench/profiles/<process>-<tag>.svg``.

py-spy comes from a throwaway venv (``python3 -m venv /tmp/pyspy &&
/tmp/pyspy/bin/pip install py-spy``), never the project's lock; it needs
ptrace rights (root in a container).

    .venv/bin/python bench/profile_services.py --commands --profile --tag before
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from entail_dev.examples import example_case

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from load import bench_stack, loan_case  # noqa: E402

PYSPY = os.environ.get("PYSPY", "/tmp/pyspy/bin/py-spy")


def commandstats(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0) > 0}


async def send(url: str, key: str, bodies: list[dict[str, Any]], concurrency: int) -> int:
    ok = 0
    queue = iter(bodies)
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60
    ) as client:

        async def one() -> None:
            nonlocal ok
            for body in queue:
                r = await client.post("/v1/decisions", json=body)
                ok += r.status_code == 200

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return ok


def distinct(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {"ruleset": "loan", "facts": loan_case(i), "query": ["decision(A, D)"], "wait_ms": 10_000}
        for i in range(first, first + count)
    ]


def settle(quiet_s: float = 1.5) -> None:
    """Wait until the relay's background reads are the only traffic (audit drained)."""
    time.sleep(quiet_s)


def count_commands(stack: Any, count: int) -> None:
    client = redis.Redis.from_url(stack.env["ENTAIL_REDIS_URL"])
    hit = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"], "wait_ms": 10_000}
    asyncio.run(send(stack.backend_url, stack.api_key, [hit, *distinct(10**6, 5)], 1))
    settle()
    idle0 = commandstats(client)
    time.sleep(2.0)
    idle = delta(idle0, commandstats(client))  # background polling per second x 2
    rows: dict[str, dict[str, int]] = {}
    for kind, bodies in (("uncached", distinct(2 * 10**6, count)), ("cache hit", [hit] * count)):
        settle()
        before = commandstats(client)
        t0 = time.monotonic()
        asyncio.run(send(stack.backend_url, stack.api_key, bodies, 1))
        settle()
        elapsed = time.monotonic() - t0
        got = delta(before, commandstats(client))
        # subtract the background rate (blocking reads, sweeper, reclaimer) over the same time
        rows[kind] = {k: v - round(idle.get(k, 0) * elapsed / 2.0) for k, v in got.items()}
    names = sorted({k for r in rows.values() for k in r if r[k] > 0})
    print(f"\nRedis commands per decision ({count} decisions each, one at a time, audit on):")
    print("| command | uncached | cache hit |")
    print("|---|---|---|")
    for n in names:
        cells = [rows[kind].get(n, 0) / count for kind in ("uncached", "cache hit")]
        print(f"| {n} | {cells[0]:.2f} | {cells[1]:.2f} |")
    totals = [sum(max(0, v) for v in rows[kind].values()) / count for kind in ("uncached", "cache hit")]
    print(f"| **total** | {totals[0]:.1f} | {totals[1]:.1f} |")
    client.close()


def profile(
    stack: Any,
    tag: str,
    duration: float,
    concurrency: int,
    rate: int,
    hits: bool = False,
    processes: tuple[str, ...] = ("backend", "worker", "relay", "sink"),
) -> None:
    out = HERE / "profiles"
    out.mkdir(exist_ok=True)
    pids = {c.name: c.process.pid for c in stack.children if c.process.poll() is None}
    recorders = []
    for name in processes:
        if name not in pids:
            continue
        argv = [PYSPY, "record", "--nonblocking", "-r", str(rate), "-d", str(int(duration)), "-o",
                str(out / f"{name}-{tag}.svg"), "--pid", str(pids[name])]  # fmt: skip
        if name == "sink":
            argv.insert(2, "--subprocesses")
        recorders.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    bodies = distinct(3 * 10**6, 100_000)
    if hits:  # one case, repeated: after its first decision every request is a cache hit
        bodies = [bodies[0]] * 1_000_000
    end = time.monotonic() + duration + 2

    async def drive() -> None:
        limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
        async with httpx.AsyncClient(
            base_url=stack.backend_url,
            headers={"Authorization": f"Bearer {stack.api_key}"},
            limits=limits,
            timeout=60,
        ) as client:
            queue = iter(bodies)

            async def one() -> None:
                for body in queue:
                    if time.monotonic() > end:
                        return
                    await client.post("/v1/decisions", json=body)

            await asyncio.gather(*(one() for _ in range(concurrency)))

    asyncio.run(drive())
    for r in recorders:
        _, err = r.communicate(timeout=60)
        if r.returncode:
            print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
    print(f"profiles written to {out}/<process>-{tag}.svg", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--tag", default="before")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument(
        "--processes",
        default="backend,worker,relay,sink",
        help="comma-separated processes to record (default: all four)",
    )
    parser.add_argument("--hits", action="store_true", help="--profile a stream of cache hits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entail-profile-") as tmp, bench_stack(Path(tmp)) as stack:
        if args.commands:
            count_commands(stack, args.count)
        if args.profile:
            names = tuple(n.strip() for n in args.processes.split(",") if n.strip())
            profile(stack, args.tag, args.duration, args.concurrency, args.rate, args.hits, names)
    print(f"load average (1 min) {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
