"""The audit trail: search decisions, read one with its proof, replay one."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from entail import reasoning
from entail.models import DecisionRecord

from ..deps import Auditor, ServicesDep
from ..problems import Problem, not_found
from ..schemas import AuditPage, DecisionOut, QueryDiff, ReplayOut
from .decisions import public

router = APIRouter(tags=["audit"])


@router.get("/v1/audit/decisions", response_model=AuditPage)
async def search(
    services: ServicesDep,
    key: Auditor,
    start: Annotated[datetime, Query(description="completed at or after (ISO 8601 with a time zone)")],
    end: Annotated[datetime, Query(description="completed before (ISO 8601 with a time zone)")],
    ruleset: Annotated[str | None, Query(description="ruleset name")] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
    status: Annotated[str | None, Query(pattern="^(succeeded|failed)$")] = None,
    predicate: Annotated[
        str | None, Query(description="answers contain an atom of name/arity, e.g. decision/2")
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: str | None = None,
) -> Any:
    """Decisions of the caller's tenant completed in [start, end), newest first."""
    try:
        page = await asyncio.to_thread(
            services.audit.search_decisions,
            key.tenant,
            start,
            end,
            ruleset_name=ruleset,
            ruleset_version=version,
            status=status,
            predicate=predicate,
            page_size=page_size,
            page_token=page_token,
        )
    except ValueError as exc:
        raise Problem(422, "invalid-search", "Invalid search", str(exc)) from None
    return {"items": [public(r) for r in page.items], "next_page_token": page.next_page_token}


async def _record(services: Any, tenant: str, decision_id: str) -> DecisionRecord:
    record: DecisionRecord | None = await asyncio.to_thread(services.audit.get_decision, tenant, decision_id)
    if record is None:
        raise not_found(f"audited decision {decision_id!r}")
    return record


@router.get("/v1/audit/decisions/{decision_id}", response_model=DecisionOut)
async def get_audited(decision_id: str, services: ServicesDep, key: Auditor) -> Any:
    """The full audit record: facts, query, answers with proofs, ruleset version."""
    return public(await _record(services, key.tenant, decision_id))


@router.post("/v1/decisions/{decision_id}/replay", response_model=ReplayOut)
async def replay(decision_id: str, services: ServicesDep, key: Auditor) -> Any:
    """Re-evaluate the stored facts and queries with the stored ruleset version."""
    record = await _record(services, key.tenant, decision_id)
    if record.status != "succeeded":
        raise Problem(
            409,
            "not-replayable",
            "Not replayable",
            f"decision {decision_id!r} {record.status}: nothing to compare",
        )
    ref = record.ruleset
    stored = await asyncio.to_thread(services.audit.get_ruleset, key.tenant, ref.name, ref.version)
    if stored is None:
        raise Problem(
            409,
            "not-replayable",
            "Not replayable",
            f"ruleset {ref.name} version {ref.version} is not in the audit store",
        )
    ruleset = await asyncio.to_thread(reasoning.compile, stored.source, f"{ref.name}.lp")
    result = await asyncio.to_thread(
        ruleset.evaluate, record.facts or {}, record.query, explain=record.explain
    )
    before = {q["query"]: {a["atom"] for a in q["answers"]} for q in record.answers or []}
    diff = []
    for answered in result.answers:
        now = {a.atom for a in answered.answers}
        old = before.get(answered.query, set())
        if now != old:
            diff.append(QueryDiff(query=answered.query, added=sorted(now - old), removed=sorted(old - now)))
    return ReplayOut(
        decision_id=decision_id,
        identical=result.result_hash == record.result_hash and not diff,
        original_result_hash=record.result_hash,
        replay_result_hash=result.result_hash,
        ruleset=ref.model_dump(),
        diff=diff,
    )
