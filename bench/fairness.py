"""Fairness between tenants: another tenant's latency while one tenant attacks.

For each attack class a fresh local stack (``bench_stack``: embedded Redis,
backend, worker, relay, audit sink; default settings, so the default quotas) is
started with two tenants, ``attacker`` and ``victim``:

1. idle: the victim makes decisions one after another (a small case, distinct
   each time, ``wait_ms``) for ``--idle`` seconds: its idle p50;
2. attack: the attacker starts, and the victim keeps going for ``--attack`` seconds:

   - ``slow-decisions``: 32 attacker clients, each posting slow decisions
     (~1 s of evaluation each) back to back;
   - ``big-batch``: batches of 100 slow cases (``ENTAIL_BATCH_MAX_CASES``) posted
     one after another;
   - ``huge-answers``: 8 attacker clients posting decisions with 9,000 answers and
     their proofs (records of ~2 MB: stored, published, audited), and 4 more
     reading such a record in a loop.

Printed: per attack class the victim's idle p50, its p50 and p99 under attack,
whether the target holds (p50 under attack <= 2x idle p50, p99 <= 1 s), the
attacker's accepted/refused counts, and the peak RSS (VmHWM) of every process
of the stack. The run stops by itself (about 25 s per class by default).

    .venv/bin/python bench/fairness.py [--idle 4] [--attack 12]
        [--classes slow-decisions,big-batch,huge-answers]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from entail_dev.stack import Stack

from entail.auth import key_entry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import bench_stack

ATTACKER_KEY = "ent_bench_attacker_key"
VICTIM_KEY = "ent_bench_victim_key"
KEYS = [
    key_entry(ATTACKER_KEY, "attacker", "attacker", ["admin"]),
    key_entry(VICTIM_KEY, "victim", "victim", ["admin"]),
]
SLOW_SOURCE = "p(X,Y) :- a(X), a(Y), X < Y.\nc(N) :- N = #count{X,Y : p(X,Y)}.\n"
MANY_SOURCE = "n(X) :- a(X).\n"
VICTIM_SOURCE = "eligible(P) :- applicant(P), income(P, I), I >= 3000.\n"
SLOW_FACTS = 500  # ~1 s of evaluation on one core
HUGE_ANSWERS = 9_000
CLASSES = ("slow-decisions", "big-batch", "huge-answers")


def _counter() -> Callable[[], int]:
    counter = itertools.count()
    return lambda: next(counter)


async def victim_loop(client: httpx.AsyncClient, seconds: float, tag: str) -> list[float]:
    """Decisions one after another; their latencies (s). A 202 counts as its wait."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop_at:
        i += 1
        body = {
            "ruleset": "small",
            "facts": {"applicant": [[f"{tag}{i}"]], "income": [[f"{tag}{i}", 2500 + i]]},
            "query": ["eligible(P)"],
            "wait_ms": 30_000,
        }
        t0 = time.perf_counter()
        response = await client.post("/v1/decisions", json=body)
        elapsed = time.perf_counter() - t0
        if response.status_code != 200 or response.json()["status"] != "succeeded":
            elapsed = max(elapsed, 30.0)  # not answered in time: counts as the longest wait
        latencies.append(elapsed)
    return latencies


def _slow_case(n: int) -> dict[str, Any]:
    return {"facts": {"a": [[j] for j in range(SLOW_FACTS)] + [[f"x{n}"]]}}


async def attack_slow(client: httpx.AsyncClient, stop: asyncio.Event, stats: dict[str, int]) -> None:
    next_id = _counter()

    async def one() -> None:
        while not stop.is_set():
            body = {"ruleset": "slow", "query": ["c(N)"], "wait_ms": 30_000, **_slow_case(next_id())}
            with contextlib.suppress(httpx.HTTPError):
                r = await client.post("/v1/decisions", json=body)
                stats[str(r.status_code)] = stats.get(str(r.status_code), 0) + 1
                if r.status_code == 429:
                    await asyncio.sleep(1.0)

    await asyncio.gather(*(one() for _ in range(32)))


async def attack_batch(client: httpx.AsyncClient, stop: asyncio.Event, stats: dict[str, int]) -> None:
    next_id = _counter()
    while not stop.is_set():
        cases = [_slow_case(next_id()) for _ in range(100)]
        with contextlib.suppress(httpx.HTTPError):
            r = await client.post(
                "/v1/decisions/batch", json={"ruleset": "slow", "query": ["c(N)"], "cases": cases}
            )
            stats[str(r.status_code)] = stats.get(str(r.status_code), 0) + 1
        await asyncio.sleep(1.0)


async def attack_huge(client: httpx.AsyncClient, stop: asyncio.Event, stats: dict[str, int]) -> None:
    next_id = _counter()
    big_ids: list[str] = []

    async def writer() -> None:
        while not stop.is_set():
            n = next_id()
            body = {
                "ruleset": "many",
                "facts": {"a": [[j] for j in range(HUGE_ANSWERS)] + [[f"x{n}"]]},
                "query": ["n(X)"],
                "explain": True,
                "wait_ms": 30_000,
            }
            with contextlib.suppress(httpx.HTTPError):
                r = await client.post("/v1/decisions", json=body)
                stats[str(r.status_code)] = stats.get(str(r.status_code), 0) + 1
                if r.status_code == 200 and r.json().get("status") == "succeeded":
                    big_ids.append(r.json()["decision_id"])

    async def reader() -> None:
        while not stop.is_set():
            if not big_ids:
                await asyncio.sleep(0.1)
                continue
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"/v1/decisions/{big_ids[-1]}")
                stats[f"read {r.status_code}"] = stats.get(f"read {r.status_code}", 0) + 1

    await asyncio.gather(*(writer() for _ in range(8)), *(reader() for _ in range(4)))


ATTACKS: dict[
    str, Callable[[httpx.AsyncClient, asyncio.Event, dict[str, int]], Coroutine[Any, Any, None]]
] = {
    "slow-decisions": attack_slow,
    "big-batch": attack_batch,
    "huge-answers": attack_huge,
}


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the worker's evaluation processes and their fork server)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(parents.get(child, []))
    return out


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb(stack: Stack) -> dict[str, float]:
    """VmHWM (peak resident set) of each process of the stack, in MiB; a service's
    child processes (the worker's evaluation pool) as ``name/child``, the largest one."""
    pids: dict[str, int] = {c.name: c.process.pid for c in stack.children if c.process is not None}
    redis_pid = getattr(stack.redis, "pid", None)
    if isinstance(redis_pid, int):
        pids["redis"] = redis_pid
    out: dict[str, float] = {}
    for name, pid in pids.items():
        own = _vm_hwm_mb(pid)
        if own is not None:
            out[name] = own
        children = [m for m in (_vm_hwm_mb(c) for c in _children(pid)) if m is not None]
        if children:
            out[f"{name}/child (x{len(children)})"] = max(children)
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_class(name: str, url: str, idle_s: float, attack_s: float) -> dict[str, Any]:
    timeout = httpx.Timeout(60.0)
    limits = httpx.Limits(max_connections=200)
    async with (
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {VICTIM_KEY}"}, timeout=timeout
        ) as victim,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {ATTACKER_KEY}"}, timeout=timeout, limits=limits
        ) as attacker,
    ):
        for client, rulesets in (
            (victim, {"small": VICTIM_SOURCE}),
            (attacker, {"slow": SLOW_SOURCE, "many": MANY_SOURCE}),
        ):
            for ruleset, source in rulesets.items():
                r = await client.post("/v1/rulesets", json={"name": ruleset, "source": source})
                r.raise_for_status()
        await victim_loop(victim, 1.0, "warm")  # compile caches, connections
        idle = await victim_loop(victim, idle_s, "idle")
        stop, stats = asyncio.Event(), dict[str, int]()
        attack = asyncio.create_task(ATTACKS[name](attacker, stop, stats))
        await asyncio.sleep(1.0)  # let the attack take the workers first
        under = await victim_loop(victim, attack_s, "busy")
        stop.set()
        attack.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await attack
    idle_p50 = statistics.median(idle)
    p50, p99 = statistics.median(under), _p(under, 0.99)
    return {
        "class": name,
        "idle_p50_ms": idle_p50 * 1000,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "n": len(under),
        "ok": p50 <= 2 * idle_p50 and p99 <= 1.0,
        "attacker": stats,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=float, default=4.0, help="seconds of the victim alone")
    parser.add_argument("--attack", type=float, default=12.0, help="seconds of the victim under attack")
    parser.add_argument("--classes", default=",".join(CLASSES))
    parser.add_argument(
        "--niceness", type=int, default=0, help="ENTAIL_WORKER_NICENESS of the worker's evaluation processes"
    )
    args = parser.parse_args()
    classes = [c for c in args.classes.split(",") if c]
    unknown = set(classes) - set(CLASSES)
    if unknown:
        parser.error(f"unknown attack classes: {sorted(unknown)}")
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    for name in classes:
        with (
            tempfile.TemporaryDirectory(prefix=f"entail-fair-{name}-") as tmp,
            bench_stack(
                Path(tmp), extra_keys=KEYS, extra_env={"ENTAIL_WORKER_NICENESS": str(args.niceness)}
            ) as stack,
        ):
            row = asyncio.run(run_class(name, stack.backend_url, args.idle, args.attack))
            row["rss"] = peak_rss_mb(stack)
            rows.append(row)
            print(f"{name}: done", file=sys.stderr)
    load = os.getloadavg()
    print(
        f"# fairness, {platform.machine()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.perf_counter() - t0:.0f} s; load average at start {load_at_start:.1f}, at end {load[0]:.1f} "
        "(other work on the machine inflates every figure, idle ones included)"
    )
    print(
        "| attack | victim idle p50 | victim p50 under attack | victim p99 under attack | target "
        "| attacker answers | peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        rss = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["rss"].items()))
        stats = ", ".join(f"{k}: {v}" for k, v in sorted(r["attacker"].items()))
        print(
            f"| {r['class']} | {r['idle_p50_ms']:.1f} ms | {r['p50_ms']:.1f} ms "
            f"| {r['p99_ms']:.1f} ms (n={r['n']}) "
            f"| {'met' if r['ok'] else 'MISSED'} | {stats} | {rss} |"
        )
    print(
        f"\nreproduce: .venv/bin/python bench/fairness.py --idle {args.idle:g} --attack {args.attack:g} "
        f"--niceness {args.niceness}"
    )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
