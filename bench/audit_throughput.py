"""What the audit trail costs: whole-stack throughput with the audit sink on vs off.

Starts the real local stack (embedded valkey, backend, worker, relay, and — when
on — the audit sink function writing the DuckDB file) and sends ``--decisions``
distinct loan decisions, ``--concurrency`` at a time, each waiting for its answer.

- off: no audit-sink subscription and no sink (``ENTAIL_AUDIT_SINK_ENABLED=false``,
  which production refuses). Throughput = decisions / time until the last answer.
- on: throughput = decisions / time until the last answer *and* the last audit row
  (the ``audit-sink`` subscription has nothing pending). A sink that falls behind
  shows here even when the answers are fast. After each run the DuckDB file must
  hold every decision exactly once, or the run is reported as a failure.

Each mode runs ``--runs`` times, alternating, on a fresh stack; medians are
reported with the ratio (target: on ≥ 90% of off). Report, don't assert: the load
generator shares the machine's cores with everything it measures.

    .venv/bin/python bench/audit_throughput.py [--decisions 600] [--concurrency 16] [--runs 3]

``--floor N`` measures only functions-framework's own CPU per request (the audit
sink's adapter with a no-op target, N pushes, median of 3): the part of the
sink's CPU per decision that no change to the sink can remove. It depends on
how the requests come: ``--burst 1/16,6/100`` adds the floor of pushes sent one
every 16 ms and six every 100 ms (the relay's read window sends the audit
sink's pushes in bursts; in the stack they come a few at a time, not 16 in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import httpx
import redis.asyncio as aioredis
from entail_dev.stack import SINK_SOURCE, Stack

from entail import reasoning
from entail.bus.port import DECISIONS
from entail.bus.redis_streams import RedisStreamsBus
from entail.bus.stream_queries import pending_lag
from entail.models import DecisionRecord, RulesetRef, new_decision_id, utcnow
from entail.net import free_port
from entail.relay import AUDIT_SINK_SUBSCRIPTION, Relay, default_subscriptions
from entail.settings import Settings
from entail.state.embedded import EmbeddedRedis


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout_s: float = 30.0) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; RuntimeError if ``process``
    exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from load import bench_stack, loan_case  # noqa: E402


async def drive(url: str, key: str, first: int, count: int, concurrency: int) -> tuple[list[str], int]:
    """Send ``count`` distinct decisions; their ids and the number that failed."""
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    ids: list[str] = []
    errors = 0
    numbers = iter(range(first, first + count))
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60
    ) as client:

        async def one() -> None:
            nonlocal errors
            for i in numbers:
                body = {"ruleset": "loan", "facts": loan_case(i), "query": ["decision(A, D)"]}
                body["wait_ms"] = 10_000
                r = await client.post("/v1/decisions", json=body)
                if r.status_code == 200 and r.json()["status"] == "succeeded":
                    ids.append(r.json()["decision_id"])
                else:
                    errors += 1

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return ids, errors


async def audit_drained(redis_url: str, timeout_s: float) -> bool:
    """Wait until the audit-sink subscription has nothing unacknowledged."""
    redis = aioredis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await pending_lag(redis, DECISIONS, AUDIT_SINK_SUBSCRIPTION) == 0:
                return True
            await asyncio.sleep(0.02)
        return False
    finally:
        await redis.aclose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU time of a process and its live descendants (the sink's gunicorn worker)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0.0
    for member in tree:
        try:
            total += cpu_seconds(member)
        except (OSError, IndexError, ValueError):
            continue
    return total


def stack_cpu(stack: Stack) -> dict[str, float]:
    return {c.name: tree_cpu(c.process.pid) for c in stack.children if c.process.poll() is None}


def count_rows(path: Path, ids: list[str]) -> dict[str, int]:
    """How many rows each decision id has in the audit file (read after the stack stopped)."""
    found: dict[str, int] = dict.fromkeys(ids, 0)
    with duckdb.connect(str(path), read_only=True) as conn:
        for (decision_id,) in conn.execute("SELECT decision_id FROM decisions").fetchall():
            if decision_id in found:
                found[decision_id] += 1
    return found


def one_run(audit: bool, decisions: int, concurrency: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="entail-audit-bench-") as tmp:
        with bench_stack(Path(tmp), audit_sink_enabled=audit) as stack:
            redis_url = stack.env["ENTAIL_REDIS_URL"]
            warm, _ = asyncio.run(drive(stack.backend_url, stack.api_key, seed * 10**7, 20, 4))
            if audit:
                asyncio.run(audit_drained(redis_url, 60))
            cpu_before = stack_cpu(stack)
            start = time.perf_counter()
            ids, errors = asyncio.run(
                drive(stack.backend_url, stack.api_key, seed * 10**7 + 1000, decisions, concurrency)
            )
            answered = time.perf_counter() - start
            drained = asyncio.run(audit_drained(redis_url, 120)) if audit else True
            finished = time.perf_counter() - start
            cpu_after = stack_cpu(stack)
        rows = count_rows(Path(tmp) / "audit.duckdb", warm + ids) if audit else {}
    missing = sum(1 for n in rows.values() if n == 0)
    duplicated = sum(1 for n in rows.values() if n > 1)
    return {
        "audit": audit,
        "decisions": len(ids),
        "errors": errors,
        "answered_s": answered,
        "finished_s": finished,
        "per_s": len(ids) / finished,
        "audit_lag_s": finished - answered,
        "drained": drained,
        "cpu_ms_per_decision": {
            name: 1000 * (cpu_after[name] - cpu_before[name]) / max(1, len(ids)) for name in cpu_after
        },
        "missing_rows": missing,
        "duplicated_rows": duplicated,
    }


def realistic_records(count: int) -> list[bytes]:
    """Loan decisions with proofs, as the worker publishes them on ``decisions``."""
    source = (resources.files("entail.examples") / "loan" / "program.lp").read_text()
    ruleset = reasoning.compile(source, "loan")
    ref = RulesetRef(tenant="dev", name="loan", version=1, hash=hashlib.sha256(source.encode()).hexdigest())
    out = []
    for i in range(count):
        facts = loan_case(i)
        result = ruleset.evaluate(facts, ["decision(A, D)"], explain=True)
        now = utcnow()
        record = DecisionRecord(
            decision_id=new_decision_id(),
            tenant="dev",
            ruleset=ref,
            request_hash=hashlib.sha256(str(i).encode()).hexdigest(),
            status="succeeded",
            facts=facts,
            query=["decision(A, D)"],
            explain=True,
            answers=[q.to_json() for q in result.answers],
            result_hash=result.result_hash,
            stats=dict(result.stats),
            submitted_at=now,
            started_at=now,
            completed_at=now,
        )
        out.append(record.model_dump_json(by_alias=True).encode())
    return out


async def drain(redis_url: str, settings: Settings, sink_url: str, count: int) -> tuple[float, float]:
    """Relay the published decisions to the sink; wall and relay CPU seconds until none is pending."""
    redis = aioredis.Redis.from_url(redis_url)
    sink = settings.model_copy(update={"audit_sink_url": sink_url})
    subs = [s for s in default_subscriptions(sink) if s.name == AUDIT_SINK_SUBSCRIPTION]
    stop = asyncio.Event()
    start, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(Relay(redis, subs, settings, consumer="bench").run(stop))
    while await pending_lag(redis, DECISIONS, AUDIT_SINK_SUBSCRIPTION) > 0:
        await asyncio.sleep(0.01)
    elapsed, relay_cpu = time.perf_counter() - start, time.process_time() - cpu
    stop.set()
    await task
    await redis.aclose()
    return elapsed, relay_cpu


def sink_capacity(count: int) -> dict[str, Any]:
    """The audit path alone: ``count`` decisions already on the topic, drained by
    the relay into the sink process as fast as they go."""
    payloads = realistic_records(count)
    with tempfile.TemporaryDirectory(prefix="entail-sink-bench-") as tmp:
        redis_server = EmbeddedRedis(Path(tmp) / "redis").start()
        port = free_port()
        audit_path = Path(tmp) / "audit.duckdb"
        env = {**os.environ, "ENTAIL_DATA_DIR": tmp, "ENTAIL_AUDIT_DUCKDB_PATH": str(audit_path)}
        argv = [
            sys.executable, "-m", "functions_framework", "--source", str(SINK_SOURCE),
            "--target", "audit_sink", "--signature-type", "cloudevent",
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        with (Path(tmp) / "sink.log").open("w") as log:
            sink = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_for_port(port, sink, "the audit sink")
            settings = Settings(data_dir=Path(tmp), redis_url=redis_server.url)

            async def publish_all() -> None:
                client = aioredis.Redis.from_url(redis_server.url)
                bus = RedisStreamsBus(client, settings.stream_max_len)
                for data in payloads:
                    decision_id = json.loads(data)["decision_id"]
                    await bus.publish(DECISIONS, data, {"decision_id": decision_id, "tenant": "dev"})
                await client.aclose()

            asyncio.run(publish_all())
            sink_cpu = tree_cpu(sink.pid)
            sink_url = f"http://127.0.0.1:{port}/"
            elapsed, relay_cpu = asyncio.run(drain(redis_server.url, settings, sink_url, count))
            sink_cpu = tree_cpu(sink.pid) - sink_cpu
        finally:
            os.killpg(sink.pid, signal.SIGTERM)
            sink.wait(20)
            redis_server.stop()
        ids = [json.loads(p)["decision_id"] for p in payloads]
        rows = count_rows(audit_path, ids)
    return {
        "decisions": count,
        "seconds": elapsed,
        "per_s": count / elapsed,
        "relay_cpu_ms_per_decision": 1000 * relay_cpu / count,
        "sink_cpu_ms_per_decision": 1000 * sink_cpu / count,
        "missing_rows": sum(1 for n in rows.values() if n == 0),
        "duplicated_rows": sum(1 for n in rows.values() if n > 1),
    }


NOOP_FUNCTION = """
import functions_framework


@functions_framework.cloud_event
def noop(cloud_event):
    cloud_event.get_data()
"""


def framework_floor(count: int, burst: int = 0, every_ms: float = 0.0) -> float:
    """CPU ms per request of functions-framework itself: the sink's adapter with a
    target that only reads the CloudEvent, served as the local sink is (16
    threads), fed the audit sink's pushes by the relay's client at 16 in flight;
    or, with ``burst`` and ``every_ms``, ``burst`` pushes at once every
    ``every_ms`` (as the relay's read window sends them in the stack: the
    framework's cost per request grows as the requests come fewer at a time)."""
    from entail.bus.port import Message
    from entail.bus.push import cloudevent_request
    from entail.bus.push_client import PushClient, encode_headers

    payload = realistic_records(1)[0]
    with tempfile.TemporaryDirectory(prefix="entail-floor-") as tmp:
        source = Path(tmp) / "main.py"
        source.write_text(NOOP_FUNCTION)
        port = free_port()
        argv = [
            sys.executable, "-m", "functions_framework", "--source", str(source), "--target", "noop",
            "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        server = subprocess.Popen(
            argv,
            env={**os.environ, "THREADS": "16"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(port, server, "functions-framework")

            async def push_all(n: int) -> None:
                numbers = iter(range(n))
                async with PushClient(timeout_s=30, max_idle=16) as client:

                    async def one() -> None:
                        for i in numbers:
                            message = Message(f"{i}-0", payload, {"decision_id": str(i)}, utcnow())
                            headers, body = cloudevent_request(message, DECISIONS, AUDIT_SINK_SUBSCRIPTION)
                            url = f"http://127.0.0.1:{port}/"
                            answer = await client.post(url, body, encode_headers(headers))
                            if answer.status != 200:
                                raise RuntimeError(f"the no-op function answered {answer.status}")

                    await asyncio.gather(*(one() for _ in range(16)))

            async def push_paced(n: int) -> None:
                async with PushClient(timeout_s=30, max_idle=max(16, burst)) as client:

                    async def one(i: int) -> None:
                        message = Message(f"{i}-0", payload, {"decision_id": str(i)}, utcnow())
                        headers, body = cloudevent_request(message, DECISIONS, AUDIT_SINK_SUBSCRIPTION)
                        answer = await client.post(f"http://127.0.0.1:{port}/", body, encode_headers(headers))
                        if answer.status != 200:
                            raise RuntimeError(f"the no-op function answered {answer.status}")

                    sent: list[asyncio.Task[None]] = []
                    for first in range(0, n, burst):
                        sent += [asyncio.create_task(one(i)) for i in range(first, min(n, first + burst))]
                        await asyncio.sleep(every_ms / 1000)
                    await asyncio.gather(*sent)

            push = push_paced if burst > 0 and every_ms > 0 else push_all
            asyncio.run(push(200))  # warm: connections, imports
            before = tree_cpu(server.pid)
            asyncio.run(push(count))
            return 1000 * (tree_cpu(server.pid) - before) / count
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--capacity", type=int, default=2000, help="decisions for the sink-alone drain")
    parser.add_argument(
        "--floor",
        type=int,
        default=0,
        metavar="N",
        help="only measure functions-framework's own CPU per request (a no-op target, N pushes)",
    )
    parser.add_argument(
        "--burst",
        default="",
        metavar="B/MS[,B/MS...]",
        help="with --floor: also pushes in bursts of B every MS milliseconds (e.g. 1/16,6/100,12/200)",
    )
    args = parser.parse_args()
    if args.floor:
        floor_ms = statistics.median(framework_floor(args.floor) for _ in range(3))
        print(
            f"functions-framework with a no-op CloudEvent target: {floor_ms:.2f} ms CPU per request "
            f"(median of 3 x {args.floor}, 16 in flight; load average {os.getloadavg()[0]:.2f})"
        )
        for pace in filter(None, args.burst.split(",")):
            size, _, every = pace.partition("/")
            paced = statistics.median(framework_floor(args.floor, int(size), float(every)) for _ in range(3))
            print(
                f"  in bursts of {size} every {every} ms: {paced:.2f} ms CPU per request "
                f"(load average {os.getloadavg()[0]:.2f})"
            )
        return 0
    capacity = [sink_capacity(args.capacity) for _ in range(args.runs)]
    for c in capacity:
        print(
            f"… sink alone: {c['per_s']:7.1f} decisions/s ({c['decisions']} in {c['seconds']:.2f} s), "
            f"CPU ms per decision: relay {c['relay_cpu_ms_per_decision']:.2f}, "
            f"sink {c['sink_cpu_ms_per_decision']:.2f}; missing rows {c['missing_rows']}, "
            f"duplicated rows {c['duplicated_rows']}",
            file=sys.stderr,
        )
    runs: list[dict[str, Any]] = []
    for r in range(args.runs):
        for audit in (False, True):
            row = one_run(audit, args.decisions, args.concurrency, seed=r * 2 + int(audit) + 1)
            runs.append(row)
            print(
                f"… audit {'on ' if audit else 'off'} run {r + 1}: {row['per_s']:7.1f} decisions/s, "
                f"answered in {row['answered_s']:.2f} s, audit drained {row['audit_lag_s']:.2f} s later, "
                f"errors {row['errors']}, missing rows {row['missing_rows']}, "
                f"duplicated rows {row['duplicated_rows']}",
                file=sys.stderr,
            )
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in row["cpu_ms_per_decision"].items())
            print(f"  CPU ms per decision: {cpu}", file=sys.stderr)
    off = statistics.median(r["per_s"] for r in runs if not r["audit"])
    on = statistics.median(r["per_s"] for r in runs if r["audit"])
    lag = statistics.median(r["audit_lag_s"] for r in runs if r["audit"])
    lost = sum(r["missing_rows"] for r in runs)
    duplicated = sum(r["duplicated_rows"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    print("| audit sink | decisions/s (median) | audit drained after last answer | rows lost | rows dup |")
    print("|---|---|---|---|---|")
    print(f"| off | {off:.1f} | n/a | n/a | n/a |")
    print(f"| on | {on:.1f} | {lag:.2f} s | {lost} | {duplicated} |")
    print(f"\non/off: {on / off:.0%} (target ≥ 90%); request errors: {errors}")
    cap = statistics.median(c["per_s"] for c in capacity)
    print(
        f"\naudit path alone (relay → sink → DuckDB, {args.capacity} decisions queued): "
        f"{cap:.1f} decisions/s median, {cap / off:.1f}x the stack's throughput without audit; CPU per "
        f"decision: relay {statistics.median(c['relay_cpu_ms_per_decision'] for c in capacity):.2f} ms, "
        f"sink {statistics.median(c['sink_cpu_ms_per_decision'] for c in capacity):.2f} ms"
    )
    lost += sum(c["missing_rows"] for c in capacity)
    duplicated += sum(c["duplicated_rows"] for c in capacity)
    names = sorted({n for r in runs for n in r["cpu_ms_per_decision"]})
    print("\nCPU per decision (median ms, each process of the stack):")
    print("| audit sink | " + " | ".join(names) + " | total |")
    print("|---|" + "---|" * (len(names) + 1))
    for audit in (False, True):
        mine = [r["cpu_ms_per_decision"] for r in runs if r["audit"] == audit]
        cells = [statistics.median(m.get(n, 0.0) for m in mine) for n in names]
        label = "on" if audit else "off"
        print(f"| {label} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {sum(cells):.2f} |")
    command = (
        f".venv/bin/python bench/audit_throughput.py --decisions {args.decisions} "
        f"--concurrency {args.concurrency} --runs {args.runs} --capacity {args.capacity}"
    )
    print(f"reproduce: {command}")
    print(
        f"machine: nproc {os.cpu_count()}, {platform.platform()}, Python {platform.python_version()}, "
        f"load average (1 min) {os.getloadavg()[0]:.2f} at end"
    )
    out_file = HERE / "results" / "audit_throughput.json"
    out_file.parent.mkdir(exist_ok=True)
    out_file.write_text(json.dumps({"runs": runs, "capacity": capacity, "args": vars(args)}, indent=2))
    ok = lost == 0 and duplicated == 0 and all(r["drained"] for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
