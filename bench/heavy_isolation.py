"""Another tenant's latency while one tenant sends heavy work to the backend.

Starts the local stack (embedded Redis, backend, worker, relay, sink) on free
ports, then for each attack: tenant ``acme`` sends one heavy request (a publish
whose example case spins, a validate of a ~700 KB program, a draft evaluation
that spins) while tenant ``globex`` polls ``GET /v1/rulesets`` and ``GET /healthz``
for the attack's duration (at most ``--window-s``). Prints p50/max of globex's
latencies and how the heavy request ended.

    .venv/bin/python bench/heavy_isolation.py [--window-s 15] [--wall-ms 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from entail_dev.stack import Stack

from entail.auth import key_entry
from entail.net import free_port
from entail.settings import Settings

ACME = "ent_bench_acme_key"
GLOBEX = "ent_bench_globex_key"

# t needs every triple of a/1: 10^9 combinations over 1,000 facts
SPIN_SOURCE = "t :- a(X), a(Y), a(Z), X+Y+Z < 0.\n"
SPIN_FACTS = {"a": [[i] for i in range(1000)]}


def big_program(target_bytes: int = 711_000) -> str:
    """Many small rules: the compile (parse, analysis, code generation) is the cost."""
    lines: list[str] = []
    size, i = 0, 0
    while size < target_bytes:
        line = f"p{i}(X, Y) :- q{i % 97}(X, Z), r{i % 89}(Z, Y), not s{i % 83}(X).\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)


ATTACKS: dict[str, tuple[str, str, dict[str, Any]] | None] = {
    "idle (no attack, 3 s)": None,
    "publish (spinning example case)": (
        "POST",
        "/v1/rulesets",
        {
            "name": "spin",
            "source": SPIN_SOURCE,
            "tests": [{"name": "spins", "facts": SPIN_FACTS, "expect": {"t": []}}],
        },
    ),
    "validate (711 KB program)": ("POST", "/v1/rulesets/validate", {"source": ""}),
    "draft evaluate (spinning)": (
        "POST",
        "/v1/rulesets/evaluate",
        {"source": SPIN_SOURCE, "facts": SPIN_FACTS, "query": ["t"]},
    ),
}


def probe(url: str, path: str, stop: threading.Event, out: list[float]) -> None:
    """One path, one request at a time, every 50 ms: a stalled loop shows as one long request."""
    headers = {"Authorization": f"Bearer {GLOBEX}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            response = client.get(path)
            out.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text
            time.sleep(0.05)


def measure(url: str, attack: tuple[str, str, dict[str, Any]] | None, window_s: float) -> dict[str, Any]:
    method, path, body = attack or ("", "", {})
    if path.endswith("/validate"):
        body = {"source": big_program()}
    latencies: dict[str, list[float]] = {"/v1/rulesets": [], "/healthz": []}
    stop = threading.Event()
    probers = [
        threading.Thread(target=probe, args=(url, path, stop, xs), daemon=True)
        for path, xs in latencies.items()
    ]
    outcome: dict[str, Any] = {}

    def heavy() -> None:
        t0 = time.perf_counter()
        if attack is None:  # the baseline: the same probes with nothing else running
            time.sleep(3)
            outcome.update(status="-", type="", s=time.perf_counter() - t0)
            return
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ACME}"}, timeout=300) as c:
            try:
                r = c.request(method, path, json=body)
                outcome["status"] = r.status_code
                outcome["type"] = (
                    r.json().get("type", "")
                    if r.headers.get("content-type", "").endswith("json")
                    else r.text[:80]
                )
            except httpx.HTTPError as exc:
                outcome["status"] = type(exc).__name__
        outcome["s"] = time.perf_counter() - t0

    attacker = threading.Thread(target=heavy, daemon=True)
    for prober in probers:
        prober.start()
    time.sleep(0.3)  # a few idle probes first
    attacker.start()
    attacker.join(timeout=window_s)
    stop.set()
    for prober in probers:
        prober.join(timeout=300)
    attacker.join(timeout=300)
    return {"latencies": latencies, "outcome": outcome}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--wall-ms", type=int, default=10_000, help="ENTAIL_LIMIT_WALL_TIME_MS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), backend_port=free_port(), worker_port=free_port(), audit_sink_port=free_port()
        )
        keys = [
            key_entry(ACME, "acme", "acme", ["author", "decide"]),
            key_entry(GLOBEX, "globex", "globex", ["admin"]),
        ]
        env = {
            "ENTAIL_LIMIT_WALL_TIME_MS": str(args.wall_ms),
            "ENTAIL_RATE_LIMIT_BURST": "100000",
            "ENTAIL_RATE_LIMIT_PER_S": "100000",
        }
        with (Path(tmp) / "stack.log").open("w") as log:
            stack = Stack(settings, out=log, colour=False, extra_env=env, extra_keys=keys)
            try:
                stack.start(publish_examples=False)
                print(f"wall-time limit {args.wall_ms} ms, window {args.window_s:g} s")
                head = f"{'attack':34} {'heavy request':>28} | globex GET /v1/rulesets p50/max"
                print(f"{head} | /healthz p50/max")
                for name, attack in ATTACKS.items():
                    m = measure(stack.backend_url, attack, args.window_s)
                    o = m["outcome"]
                    heavy = f"{o.get('status', 'pending')} {o.get('type', '')[-20:]} {o.get('s', 0):.1f}s"
                    cells = []
                    for path in ("/v1/rulesets", "/healthz"):
                        xs = m["latencies"][path]
                        cells.append(f"{statistics.median(xs):8.1f} / {max(xs):8.1f} ms (n={len(xs)})")
                    print(f"{name:34} {heavy:>28} | {cells[0]} | {cells[1]}", flush=True)
            finally:
                stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
