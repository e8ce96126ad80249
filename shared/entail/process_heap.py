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
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect startup's garbage, then freeze every object alive now; how many
    objects are frozen. Once per process, after its imports and its app are
    built (calling it again freezes what was allocated since)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
