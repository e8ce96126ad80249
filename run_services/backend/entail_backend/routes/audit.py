"""The audit trail: search decisions, read one with its proof, replay one, and the
impact of a new version (a background job). Replay and impact are
:mod:`entail.replay` and :mod:`entail.impact`, evaluating in the compute pool
under the service's limits; these routes parse, call and map errors."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from entail import impact as impacts
from entail import replay as replays
from entail.compute import PoolError
from entail.dataset_binding import DatasetBindingError
from entail.models import DecisionRecord
from entail.services import Services

from .. import compute, impact_jobs
from ..compute import PoolDep
from ..deps import Auditor, ServicesDep
from ..problems import Problem, not_found
from ..schemas import AuditPage, DateTimeTz, DecisionOut, ImpactRequest, QueryDiff, ReplayOut
from .decisions import json_response, public

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
    if replays.empty_window(start, end):
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


async def _record(services: Services, tenant: str, decision_id: str) -> DecisionRecord:
    try:
        return await replays.audited(services, tenant, decision_id)
    except replays.NotAudited:
        raise not_found(f"audited decision {decision_id!r}") from None


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
        result = await replays.replay(services, pool, key.tenant, decision_id)
    except replays.NotAudited:
        raise not_found(f"audited decision {decision_id!r}") from None
    except replays.NotReplayable as exc:
        retry = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
        raise Problem(409, "not-replayable", "Not replayable", exc.detail, headers=retry) from None
    except replays.ReplayFailed as exc:
        raise compute.engine_problem(exc.error) from None
    except PoolError as exc:
        raise compute.pool_problem(exc) from None
    return ReplayOut(
        decision_id=result.decision_id,
        identical=result.identical,
        original_result_hash=result.original_result_hash,
        replay_result_hash=result.replay_result_hash,
        ruleset=result.ruleset.model_dump(),
        diff=[QueryDiff(query=d.query, added=d.added, removed=d.removed) for d in result.diff],
    )


@router.post(
    "/v1/rulesets/{name}/impact",
    response_model=impact_jobs.ImpactJobOut,
    status_code=202,
    responses={
        404: {"description": "no such ruleset, version or tag, or no such dataset version (datasets)"},
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
    try:
        candidate = await replays.impact_candidate(services, key.tenant, name, body.version)
        impacts.ensure_room(services, request.app.state.jobs, key.tenant)  # before the search
        records, truncated = await replays.impact_window(
            services, key.tenant, name, body.start, body.end, body.limit
        )
        job = await impacts.start(
            services, pool, request.app.state.jobs, key.tenant, candidate, records, truncated, body.datasets
        )
    except replays.UnknownCandidate as exc:
        raise not_found(str(exc)) from None
    except DatasetBindingError as exc:
        # an override naming no version of the tenant's datasets: not found, as an
        # unknown candidate version is
        raise Problem(
            404, exc.code, "Dataset binding", f"/datasets/{exc.binding}: {exc}", binding=exc.binding
        ) from None
    except replays.InvalidWindow as exc:
        raise Problem(422, "invalid-search", "Invalid search", str(exc)) from None
    except impacts.TooManyJobs as exc:
        raise Problem(
            429, "too-many-jobs", "Too many impact jobs", str(exc), headers={"Retry-After": "5"}
        ) from None
    return JSONResponse(job, status_code=202, headers={"Location": job["status_url"]})


@router.get(
    "/v1/rulesets/{name}/impact/{job_id}",
    response_model=impact_jobs.ImpactJobOut,
    responses={404: {"description": "no impact job of this ruleset has this id (or it expired)"}},
)
async def impact_status(name: str, job_id: str, services: ServicesDep, key: Auditor) -> Any:
    """An impact job: ``running`` with its progress, then ``succeeded`` with the
    result or ``failed`` with the error. Kept for ``impact_job_ttl_s``."""
    job = await impacts.status(services, key.tenant, name, job_id)
    if job is None:
        raise not_found(f"impact job {job_id!r} of ruleset {name!r}")
    return Response(json.dumps(job), media_type="application/json")
