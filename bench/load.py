"""Closed-loop load through the whole local stack: decisions/s and p50/p99 latency.

Starts a real local stack (embedded Redis, backend, worker, relay: `entail_dev.stack.Stack`)
on free ports, then for concurrency 1, 16 and 64 runs, for a fixed time each:

- ``healthz``: GET /healthz — a trivial endpoint of the same backend (the ceiling);
- ``cache-hit``: POST /v1/decisions with the same loan case (answered from the cache);
- ``distinct``: POST /v1/decisions with a new loan case every time, wait_ms=10000
  (publish → relay → worker → evaluate → store → done signal → answer).

Each worker coroutine sends its next request when the previous one answers.
Report, don't assert: the machine is shared, and the load generator runs on the
same 2 cores as the services it measures.

The generator is a lean keep-alive HTTP/1.1 client on uvloop
(:class:`entail.bus.push_client.PushClient`, orjson bodies) by default: httpx
cost the generator ~1 ms of CPU per request (2 per uncached decision, as much
as the backend's own), taken from the same two cores the services run on and
added to every latency it measured. ``--client httpx`` runs the old generator
(figures before this option were measured with it). ``client CPU`` in the
table is the generator's own CPU per request.

Little's law for a closed loop: the mean latency is ``concurrency /
throughput``. ``queueing`` is the share of that mean beyond the workload's own
mean at concurrency 1 (its service time with nothing else in flight): the time
requests spent waiting for a CPU, the event loop or Redis behind the others.

    .venv/bin/python bench/load.py [--seconds 5] [--concurrency 1,16,64] [--client lean|httpx]
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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
import uvloop
from entail_dev.stack import Stack, example_case

from entail.bus.push_client import PushClient, PushProtocolError
from entail.net import free_port
from entail.process_heap import freeze_startup_heap
from entail.settings import Settings

HERE = Path(__file__).resolve().parent


def services_env(pythonpath: str | None) -> dict[str, str]:
    """``PYTHONPATH`` for the stack's services only (``--services-pythonpath``: the
    tree before a change, from ``git archive``), while this process, the load
    generator, stays on the current tree: before and after are measured by the
    same generator. The audit sink's functions-framework source follows."""
    if not pythonpath:
        return {}
    import entail_dev.stack

    for entry in pythonpath.split(os.pathsep):
        source = Path(entry) / "entail_dev" / "sink.py"
        if source.exists():
            entail_dev.stack.SINK_SOURCE = source  # read by Stack.start()
    return {"PYTHONPATH": pythonpath}


@contextmanager
def bench_stack(
    tmp: Path,
    *,
    extra_keys: list[dict[str, Any]] | None = None,
    extra_env: dict[str, str] | None = None,
    **settings: Any,
) -> Iterator[Stack]:
    """The local stack on free ports under ``tmp``, its output in ``tmp/stack.log``,
    rate limits out of the way; stopped on exit. ``extra_keys`` (key entries) and
    ``extra_env`` (ENTAIL_* for the services) go to the stack as they are."""
    ports = {"backend_port": free_port(), "worker_port": free_port(), "audit_sink_port": free_port()}
    config = Settings(data_dir=tmp, **ports, **settings)
    with (tmp / "stack.log").open("w") as out:
        stack = Stack(
            config,
            out=out,
            colour=False,
            extra_env={
                "ENTAIL_DATA_DIR": str(tmp),
                "ENTAIL_RATE_LIMIT_PER_S": "1000000",
                "ENTAIL_RATE_LIMIT_BURST": "1000000",
                **(extra_env or {}),
            },
            extra_keys=extra_keys,
        )
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()


def loan_case(i: int) -> dict[str, Any]:
    name = f"c{i}"
    return {
        "applicant": [[name]],
        "income": [[name, 1_000_000 + 7919 * i % 6_000_000, "salary"]],
        "employment": [[name, i % 120]],
        "requested": [[name, 5_000_000 + i % 20_000_000]],
    }


class Client(Protocol):
    """What a cell needs of an HTTP client: a status and the parsed JSON body."""

    async def get(self, path: str) -> tuple[int, Any]: ...

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]: ...


class LeanClient:
    """Kept-alive HTTP/1.1 connections on asyncio streams (the relay's client):
    one per request in flight, none idle longer than the server's keep-alive."""

    def __init__(self, base_url: str, key: str, connections: int) -> None:
        self.base_url = base_url
        # uvicorn closes a connection idle for 5 s: drop ours before it does
        self.http = PushClient(timeout_s=60, max_idle=connections, idle_s=2.0, max_body=1 << 22)
        self.headers = f"authorization: Bearer {key}\r\ncontent-type: application/json\r\n".encode()

    async def get(self, path: str) -> tuple[int, Any]:
        r = await self.http.request("GET", self.base_url + path, b"", self.headers)
        return r.status, orjson.loads(r.body) if r.body else None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        r = await self.http.request("POST", self.base_url + path, orjson.dumps(body), self.headers)
        return r.status, orjson.loads(r.body) if r.body else None

    async def aclose(self) -> None:
        await self.http.aclose()


class HttpxClient:
    """The generator before the lean client (``--client httpx``), for comparison."""

    def __init__(self, base_url: str, key: str, connections: int) -> None:
        limits = httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0
        )
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60
        )

    async def get(self, path: str) -> tuple[int, Any]:
        r = await self.http.get(path)
        return r.status_code, r.json() if r.content else None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        r = await self.http.post(path, json=body)
        return r.status_code, r.json() if r.content else None

    async def aclose(self) -> None:
        await self.http.aclose()


CLIENTS: dict[str, Callable[[str, str, int], LeanClient | HttpxClient]] = {
    "lean": LeanClient,
    "httpx": HttpxClient,
}
TRANSPORT_ERRORS = (OSError, TimeoutError, PushProtocolError, httpx.TransportError)


async def run_cell(client: Client, kind: str, concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    transport_errors: list[str] = []
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds
    hit_body = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"]}

    async def one() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                if kind == "healthz":
                    status, _ = await client.get("/healthz")
                    ok = status == 200
                elif kind == "cache-hit":
                    status, answer = await client.post("/v1/decisions", hit_body)
                    ok = status == 200 and answer["cached"]
                else:
                    body = {
                        "ruleset": "loan",
                        "facts": loan_case(next(counter) + concurrency * 1_000_000),
                        "query": ["decision(A, D)"],
                        "wait_ms": 10_000,
                    }
                    status, answer = await client.post("/v1/decisions", body)
                    ok = status == 200 and answer["status"] == "succeeded"
            except TRANSPORT_ERRORS as exc:  # counted and shown, never a crash of the whole run
                transport_errors.append(f"{type(exc).__name__}: {exc}")
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    cpu0 = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - cpu0
    latencies.sort()
    done = len(latencies) + errors
    if transport_errors:
        first = transport_errors[0]
        print(
            f"… {kind} c={concurrency}: {len(transport_errors)} transport errors, first: {first}",
            file=sys.stderr,
        )
    return {
        "kind": kind,
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        if latencies
        else float("nan"),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "client_cpu_ms": client_cpu * 1000 / done if done else float("nan"),
    }


async def measure(
    url: str, key: str, seconds: float, levels: list[int], client_kind: str = "lean"
) -> list[dict[str, Any]]:
    rows = []
    client = CLIENTS[client_kind](url, key, 2 * max(levels))
    try:
        status, _ = await client.post(
            "/v1/decisions",
            {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"], "wait_ms": 10_000},
        )
        if status != 200:
            raise SystemExit(f"the warm-up decision answered {status}")
        for concurrency in levels:
            for kind in ("healthz", "cache-hit", "distinct"):
                row = await run_cell(client, kind, concurrency, seconds)
                rows.append(row)
                print(
                    f"… {kind:<9} c={concurrency:<3} {row['per_s']:8.1f}/s  p50 {row['p50_ms']:7.2f} ms"
                    f"  p99 {row['p99_ms']:7.2f} ms",
                    file=sys.stderr,
                )
    finally:
        await client.aclose()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    ceiling = {r["concurrency"]: r["per_s"] for r in rows if r["kind"] == "healthz"}
    # the workload's mean latency at concurrency 1 (Little: 1 / throughput): its service time
    service = {r["kind"]: 1000 / r["per_s"] for r in rows if r["concurrency"] == 1 and r["per_s"]}
    lines = [
        "| workload | concurrency | requests/s | p50 | p99 | errors | vs healthz | mean (c / throughput) "
        "| queueing | client CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["per_s"] / ceiling[r["concurrency"]] if ceiling.get(r["concurrency"]) else float("nan")
        little = 1000 * r["concurrency"] / r["per_s"] if r["per_s"] else float("nan")
        alone = service.get(r["kind"])
        queueing = f"{max(0.0, 1 - alone / little):.0%}" if alone and r["concurrency"] > 1 else "-"
        lines.append(
            f"| {r['kind']} | {r['concurrency']} | {r['per_s']:.1f} | {r['p50_ms']:.2f} ms | "
            f"{r['p99_ms']:.2f} ms | {r['errors']} | {ratio:.0%} | {little:.2f} ms | {queueing} | "
            f"{r.get('client_cpu_ms', float('nan')):.2f} ms |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--client", choices=sorted(CLIENTS), default="lean", help="the generator's HTTP client (default lean)"
    )
    parser.add_argument("--services-pythonpath", help="PYTHONPATH of the services only (another tree)")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    # the lean client runs on uvloop, as the services do; httpx on asyncio's own loop, as before
    run: Callable[[Awaitable[list[dict[str, Any]]]], list[dict[str, Any]]] = (
        uvloop.run if args.client == "lean" else asyncio.run  # type: ignore[assignment]
    )
    env = services_env(args.services_pythonpath)
    with (
        tempfile.TemporaryDirectory(prefix="entail-load-") as tmp,
        bench_stack(Path(tmp), extra_env=env) as stack,
    ):
        freeze_startup_heap()  # the generator's own full collections paused it 100+ ms under load
        rows = run(measure(stack.backend_url, stack.api_key, args.seconds, levels, args.client))
    print(table(rows))
    load = os.getloadavg()[0]
    command = (
        f".venv/bin/python bench/load.py --seconds {args.seconds:g} --concurrency {args.concurrency}"
        f" --client {args.client}"
    )
    print(f"\nreproduce: {command}")
    print(
        f"machine: nproc {os.cpu_count()}, {platform.platform()}, Python {platform.python_version()}, "
        f"load average (1 min) {load:.2f} at end; one backend, one worker, one relay, embedded valkey, "
        "and the load generator all on this machine"
    )
    out_file = HERE / "results" / "load.json"
    out_file.parent.mkdir(exist_ok=True)
    out_file.write_text(json.dumps({"rows": rows, "seconds": args.seconds, "client": args.client}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
