"""A probe for ``bench/gc_pauses.py``: on the PYTHONPATH of a process with
``GC_PROBE_DIR`` set, it appends one line per generation 1 or 2 collection
(wall time, generation, pause in ms) to ``<GC_PROBE_DIR>/<pid>.txt``. Not part
of any service: only the bench puts it on the path."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

_DIR = os.environ.get("GC_PROBE_DIR")

if _DIR:
    _started = [0.0]
    _path = os.path.join(_DIR, f"{os.getpid()}.txt")

    def _probe(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
        elif info["generation"] >= 1:
            pause_ms = (time.perf_counter() - _started[0]) * 1000
            with open(_path, "a") as out:
                out.write(f"{time.time():.3f} {info['generation']} {pause_ms:.3f}\n")

    gc.callbacks.append(_probe)
