"""Decision records for the tests, one set of factories:

* :func:`open_record` — a fresh decision as the backend creates it (state tests);
* :func:`audited` — ``dec_00000n``, final ``n`` seconds after :data:`T0`
  unless told otherwise, as the audit stores keep it (audit-store tests).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from entail.audit.schema import format_timestamp
from entail.models import DecisionRecord, DecisionStatus, RulesetRef, new_decision_id, utcnow

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
#: A search window around T0 that holds every default audited record.
START, END = T0 - timedelta(days=1), T0 + timedelta(days=1)


def open_record(tenant: str = "acme", status: DecisionStatus = "pending", **extra: Any) -> DecisionRecord:
    """A decision with a new id, submitted now; ``extra`` sets any other field."""
    return DecisionRecord(
        decision_id=new_decision_id(),
        tenant=tenant,
        ruleset=RulesetRef(tenant=tenant, name="r", version=1, hash="a" * 64),
        request_hash="b" * 64,
        status=status,
        submitted_at=utcnow(),
        **extra,
    )


def loan_pending(tenant: str = "acme") -> DecisionRecord:
    """A pending decision of ruleset ``loan`` v1 (hashes all zeros), as a job names it."""
    return DecisionRecord(
        decision_id=new_decision_id(),
        tenant=tenant,
        ruleset=RulesetRef(tenant=tenant, name="loan", version=1, hash="0" * 64),
        request_hash="0" * 64,
        status="pending",
        submitted_at=utcnow(),
    )


def store_pending(redis_url: str, tenant: str = "acme") -> str:
    """Write :func:`loan_pending` the way the backend writes it (no job queued),
    from synchronous test code; its decision id."""
    import asyncio

    import redis.asyncio as aioredis

    from entail.state.decisions import DecisionStore

    record = loan_pending(tenant)

    async def create() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await DecisionStore(client, 3600).create(record)
        finally:
            await client.aclose()

    asyncio.run(create())
    return record.decision_id


def answers(*atoms: tuple[str, list[Any]]) -> list[dict[str, Any]]:
    """One query's answers holding ``atoms`` given as (predicate, args)."""
    return [
        {
            "query": "q",
            "answers": [
                {
                    "atom": f"{name}({', '.join(map(str, args))})" if args else name,
                    "args": args,
                    "bindings": {},
                }
                for name, args in atoms
            ],
        }
    ]


def audited(
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
    """Decision ``dec_00000n``; ``atoms``: its answers as (predicate, args)
    (default one approval); ``extra`` overrides any field. A status that is not
    final has no ``completed_at``."""
    done = completed if completed is not None else T0 + timedelta(seconds=n)
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
            "answers": answers(*found),
            "result_hash": "x" * 64,
            "stats": {"rules": 3},
            "worker": "w1",
            "submitted_at": format_timestamp(done - timedelta(seconds=2)),
            "started_at": format_timestamp(done - timedelta(seconds=1)),
            "completed_at": format_timestamp(done) if status in ("succeeded", "failed") else None,
            **extra,
        }
    )
