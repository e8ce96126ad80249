"""The task the worker's evaluation processes run: the engine, with the record
caps, optionally at a lower CPU priority.

On a machine where the evaluations share cores with the processes that route
requests (backend, relay, the worker's own event loop, Redis: ``make run`` on a
small box), a tenant's slow cases can take the CPU those need, and everybody's
latency grows with them. With ``ENTAIL_WORKER_NICENESS`` > 0 each evaluation
process lowers its priority once, so the routing processes get the CPU first
and evaluations compete with each other as equals. It is 0 by default: on a
machine shared with other work (CI), niced evaluations starve behind it.
Imported by the pool processes: it keeps its imports to the engine and the
dataset evaluation (entail/dataset_eval.py).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from entail.compute import tasks
from entail.dataset_eval import DatasetCase, evaluate_case
from entail.record_limits import answer_count, answers_error, record_bytes, record_size_error

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
    niceness: int = 0,
    timed: bool = False,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
) -> dict[str, Any]:
    """:func:`entail.compute.tasks.evaluate` with the record caps (:mod:`entail.record_caps`)
    checked here: answers over a cap never leave this process (no pickling, no
    copies in the worker), only the named error."""
    _lower(niceness)
    out = tasks.evaluate(source, filename, facts, query, explain, limits, timed, locale, explain_absent)
    return capped(out, facts, query, max_answers, max_record_bytes)


def evaluate_over_datasets(
    case: DatasetCase, max_answers: int, max_record_bytes: int, niceness: int = 0
) -> dict[str, Any]:
    """A decision over datasets (:func:`entail.dataset_eval.evaluate_case`: the
    versions materialised once in this process), with the record caps checked here
    as for :func:`evaluate`; the process's cache report kept beside a capped error."""
    _lower(niceness)
    out = evaluate_case(case)
    report = out.pop("reference", None)
    out = capped(out, case.facts, case.query, max_answers, max_record_bytes)
    if report is not None:
        out["reference"] = report
    return out


def _lower(niceness: int) -> None:
    global _lowered
    if niceness > 0 and not _lowered:
        with contextlib.suppress(OSError):  # not permitted here: the normal priority
            os.nice(niceness)
        _lowered = True


def capped(
    out: dict[str, Any], facts: dict[str, Any], query: list[str], max_answers: int, max_record_bytes: int
) -> dict[str, Any]:
    """An evaluation's answer, or the named error of a record cap it exceeds."""
    answers = out.get("answers")
    if answers is None:
        return out
    count = answer_count(answers)
    if count > max_answers:
        return {"error": answers_error(count, max_answers), "stats": {**out["stats"], "answers": count}}
    size = record_bytes(answers, facts, query, out.get("why_not"))
    if size > max_record_bytes:
        error = record_size_error(size, max_record_bytes)
        return {"error": error, "stats": {**out["stats"], "record_bytes": size}}
    return out


def warm() -> int:
    """A no-op task: each evaluation process imports this module before the first decision."""
    return os.getpid()
