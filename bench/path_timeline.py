"""Where an uncached decision's wall time goes at concurrency 1: a timeline per hop.

Starts the local stack (``bench/load.py``'s ``bench_stack``: embedded Redis,
backend, worker, relay, audit sink) with every process writing its spans to a
trace file (``ENTAIL_TRACE_FILE``, :mod:`entail.tracing`), sends ``--count``
distinct loan decisions one at a time (``wait_ms``, as ``bench/load.py``'s
``distinct`` row does), then joins each decision's spans by trace id and prints
the median of each hop, from the client's send to the client's receipt:

    client → backend → submit → job XADD → relay read → push → worker route
    → job handle → engine → complete → backend wakes and answers → client

All processes share one clock (``time.time_ns`` on one machine), so a hop that
crosses processes is the difference of two processes' stamps. The spans cost
CPU of their own (a file write per span), so the run is repeated with tracing
off (``--plain`` rows): the client's wall time per decision and the CPU of every
process per decision (``/proc``), the wall time that is *not* CPU being waits
(blocking reads, timers, the scheduler) or time the CPU spent on something else.

    .venv/bin/python bench/path_timeline.py [--count 200] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from audit_throughput import stack_cpu, tree_cpu  # noqa: E402
from load import LeanClient, bench_stack, loan_case, services_env  # noqa: E402

Span = dict[str, Any]

# the moments of a decision, in the order they happen; a hop is the time from
# the moment before it that the decision has (a decision without engine stage
# spans, say, skips those two)
MOMENTS: list[tuple[str, str]] = [
    ("client_send", "client sends"),
    ("backend_start", "backend's request span starts (client → backend)"),
    ("submit_start", "submit starts (auth, rate limit, resolve, body)"),
    ("publish_start", "job publish starts (cache GET, submit script)"),
    ("publish_end", "job published (XADD)"),
    ("submit_end", "submit ends"),
    ("push_start", "relay's push starts (XREADGROUP wakes, attempt count)"),
    ("route_start", "worker's push route starts (relay → worker)"),
    ("handle_start", "job.handle starts"),
    ("engine_start", "engine starts (record read, start script, to the pool)"),
    ("engine_end", "engine ends (the pool process's stages)"),
    ("complete_start", "complete script starts (pool reply, caps)"),
    ("backend_end", "backend has answered (done signal, wake, final read, answer)"),
    ("client_recv", "client has the answer (backend → client)"),
]
# durations shown beside the timeline: (label, start, end)
SPANS: list[tuple[str, str, str]] = [
    ("complete script, the worker's view (store, signal, cache, reply)", "complete_start", "complete_end"),
    ("relay's push, whole (worker answers after complete + publish)", "push_start", "push_end"),
]


def stamps(spans: list[Span], client: tuple[int, int]) -> dict[str, int]:
    """The named moments of one decision from the spans of its trace."""
    out: dict[str, int] = {"client_send": client[0], "client_recv": client[1]}

    def first(pred: Callable[[Span], bool]) -> Span | None:
        found = [s for s in spans if pred(s)]
        return min(found, key=lambda s: s["start_ns"]) if found else None

    server = first(lambda s: s["service"] == "entail-backend" and s["kind"] == "SERVER")
    if server:
        out["backend_start"], out["backend_end"] = server["start_ns"], server["end_ns"]
    pairs = {
        "submit": lambda s: s["name"] == "decision.submit",
        "publish": lambda s: s["name"] == "bus.publish",
        "push": lambda s: s["name"] == "relay.push" and s["service"] == "entail-relay",
        "route": lambda s: s["service"] == "entail-worker" and s["name"].startswith("POST "),
        "handle": lambda s: s["name"] == "job.handle",
        "complete": lambda s: s["name"] == "job.complete",
    }
    for key, pred in pairs.items():
        found = first(pred)
        if found:
            out[f"{key}_start"], out[f"{key}_end"] = found["start_ns"], found["end_ns"]
    engine = [s for s in spans if "entail.cpu_ms" in (s.get("attributes") or {})]
    if engine:
        out["engine_start"] = min(s["start_ns"] for s in engine)
        out["engine_end"] = max(s["end_ns"] for s in engine)
    return out


async def drive(url: str, key: str, first: int, count: int) -> tuple[list[tuple[str, int, int]], list[float]]:
    """``count`` distinct decisions one at a time: (decision id, send ns, receipt
    ns) each, and the wall time of each in ms (``bench/load.py``'s lean client)."""
    sent: list[tuple[str, int, int]] = []
    walls: list[float] = []
    client = LeanClient(url, key, 2)
    try:
        for i in range(first, first + count):
            body = {"ruleset": "loan", "facts": loan_case(i), "query": ["decision(A, D)"], "wait_ms": 10_000}
            t0 = time.time_ns()
            p0 = time.perf_counter()
            status, record = await client.post("/v1/decisions", body)
            p1 = time.perf_counter()
            t1 = time.time_ns()
            if status != 200 or record.get("status") != "succeeded":
                raise SystemExit(f"decision {i}: {status} {str(record)[:300]}")
            sent.append((record["decision_id"], t0, t1))
            walls.append((p1 - p0) * 1000)
    finally:
        await client.aclose()
    return sent, walls


def spans_by_decision(trace_dir: Path) -> dict[str, list[Span]]:
    """Every span of the run's trace files, grouped by the decision they belong to
    (a trace holds one decision: the submitting request's)."""
    spans: list[Span] = []
    for path in trace_dir.glob("trace-*.jsonl"):
        spans += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    out: dict[str, list[Span]] = {}
    for trace in by_trace.values():
        ids = {str((s.get("attributes") or {}).get("decision_id", "")) for s in trace} - {""}
        for decision_id in ids:
            out[decision_id] = trace
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def timeline(count: int, warmup: int, services: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="entail-timeline-") as tmp:
        trace_dir = Path(tmp) / "traces"
        env = {**services, "ENTAIL_TRACE_FILE": str(trace_dir / "trace-{service}-{pid}.jsonl")}
        with bench_stack(Path(tmp), extra_env=env) as stack:
            uvloop.run(drive(stack.backend_url, stack.api_key, 10**7, warmup))
            time.sleep(0.5)
            sent, _ = uvloop.run(drive(stack.backend_url, stack.api_key, 2 * 10**7, count))
            time.sleep(1.0)  # the audit's spans land; nothing below reads them
        spans = spans_by_decision(trace_dir)
    hops: dict[str, list[float]] = defaultdict(list)
    offsets: dict[str, list[float]] = defaultdict(list)
    totals: list[float] = []
    for decision_id, t0, t1 in sent:
        moments = stamps(spans.get(decision_id, []), (t0, t1))
        totals.append((t1 - t0) / 1e6)
        previous: str | None = None
        for key, _ in MOMENTS:
            if key not in moments:
                continue
            offsets[key].append((moments[key] - t0) / 1e6)
            if previous is not None:
                hops[key].append((moments[key] - moments[previous]) / 1e6)
            previous = key
        for label, a, b in SPANS:
            if a in moments and b in moments:
                hops[label].append((moments[b] - moments[a]) / 1e6)
    for key, label in MOMENTS[1:]:
        if hops.get(key):
            rows.append(
                {"hop": label, "n": len(hops[key]), "p50_ms": statistics.median(hops[key]),
                 "p90_ms": percentile(hops[key], 0.9), "at_ms": statistics.median(offsets[key])}
            )  # fmt: skip
    rows.append(
        {"hop": "total (client's wall time)", "n": len(totals), "p50_ms": statistics.median(totals),
         "p90_ms": percentile(totals, 0.9), "at_ms": statistics.median(totals)}
    )  # fmt: skip
    for label, _, _ in SPANS:
        if hops.get(label):
            rows.append(
                {"hop": label, "n": len(hops[label]), "p50_ms": statistics.median(hops[label]),
                 "p90_ms": percentile(hops[label], 0.9), "at_ms": None}
            )  # fmt: skip
    return rows


def processes_cpu(stack: Any) -> dict[str, float]:
    """CPU seconds so far of each service process (with its children) and Redis."""
    cpu = stack_cpu(stack)
    pid = getattr(stack.redis, "pid", None)
    if pid:
        cpu["redis"] = tree_cpu(pid)
    return cpu


def plain(count: int, warmup: int, services: dict[str, str]) -> dict[str, Any]:
    """Tracing off: the client's wall time and each process's CPU per decision
    (the load generator's own: ``client``)."""
    with (
        tempfile.TemporaryDirectory(prefix="entail-timeline-") as tmp,
        bench_stack(Path(tmp), extra_env=services) as stack,
    ):
        uvloop.run(drive(stack.backend_url, stack.api_key, 10**7, warmup))
        time.sleep(1.0)
        before = processes_cpu(stack)
        client0 = time.process_time()
        started = time.perf_counter()
        _, walls = uvloop.run(drive(stack.backend_url, stack.api_key, 3 * 10**7, count))
        elapsed = time.perf_counter() - started
        client = time.process_time() - client0
        time.sleep(1.0)  # the audit of the last decisions; the idle polling is subtracted below
        after = processes_cpu(stack)
        time.sleep(2.0)
        idle = processes_cpu(stack)
    cpu = {"client": client * 1000 / count}
    for name in after:
        idle_rate = (idle[name] - after[name]) / 2.0
        used = after[name] - before.get(name, 0.0) - idle_rate * (elapsed + 1.0)
        cpu[name] = max(0.0, used) * 1000 / count
    return {
        "p50_ms": statistics.median(walls),
        "p90_ms": percentile(walls, 0.9),
        "cpu_ms": cpu,
        "cpu_total_ms": sum(cpu.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-trace", action="store_true", help="only the run with tracing off")
    parser.add_argument("--services-pythonpath", help="PYTHONPATH of the services only (another tree)")
    args = parser.parse_args()
    services = services_env(args.services_pythonpath)
    if not args.no_trace:
        rows = timeline(args.count, args.warmup, services)
        print(f"\nuncached decisions one at a time, traced ({args.count}; medians per decision):")
        print("| moment (the hop before it) | hop p50 | hop p90 | at (p50 after the send) |")
        print("|---|---|---|---|")
        for r in rows:
            at = f"{r['at_ms']:.2f} ms" if r["at_ms"] is not None else "(beside)"
            print(f"| {r['hop']} | {r['p50_ms']:.2f} ms | {r['p90_ms']:.2f} ms | {at} |")
    p = plain(args.count, args.warmup, services)
    cells = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p["cpu_ms"].items()))
    print(
        f"\ntracing off: wall p50 {p['p50_ms']:.2f} ms, p90 {p['p90_ms']:.2f} ms; "
        f"CPU ms per decision: {cells}; all processes {p['cpu_total_ms']:.2f} ms"
    )
    print(f"reproduce: .venv/bin/python bench/path_timeline.py --count {args.count} --warmup {args.warmup}")
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} at end, nproc {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
