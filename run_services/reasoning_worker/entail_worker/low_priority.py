"""The task the worker's evaluation processes run: the engine, at a lower CPU priority.

On a machine with as many cores as running evaluations, a tenant's slow cases
would take every core from the processes that route requests (backend, relay,
the worker's own event loop, Redis), and everybody's latency would grow with
them. Evaluation processes lower their priority once (``nice``
``EVALUATION_NICENESS``), so the routing processes always get the CPU when they
need it and evaluations use what is left; evaluations compete with each other
as equals. Imported by the pool processes: it keeps its imports to the engine.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from entail.compute import tasks

from .record_caps import answer_count, answers_error, record_bytes, record_size_error

EVALUATION_NICENESS = 10

_lowered = False


def evaluate(
    source: str,
    filename: str,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    max_answers: int,
    max_record_bytes: int,
) -> dict[str, Any]:
    """:func:`entail.compute.tasks.evaluate` in a process of lower priority, with the
    record caps (:mod:`.record_caps`) checked here: answers over a cap never leave
    this process (no pickling, no copies in the worker), only the named error."""
    global _lowered
    if not _lowered:
        with contextlib.suppress(OSError):  # not permitted here: the normal priority
            os.nice(EVALUATION_NICENESS)
        _lowered = True
    out = tasks.evaluate(source, filename, facts, query, explain, limits)
    answers = out.get("answers")
    if answers is None:
        return out
    count = answer_count(answers)
    if count > max_answers:
        return {"error": answers_error(count, max_answers), "stats": {**out["stats"], "answers": count}}
    size = record_bytes(answers, facts, query)
    if size > max_record_bytes:
        error = record_size_error(size, max_record_bytes)
        return {"error": error, "stats": {**out["stats"], "record_bytes": size}}
    return out
