"""The cyclic garbage collector's pauses in each service process under load.

Starts the local stack (``bench/load.py``'s ``bench_stack``) with a probe on
every process's path (``bench/gcprobe/sitecustomize.py``: a ``gc.callbacks``
hook that logs each generation 1 and 2 collection and its pause), runs
``bench/load.py``'s cells (healthz, cache hits, distinct decisions at each
``--concurrency``, ``--seconds`` each; its table is printed too), and prints,
per process, the full (generation 2) and generation 1 collections that ran
inside the measured window: how many, the longest, the total. A full
collection stops every request the process has in flight, so its pause shows
up whole in the p99. (Distinct decisions alone allocate little that lives:
at c=16 for 30 s the backend ran no full collection; the cache-hit and healthz
cells, at 5-20 times the request rate, run several.)

    .venv/bin/python bench/gc_pauses.py [--seconds 4] [--concurrency 1,16,64] [--profile TAG]

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
from load import bench_stack, measure, services_env, table  # noqa: E402

PROBE = HERE / "gcprobe"
PYSPY = os.environ.get("PYSPY", "/tmp/pyspy/bin/py-spy")


def pauses(path: Path, start: float, end: float) -> dict[int, list[float]]:
    """Pauses (ms) per generation logged in ``path`` between ``start`` and ``end``
    (epoch s); generation 0 as ``[count, total ms]`` over the window, from the
    running totals each line carries (up to the window's last logged line)."""
    out: dict[int, list[float]] = {0: [0, 0.0], 1: [], 2: []}
    young_before = young_last = (0.0, 0.0)
    if path.exists():
        for line in path.read_text().splitlines():
            stamp, generation, pause_ms, young_count, young_ms = line.split()
            young = (float(young_count), float(young_ms))
            if float(stamp) < start:
                young_before = young
            elif float(stamp) <= end:
                if generation != "0":  # a line of young totals only
                    out[int(generation)].append(float(pause_ms))
                young_last = young
    if young_last[0]:
        out[0] = [young_last[0] - young_before[0], young_last[1] - young_before[1]]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--profile", metavar="TAG", help="py-spy the backend and the sink meanwhile")
    parser.add_argument("--services-pythonpath", help="PYTHONPATH of the services only (another tree)")
    parser.add_argument("--threshold", help="the collector's thresholds in the services, e.g. 10000,10,10")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entail-gc-") as tmp:
        probe_dir = Path(tmp) / "gc"
        probe_dir.mkdir()
        # the stack's processes inherit this process's environment
        os.environ["GC_PROBE_DIR"] = str(probe_dir)
        if args.threshold:
            os.environ["GC_PROBE_THRESHOLD"] = args.threshold
        env = services_env(args.services_pythonpath)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), env.get("PYTHONPATH")]))
        with bench_stack(Path(tmp), extra_env=env) as stack:
            names = {c.process.pid: c.name for c in stack.children if c.process is not None}
            levels = [int(x) for x in args.concurrency.split(",")]
            recorders = []
            if args.profile:
                for name in ("backend", "sink"):
                    pid = next(p for p, n in names.items() if n == name)
                    svg = HERE / "profiles" / f"{name}-gc-{args.profile}.svg"
                    seconds = str(int(args.seconds * 3 * len(levels)))  # every cell
                    argv = [PYSPY, "record", "--native", "-r", "50", "-d", seconds,
                            "-o", str(svg), "--pid", str(pid)]  # fmt: skip
                    recorders.append(
                        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    )
            start = time.time()
            rows = uvloop.run(measure(stack.backend_url, stack.api_key, args.seconds, levels))
            end = time.time()
            for recorder in recorders:
                _, err = recorder.communicate(timeout=60)
                if recorder.returncode:
                    print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        found_rows: list[dict[str, Any]] = []
        for pid, name in sorted(names.items(), key=lambda item: item[1]):
            found = pauses(probe_dir / f"{pid}.txt", start, end)
            found_rows.append({"process": name, **{f"gen{g}": found[g] for g in (0, 1, 2)}})
    print(table(rows))
    print(f"\ncollections inside the {end - start:.1f} s of the cells above:")
    print(
        "| process | full (gen 2): count | longest | total | gen 1: count | longest | total "
        "| gen 0: count | total |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in found_rows:
        cells = []
        for g in ("gen2", "gen1"):
            values = r[g]
            cells += [str(len(values)), f"{max(values, default=0):.1f} ms", f"{sum(values):.1f} ms"]
        cells += [f"{r['gen0'][0]:.0f}", f"{r['gen0'][1]:.1f} ms"]
        print(f"| {r['process']} | " + " | ".join(cells) + " |")
    print(
        f"\nreproduce: .venv/bin/python bench/gc_pauses.py --seconds {args.seconds:g} "
        f"--concurrency {args.concurrency}; load average (1 min) {os.getloadavg()[0]:.2f} at end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
