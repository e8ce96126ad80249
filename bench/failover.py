"""Failover through the whole local stack: kill the Redis primary under load.

Starts `entail_dev.stack.Stack` with the HA topology (1 primary + 2 replicas + 3
Sentinels, `make run-ha`), then, per run: a few clients submit decisions
through the backend (each request a new case, wait_ms=0: 202 once the decision
and its job are durably stored); the current primary is SIGKILLed; load goes on
until the stack serves again and a little longer. Then every acknowledged
decision (200/202) must be readable, and the killed node rejoins as a replica
before the next run. Per run it reports:

- failover: kill -> end of the first successful write *started* after the kill;
- failed: requests answered with anything but 200/202 (or not at all) between
  the kill and that first success;
- lost: acknowledged decisions not readable afterwards (must be 0).

Report, don't assert: the machine is shared and the clients run on the same
cores as the services.

    .venv/bin/python bench/failover.py [--runs 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from entail_dev.stack import Stack

from entail.auth import key_entry
from entail.net import free_port
from entail.settings import Settings
from entail.state.embedded_ha import EmbeddedHA

HERE = Path(__file__).resolve().parent
PROGRAM = "ok(X) :- a(X), X > 0. #defined a/1."
KEY = "ent_bench_failover"


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    status: int  # 0: no answer
    decision_id: str | None

    @property
    def ok(self) -> bool:
        return self.status in (200, 202) and self.decision_id is not None


async def load(
    client: httpx.AsyncClient, stop: asyncio.Event, out: list[Outcome], counter: list[int]
) -> None:
    while not stop.is_set():
        counter[0] += 1
        body = {"ruleset": "fo", "facts": {"a": [[counter[0]]]}, "query": ["ok(X)"], "wait_ms": 0}
        started = time.monotonic()
        try:
            response = await client.post("/v1/decisions", json=body)
            status = response.status_code
            ident = response.json().get("decision_id") if status in (200, 202) else None
        except httpx.HTTPError:
            status, ident = 0, None
        out.append(Outcome(started, time.monotonic(), status, ident))
        await asyncio.sleep(0.02)


async def one_run(
    client: httpx.AsyncClient, ha: EmbeddedHA, clients: int, counter: list[int]
) -> dict[str, Any]:
    outcomes: list[Outcome] = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(load(client, stop, outcomes, counter)) for _ in range(clients)]
    await asyncio.sleep(2.0)
    primary = ha.current_primary()
    assert primary is not None, "no primary"
    killed_at = time.monotonic()
    await asyncio.to_thread(ha.kill, primary)
    first: Outcome | None = None
    while first is None and time.monotonic() - killed_at < 30:
        await asyncio.sleep(0.02)
        after = [o for o in outcomes if o.started > killed_at and o.ok]
        first = min(after, key=lambda o: o.ended) if after else None
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*tasks)
    if first is None:
        raise RuntimeError("the stack did not serve again within 30 s")
    window = [o for o in outcomes if o.ended > killed_at and o.started < first.ended]
    acknowledged = [o.decision_id for o in outcomes if o.ok and o.decision_id]
    lost = 0
    for ident in acknowledged:
        response = await client.get(f"/v1/decisions/{ident}")
        while response.status_code == 429:
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            response = await client.get(f"/v1/decisions/{ident}")
        lost += response.status_code != 200
    await asyncio.to_thread(ha.restart, primary)
    await asyncio.to_thread(ha.wait_ready, 60)
    return {
        "failover_s": first.ended - killed_at,
        "failed": sum(not o.ok for o in window),
        "in_window": len(window),
        "acknowledged": len(acknowledged),
        "lost": lost,
    }


async def measure(stack: Stack, runs: int, clients: int) -> list[dict[str, Any]]:
    ha = stack.redis
    assert isinstance(ha, EmbeddedHA)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=stack.backend_url, headers=headers, timeout=60) as client:
        response = await client.post("/v1/rulesets", json={"name": "fo", "source": PROGRAM})
        response.raise_for_status()
        counter = [0]
        rows = []
        for run in range(1, runs + 1):
            row = await one_run(client, ha, clients, counter)
            print(
                f"run {run}: failover {row['failover_s']:.2f} s, failed {row['failed']}/{row['in_window']} "
                f"in the window, acknowledged {row['acknowledged']}, lost {row['lost']}",
                flush=True,
            )
            rows.append(row)
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    command = f"{Path(sys.executable).name} bench/failover.py --runs {args.runs} --clients {args.clients}"
    with tempfile.TemporaryDirectory(prefix="entail-failover-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            backend_port=free_port(),
            worker_port=free_port(),
            audit_sink_port=free_port(),
        )
        log = Path(tmp) / "stack.log"
        with log.open("w") as out:
            stack = Stack(
                settings,
                out=out,
                colour=False,
                ha=True,
                extra_keys=[key_entry(KEY, "bench-failover", "bench", ["author", "decide"])],
                extra_env={"ENTAIL_RATE_LIMIT_PER_S": "10000", "ENTAIL_RATE_LIMIT_BURST": "10000"},
            )
            try:
                stack.start(publish_examples=False)
                rows = asyncio.run(measure(stack, args.runs, args.clients))
            except BaseException:
                out.flush()
                print(log.read_text()[-4000:], file=sys.stderr)
                raise
            finally:
                stack.stop()
    failover = [r["failover_s"] for r in rows]
    summary = {
        "runs": len(rows),
        "failover_s_median": statistics.median(failover),
        "failover_s_min": min(failover),
        "failover_s_max": max(failover),
        "failed_median": statistics.median(r["failed"] for r in rows),
        "lost_total": sum(r["lost"] for r in rows),
        "acknowledged_total": sum(r["acknowledged"] for r in rows),
    }
    print(
        f"\nmedian failover {summary['failover_s_median']:.2f} s "
        f"(min {summary['failover_s_min']:.2f}, max {summary['failover_s_max']:.2f}); "
        f"median failed requests in the window {summary['failed_median']}; "
        f"acknowledged-but-lost {summary['lost_total']} of {summary['acknowledged_total']}"
    )
    print(f"reproduce: {command}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "failover.json").write_text(
        json.dumps({"command": command, "summary": summary, "runs": rows}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
