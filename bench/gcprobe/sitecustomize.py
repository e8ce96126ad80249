"""A probe for ``bench/gc_pauses.py``: on the PYTHONPATH of a process with
``GC_PROBE_DIR`` set, it appends one line per generation 1 or 2 collection to
``<GC_PROBE_DIR>/<pid>.txt``: wall time, generation, pause in ms, then the
count and total ms of generation 0 collections so far (kept in memory, and a
line written every 20th young collection only: one per collection would cost
more than the collection). With
``GC_PROBE_THRESHOLD`` (``"a,b,c"``) it sets the collector's thresholds first,
to try other ones. Not part of any service: only the bench puts it on the path."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

_DIR = os.environ.get("GC_PROBE_DIR")

if _DIR:
    _threshold = os.environ.get("GC_PROBE_THRESHOLD")
    if _threshold:
        gc.set_threshold(*(int(x) for x in _threshold.split(",")))
    _started = [0.0]
    _young = [0, 0.0]  # generation 0 collections: count, total ms
    _path = os.path.join(_DIR, f"{os.getpid()}.txt")

    def _probe(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - _started[0]) * 1000
        if info["generation"] == 0:
            _young[0] += 1
            _young[1] += pause_ms
            if _young[0] % 20:
                return  # every 20th young collection is logged: its running totals
        with open(_path, "a") as out:
            out.write(f"{time.time():.3f} {info['generation']} {pause_ms:.3f} {_young[0]} {_young[1]:.3f}\n")

    gc.callbacks.append(_probe)
