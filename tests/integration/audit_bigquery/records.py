"""Decision records for the audit-store tests: ``record(n)`` is ``dec_00000n``,
completed ``n`` seconds after ``T0`` unless told otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from entail.audit.schema import format_timestamp
from entail.models import DecisionRecord

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
#: A search window around T0 that holds every default record.
START, END = T0 - timedelta(days=1), T0 + timedelta(days=1)


def record(
    n: int,
    *,
    tenant: str = "acme",
    ruleset: str = "loan",
    version: int = 1,
    status: str = "succeeded",
    completed: datetime | None = None,
    atoms: list[tuple[str, list[Any]]] | None = None,
    **extra: Any,
) -> DecisionRecord:
    """``atoms``: the answer atoms as (predicate, args); ``extra`` overrides any field."""
    done = completed or T0 + timedelta(seconds=n)
    found = atoms if atoms is not None else [("decision", ["alice", "approve"])]
    return DecisionRecord.model_validate(
        {
            "decision_id": f"dec_{n:06d}",
            "tenant": tenant,
            "ruleset": {"tenant": tenant, "name": ruleset, "version": version, "hash": "h" * 64},
            "request_hash": f"r{n}",
            "status": status,
            "facts": {"applicant": [["alice", 30]]},
            "query": ["decision(A, D)"],
            "answers": [
                {
                    "query": "q",
                    "answers": [
                        {"atom": f"{p}({', '.join(map(str, a))})" if a else p, "args": a, "bindings": {}}
                        for p, a in found
                    ],
                }
            ],
            "result_hash": "x" * 64,
            "stats": {"rules": 3},
            "worker": "w1",
            "submitted_at": format_timestamp(done - timedelta(seconds=2)),
            "completed_at": format_timestamp(done),
            **extra,
        }
    )
