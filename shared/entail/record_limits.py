"""The record caps' arithmetic and messages, with nothing but the standard library:
the worker's evaluation processes import it for their first task, and an
import of the service's models there cost seconds on a busy machine."""

from __future__ import annotations

import json
from typing import Any

LIMIT_ANSWERS = "limit-answers"
LIMIT_RECORD_SIZE = "limit-record-size"


RECORD_OVERHEAD_BYTES = 4_096
"""Generously, what a record holds besides its answers, facts and queries (ids,
hashes, times, stats): the size estimate errs on the large side."""


def answer_count(answers: list[dict[str, Any]] | None) -> int:
    return sum(len(q.get("answers") or ()) for q in answers or ())


def record_bytes(
    answers: list[dict[str, Any]] | None,
    facts: dict[str, Any] | None,
    query: list[str],
    why_not: list[dict[str, Any]] | None = None,
) -> int:
    """The size of a record's JSON with these answers, facts, queries (and why-nots,
    when asked for), without building the record: what
    :func:`~entail.record_json.dump_record` writes for them, plus :data:`RECORD_OVERHEAD_BYTES`."""
    parts: tuple[Any, ...] = (answers, facts, query) if why_not is None else (answers, facts, query, why_not)
    return sum(len(_dumps(part).encode()) for part in parts) + RECORD_OVERHEAD_BYTES


def answers_error(count: int, limit: int) -> dict[str, str]:
    return {
        "code": LIMIT_ANSWERS,
        "message": f"{count} answers; at most {limit} per decision (ENTAIL_LIMIT_ANSWERS): narrow the query",
    }


def record_size_error(size: int, limit: int) -> dict[str, str]:
    return {
        "code": LIMIT_RECORD_SIZE,
        "message": f"the decision's record is {size} bytes; at most {limit} (ENTAIL_RECORD_MAX_BYTES): "
        "narrow the query or ask without explain",
    }


def _dumps(value: Any) -> str:
    # as entail.record_json.dumps writes records
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
