"""The backend's CPU per request, by kind, one request at a time.

Two ways, both printing CPU ms per request (user + system) and p50:

- default: the local stack (``bench/load.py``'s ``bench_stack``); the backend's
  CPU read from ``/proc`` around ``--requests`` requests of each kind
  (healthz, a cache hit, a GET of a decision, an uncached decision waited for);
- ``--in-process``: the backend's ASGI app called directly in this process
  (no uvicorn, no client sockets) on an embedded Redis, ``process_time`` around
  each kind (healthz, a cache hit, a GET, an uncached decision answered 202),
  the best of ``--rounds``: the app's own code, steadier on a shared machine.

    .venv/bin/python bench/backend_cpu.py [--requests 1000]
    .venv/bin/python bench/backend_cpu.py --in-process [--requests 600 --rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from entail_dev.examples import example_case, example_rulesets

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from load import bench_stack, loan_case  # noqa: E402

KEY = "bench-backend-cpu-key"


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def on_stack(stack: Any, n: int) -> dict[str, tuple[float, float]]:
    pid = {c.name: c.process.pid for c in stack.children}["backend"]
    out: dict[str, tuple[float, float]] = {}
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.backend_url, headers=headers, timeout=60) as client:
        hit = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"], "wait_ms": 10000}
        did = (await client.post("/v1/decisions", json=hit)).json()["decision_id"]
        numbers = iter(range(10**9))

        def uncached() -> Awaitable[httpx.Response]:
            case = loan_case(next(numbers) + 5_000_000)
            return client.post("/v1/decisions", json={**hit, "facts": case})

        kinds: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "healthz": lambda: client.get("/healthz"),
            "cache hit": lambda: client.post("/v1/decisions", json=hit),
            "GET decision": lambda: client.get(f"/v1/decisions/{did}"),
            "uncached (waited)": uncached,
        }
        for kind, call in kinds.items():
            count = n if not kind.startswith("uncached") else n // 3
            for _ in range(20):
                (await call()).raise_for_status()
            await asyncio.sleep(0.3)
            latencies = []
            before = cpu_s(pid)
            for _ in range(count):
                t0 = time.perf_counter()
                response = await call()
                latencies.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text
            out[kind] = ((cpu_s(pid) - before) / count * 1000, statistics.median(latencies) * 1000)
    return out


async def asgi(app: Any, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    raw = orjson.dumps(body) if body is not None else b""
    headers = [(b"host", b"x"), (b"authorization", f"Bearer {KEY}".encode()), (b"accept-encoding", b"gzip")]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 5555),
             "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    data = b"".join(chunks)
    return status, gzip.decompress(data) if data.startswith(b"\x1f\x8b") else data


async def in_process(n: int, rounds: int) -> dict[str, tuple[float, float]]:
    from entail_backend.app import create_app
    from entail_worker.evaluation import Evaluations

    from entail import jobs
    from entail.auth import key_entry
    from entail.bootstrap import bootstrap
    from entail.bus.redis_streams import decode_entry, stream_key
    from entail.settings import Settings
    from entail.state.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as server:
        settings = Settings(
            redis_url=server.url,
            data_dir=Path(tmp),
            api_keys_json=json.dumps([key_entry(KEY, "k1", "dev", ["decide", "author"])]),
            rate_limit_per_s=1e6,
            rate_limit_burst=1_000_000,
            # no worker here: the 202s stay open; more --rounds than the default
            # quota holds would end in 429 tenant-queue-full
            tenant_max_open=1_000_000,
        )
        app = create_app(settings)
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                       inbox.get, outbox.put))  # fmt: skip
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        for ruleset in example_rulesets():
            assert (await asgi(app, "POST", "/v1/rulesets", ruleset))[0] in (200, 201)
        hit = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"]}
        did = orjson.loads((await asgi(app, "POST", "/v1/decisions", hit))[1])["decision_id"]
        services = await bootstrap(settings)
        evaluations = Evaluations(settings.model_copy(update={"worker_processes": 1}))
        evaluations.start_in_background()
        entries = await services.redis.xrange(stream_key("reasoning-jobs"))
        (job,) = [m for m in (decode_entry(i, f) for i, f in entries) if m.attributes["decision_id"] == did]
        await jobs.handle_job(services, settings, evaluations, job)
        evaluations.close()
        numbers = iter(range(10**9))
        kinds: dict[str, Callable[[], Awaitable[tuple[int, bytes]]]] = {
            "healthz": lambda: asgi(app, "GET", "/healthz"),
            "cache hit": lambda: asgi(app, "POST", "/v1/decisions", hit),
            "GET decision": lambda: asgi(app, "GET", f"/v1/decisions/{did}"),
            "uncached (202)": lambda: asgi(
                app, "POST", "/v1/decisions", {**hit, "facts": loan_case(next(numbers))}
            ),
        }
        best: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(rounds):
            for kind, call in kinds.items():
                count = n if kind != "uncached (202)" else n // 2
                for _ in range(20):
                    await call()
                t0 = time.process_time()
                for _ in range(count):
                    status, _ = await call()
                best[kind].append((time.process_time() - t0) / count * 1000)
                assert status in (200, 202), status
                if kind == "uncached (202)":  # no worker: keep the job stream small
                    await services.redis.delete(stream_key("reasoning-jobs"))
        await services.aclose()
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await life
    return {k: (min(v), float("nan")) for k, v in best.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="--in-process: best of this many")
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    if args.in_process:
        rows = asyncio.run(in_process(args.requests, args.rounds))
    else:
        with (
            tempfile.TemporaryDirectory(prefix="entail-backend-cpu-") as tmp,
            bench_stack(Path(tmp)) as stack,
        ):
            rows = asyncio.run(on_stack(stack, args.requests))
    print("| request | backend CPU per request | p50 |")
    print("|---|---|---|")
    for kind, (cpu_ms, p50) in rows.items():
        print(f"| {kind} | {cpu_ms:.3f} ms | {'' if p50 != p50 else f'{p50:.2f} ms'} |")
    print(f"load average (1 min) {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
