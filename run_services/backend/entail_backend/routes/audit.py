"""The audit trail: search decisions, read one with its proof, replay one, and the
impact of a new version (a background job). Replay and impact evaluate in the
compute pool under the service's limits."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from entail.compute import tasks
from entail.models import DecisionRecord

from .. import compute, impact_jobs
from ..compute import PoolDep
from ..deps import Auditor, ServicesDep
from ..problems import Problem, not_found
from ..schemas import AuditPage, DateTimeTz, DecisionOut, ImpactRequest, QueryDiff, ReplayOut
from .decisions import _limits, json_response, public
from .rulesets import compile_budget_ms

router = APIRouter(tags=["audit"])


@router.get("/v1/audit/decisions", response_model=AuditPage)
async def search(
    services: ServicesDep,
    key: Auditor,
    start: Annotated[DateTimeTz, Query(description="completed at or after (ISO 8601 with a time zone)")],
    end: Annotated[DateTimeTz, Query(description="completed before (ISO 8601 with a time zone)")],
    ruleset: Annotated[str | None, Query(description="ruleset name")] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
    status: Annotated[str | None, Query(pattern="^(succeeded|failed)$")] = None,
    predicate: Annotated[
        str | None,
        Query(
            description="answers contain an atom of name/arity, e.g. decision/2",
            pattern=r"^[a-z_][A-Za-z0-9_']*/[0-9]+$",
        ),
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: str | None = None,
) -> Any:
    """Decisions of the caller's tenant completed in [start, end), newest first."""
    if _empty(start, end):
        return json_response({"items": [], "next_page_token": None})
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
    return json_response({"items": [public(r) for r in page.items], "next_page_token": page.next_page_token})


def _empty(start: datetime, end: datetime) -> bool:
    """[start, end) holds no instant: no decision, not an error (the document allows
    any two times). A time without a zone is left to the store, which refuses it."""
    aware = start.tzinfo is not None and end.tzinfo is not None
    return aware and start >= end


async def _record(services: Any, tenant: str, decision_id: str) -> DecisionRecord:
    record: DecisionRecord | None = await asyncio.to_thread(services.audit.get_decision, tenant, decision_id)
    if record is None:
        raise not_found(f"audited decision {decision_id!r}")
    return record


@router.get(
    "/v1/audit/decisions/{decision_id}",
    response_model=DecisionOut,
    responses={404: {"description": "no audited decision of the caller's tenant has this id"}},
)
async def get_audited(decision_id: str, services: ServicesDep, key: Auditor) -> Any:
    """The full audit record: facts, query, answers with proofs, ruleset version."""
    return json_response(public(await _record(services, key.tenant, decision_id)))


@router.post(
    "/v1/decisions/{decision_id}/replay",
    response_model=ReplayOut,
    responses={
        404: {"description": "no audited decision of the caller's tenant has this id"},
        409: {
            "description": "not replayable: masked inputs, not succeeded, not audited yet, "
            "or its version is not audited"
        },
    },
)
async def replay(decision_id: str, services: ServicesDep, pool: PoolDep, key: Auditor) -> Any:
    """Re-evaluate the stored facts and queries with the stored ruleset version."""
    try:
        record = await _record(services, key.tenant, decision_id)
    except Problem as exc:
        # the decision exists but its audit row is not written yet: it will be
        # replayable, it is not missing
        if exc.status == 404 and await services.decisions.get_text(key.tenant, decision_id) is not None:
            raise Problem(
                409,
                "not-replayable",
                "Not replayable",
                f"decision {decision_id!r} is not in the audit trail yet (it is written when the "
                "decision completes); retry",
                headers={"Retry-After": "1"},
            ) from None
        raise
    if record.masked_predicates:
        masked = ", ".join(record.masked_predicates)
        raise Problem(
            409,
            "not-replayable",
            "Not replayable",
            f"not replayable: masked inputs ({masked} are stored as HMACs, not in clear)",
        )
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
    limits = _limits(services, {})
    out = await compute.run(
        pool,
        tasks.evaluate,
        stored.source,
        f"{ref.name}.lp",
        record.facts or {},
        record.query,
        record.explain,
        limits,
        budget_ms=compile_budget_ms(services) + limits["wall_time_ms"],
        tenant=key.tenant,
    )
    if "error" in out:
        raise compute.engine_problem(out["error"])
    before = {q["query"]: {a["atom"] for a in q["answers"]} for q in record.answers or []}
    diff = []
    for answered in out["answers"]:
        now = {a["atom"] for a in answered["answers"]}
        old = before.get(answered["query"], set())
        if now != old:
            diff.append(
                QueryDiff(query=answered["query"], added=sorted(now - old), removed=sorted(old - now))
            )
    return ReplayOut(
        decision_id=decision_id,
        identical=out["result_hash"] == record.result_hash and not diff,
        original_result_hash=record.result_hash,
        replay_result_hash=out["result_hash"],
        ruleset=ref.model_dump(),
        diff=diff,
    )


@router.post(
    "/v1/rulesets/{name}/impact",
    response_model=impact_jobs.ImpactJobOut,
    status_code=202,
    responses={
        404: {"description": "no such ruleset, version or tag"},
        429: {"description": "too many impact jobs of this tenant running"},
    },
)
async def impact(
    name: str,
    body: ImpactRequest,
    request: Request,
    services: ServicesDep,
    pool: PoolDep,
    key: Auditor,
) -> Any:
    """Start re-running the succeeded decisions of a time window against another
    version of the ruleset: 202 with the job's status URL. The finished job says
    how many decisions would change, and for each change the old and new answers
    and the rules whose use differs between their proofs."""
    candidate = await services.registry.resolve(key.tenant, f"{name}@{body.version}")
    if candidate is None or candidate.name != name:
        raise not_found(f"version {body.version!r} of ruleset {name!r}")
    source = await services.registry.source(candidate.hash)
    if source is None:
        raise not_found(f"the source of {name} version {candidate.version}")
    jobs: set[asyncio.Task[Any]] = request.app.state.jobs
    allowed = services.settings.impact_jobs_per_tenant
    if impact_jobs.running_for(jobs, key.tenant) >= allowed:
        raise Problem(
            429,
            "too-many-jobs",
            "Too many impact jobs",
            f"{allowed} impact job(s) of this tenant are running; wait for one to finish",
            headers={"Retry-After": "5"},
        )
    records, truncated = await _window(services, key.tenant, name, body)
    job = impact_jobs.new_job(name, {"version": candidate.version, "hash": candidate.hash}, len(records))
    store = impact_jobs.ImpactJobs(services.redis, services.settings.impact_job_ttl_s)
    await store.save(key.tenant, job)
    task = asyncio.create_task(
        impact_jobs.run(
            services, pool, store, key.tenant, job, source, records, truncated, _limits(services, {})
        ),
        name=f"impact:{key.tenant}:{job['job_id']}",
    )
    jobs.add(task)
    task.add_done_callback(jobs.discard)
    return JSONResponse(job, status_code=202, headers={"Location": job["status_url"]})


@router.get(
    "/v1/rulesets/{name}/impact/{job_id}",
    response_model=impact_jobs.ImpactJobOut,
    responses={404: {"description": "no impact job of this ruleset has this id (or it expired)"}},
)
async def impact_status(name: str, job_id: str, services: ServicesDep, key: Auditor) -> Any:
    """An impact job: ``running`` with its progress, then ``succeeded`` with the
    result or ``failed`` with the error. Kept for ``impact_job_ttl_s``."""
    store = impact_jobs.ImpactJobs(services.redis, services.settings.impact_job_ttl_s)
    job = await store.get(key.tenant, job_id)
    if job is None or job["ruleset"] != name:
        raise not_found(f"impact job {job_id!r} of ruleset {name!r}")
    return Response(json.dumps(job), media_type="application/json")


async def _window(
    services: Any, tenant: str, name: str, body: ImpactRequest
) -> tuple[list[DecisionRecord], bool]:
    """The succeeded decisions of ``name`` in the window, at most ``body.limit``."""
    records: list[DecisionRecord] = []
    token: str | None = None
    if _empty(body.start, body.end):
        return records, False
    while True:
        try:
            page = await asyncio.to_thread(
                services.audit.search_decisions,
                tenant,
                body.start,
                body.end,
                ruleset_name=name,
                status="succeeded",
                page_size=min(1000, body.limit + 1),
                page_token=token,
            )
        except ValueError as exc:
            raise Problem(422, "invalid-search", "Invalid search", str(exc)) from None
        records += page.items
        token = page.next_page_token
        if len(records) > body.limit:
            return records[: body.limit], True
        if token is None:
            return records, False
