"""The long-lived service processes' heap: startup objects out of the collector's way.

A service process imports FastAPI, pydantic, redis-py, OpenTelemetry, DuckDB's
bindings and our own modules: about 100,000 container objects that live as
long as the process. CPython's cyclic collector traverses all of them in every
full (generation 2) collection, which a busy process runs every few seconds:
measured in the local stack under load (``bench/load.py``, a probe on
``gc.callbacks``), the backend paused 115-400 ms per full collection and the
audit sink 75-310 ms, with every request in flight stalled meanwhile: that
pause *is* the p99 of a loaded stack (healthz included).

:func:`freeze_startup_heap`, called once the process has imported and built
what it serves with, collects the garbage of startup and moves every object
left to the permanent generation (:func:`gc.freeze`): later collections
traverse only what the process allocated since, a few thousand objects. The
frozen objects are never collected (they would not have been: they live as long
as the process); cycles made later are collected as before.

It also raises the young generation's threshold from 700 to
:data:`YOUNG_THRESHOLD` allocations. A young collection traverses every young
object still alive, and a loaded backend keeps thousands alive in its requests
in flight, so each cost ~1 ms: the backend ran ~330 of them and 30 of the
next generation in 39 s of ``bench/load.py``'s cells (~600 ms in all, pauses up
to 30-40 ms on the loaded machine); at 10,000 it ran a handful
(``bench/gc_pauses.py --threshold``). Garbage cycles wait a little longer for
their collection; memory that only refcounting frees is freed as before.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (net, of container objects) between young collections (CPython: 700)."""


def freeze_startup_heap() -> int:
    """Collect startup's garbage, then freeze every object alive now, and raise
    the young threshold (:data:`YOUNG_THRESHOLD`); how many objects are frozen.
    Once per process, after its imports and its app are built (calling it again
    freezes what was allocated since)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, old)
    return gc.get_freeze_count()
