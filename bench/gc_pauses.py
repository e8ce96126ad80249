"""The cyclic garbage collector's pauses in each service process under load.

Starts the local stack (``bench/load.py``'s ``bench_stack``) with a probe on
every process's path (``bench/gcprobe/sitecustomize.py``: a ``gc.callbacks``
hook that logs each generation 1 and 2 collection and its pause), drives
distinct uncached decisions at ``--concurrency`` for ``--seconds``, and prints,
per process, the full (generation 2) and generation 1 collections that ran
inside the measured window: how many, the longest, the total. A full
collection stops every request the process has in flight, so its pause shows
up whole in the p99.

    .venv/bin/python bench/gc_pauses.py [--seconds 10] [--concurrency 16] [--profile TAG]

``--profile TAG``: py-spy (``PYSPY``, default ``/tmp/pyspy/bin/py-spy``) records
the backend and the sink meanwhile at 50 Hz, native frames included (py-spy
pauses the process for each such sample; a collection shows as CPython's
``gc_collect_main`` under whatever allocation triggered it), to
``bench/profiles/{backend,sink}-gc-TAG.svg``.

``--services-pythonpath``: the services from another tree (its ``shared``,
``run_services/*`` and ``devstack``), the generator from this one.
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

import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from load import LeanClient, bench_stack, loan_case, services_env  # noqa: E402

PROBE = HERE / "gcprobe"
PYSPY = os.environ.get("PYSPY", "/tmp/pyspy/bin/py-spy")


async def drive(url: str, key: str, concurrency: int, seconds: float) -> int:
    client = LeanClient(url, key, 2 * concurrency)
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds
    done = 0

    async def one() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            body = {"ruleset": "loan", "facts": loan_case(next(counter)), "query": ["decision(A, D)"]}
            status, _ = await client.post("/v1/decisions", {**body, "wait_ms": 10_000})
            done += status == 200

    try:
        await asyncio.gather(*(one() for _ in range(concurrency)))
    finally:
        await client.aclose()
    return done


def pauses(path: Path, start: float, end: float) -> dict[int, list[float]]:
    """Pauses (ms) per generation logged in ``path`` between ``start`` and ``end`` (epoch s)."""
    out: dict[int, list[float]] = {1: [], 2: []}
    if path.exists():
        for line in path.read_text().splitlines():
            stamp, generation, pause_ms = line.split()
            if start <= float(stamp) <= end:
                out[int(generation)].append(float(pause_ms))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", metavar="TAG", help="py-spy the backend and the sink meanwhile")
    parser.add_argument("--services-pythonpath", help="PYTHONPATH of the services only (another tree)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entail-gc-") as tmp:
        probe_dir = Path(tmp) / "gc"
        probe_dir.mkdir()
        # the stack's processes inherit this process's environment
        os.environ["GC_PROBE_DIR"] = str(probe_dir)
        env = services_env(args.services_pythonpath)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), env.get("PYTHONPATH")]))
        with bench_stack(Path(tmp), extra_env=env) as stack:
            names = {c.process.pid: c.name for c in stack.children if c.process is not None}
            uvloop.run(drive(stack.backend_url, stack.api_key, 4, 2.0))  # warm up
            recorders = []
            if args.profile:
                for name in ("backend", "sink"):
                    pid = next(p for p, n in names.items() if n == name)
                    svg = HERE / "profiles" / f"{name}-gc-{args.profile}.svg"
                    argv = [PYSPY, "record", "--native", "-r", "50", "-d",
                            str(int(args.seconds)), "-o", str(svg), "--pid", str(pid)]  # fmt: skip
                    recorders.append(
                        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    )
            start = time.time()
            decisions = uvloop.run(drive(stack.backend_url, stack.api_key, args.concurrency, args.seconds))
            end = time.time()
            for recorder in recorders:
                _, err = recorder.communicate(timeout=60)
                if recorder.returncode:
                    print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        rows: list[dict[str, Any]] = []
        for pid, name in sorted(names.items(), key=lambda item: item[1]):
            found = pauses(probe_dir / f"{pid}.txt", start, end)
            rows.append({"process": name, **{f"gen{g}": found[g] for g in (1, 2)}})
    print(
        f"\n{decisions} decisions at c={args.concurrency} in {end - start:.1f} s; "
        "collections inside the window:"
    )
    print("| process | full (gen 2): count | longest | total | gen 1: count | longest | total |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = []
        for g in ("gen2", "gen1"):
            values = r[g]
            cells += [str(len(values)), f"{max(values, default=0):.1f} ms", f"{sum(values):.1f} ms"]
        print(f"| {r['process']} | " + " | ".join(cells) + " |")
    print(
        f"\nreproduce: .venv/bin/python bench/gc_pauses.py --seconds {args.seconds:g} "
        f"--concurrency {args.concurrency}; load average (1 min) {os.getloadavg()[0]:.2f} at end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
