"""Decisions: submit one or a batch, read one, follow one over SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from entail import reasoning
from entail.auth import ApiKey
from entail.bootstrap import Services
from entail.bus.port import DECISIONS as DECISIONS_TOPIC
from entail.bus.port import REASONING_JOBS
from entail.masking import mask_case
from entail.models import (
    DECISION_SCHEMA,
    JOB_SCHEMA,
    DecisionRecord,
    Job,
    RulesetRef,
    new_decision_id,
    request_hash,
    utcnow,
)
from entail.record_json import dump_record, dumps, record_dict
from entail.state.registry import RulesetVersion

from ..compute import PoolDep
from ..deps import Decide, ServicesDep
from ..facts_check import check_facts, ruleset_arities
from ..metrics import DECISIONS
from ..problems import Problem, not_found
from ..schemas import BatchOut, BatchRequest, DecisionOut, DecisionRequest

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

SSE_KEEPALIVE_S = 15.0


def public(record: DecisionRecord) -> dict[str, Any]:
    return record_dict(record, by_alias=False, exclude={"schema_"})


def json_response(content: Any, response: Response | None = None) -> Response:
    """``content`` encoded by the standard library, with the status and headers set
    on ``response``: records carry proofs deeper than the response model's
    (pydantic's) JSON encoder goes (entail.record_json)."""
    status = response.status_code if response is not None and response.status_code else 200
    headers = dict(response.headers) if response is not None else None
    return Response(dumps(content), status_code=status, headers=headers, media_type="application/json")


def _limits(services: Services, requested: dict[str, int]) -> dict[str, int]:
    s = services.settings
    cap = reasoning.Limits(
        derived_facts=s.limit_derived_facts,
        wall_time_ms=s.limit_wall_time_ms,
        input_facts=s.limit_input_facts,
        program_bytes=s.limit_program_bytes,
    )
    try:
        return reasoning.Limits.from_mapping(requested).capped_by(cap).to_json()
    except ValueError as exc:
        raise Problem(422, "invalid-limits", "Invalid limits", f"/limits: {exc}") from None


def _check_case(facts: dict[str, Any], query: list[str], where: str) -> None:
    try:
        reasoning.facts_from_json(facts)
    except reasoning.FactsError as exc:
        raise Problem(
            422, "invalid-facts", "Invalid facts", f"{where}/facts{exc.path}: {exc}", path=exc.path
        ) from None
    for i, q in enumerate(query):
        try:
            reasoning.parse_query(q)
        except reasoning.EntailError as exc:
            raise Problem(422, "invalid-query", "Invalid query", f"{where}/query/{i}: {exc}") from None


async def _resolve(services: Services, key: ApiKey, ref: str) -> RulesetVersion:
    version = await services.registry.resolve(key.tenant, ref)
    if version is None:
        raise not_found(f"ruleset {ref!r}")
    return version


async def _submit(
    services: Services,
    key: ApiKey,
    version: RulesetVersion,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
) -> DecisionRecord:
    """A cached decision, or a new pending one whose job is on the bus."""
    ruleset = RulesetRef(tenant=key.tenant, name=version.name, version=version.version, hash=version.hash)
    masked = version.masked_predicates
    if masked:
        # before anything is hashed, stored or queued: the clear values end here
        case = mask_case(facts, query, masked, services.settings.mask_secret)
        facts, query = case.facts, case.query
    digest = request_hash(facts, query, explain, limits)
    cached_id = await services.cache.get(key.tenant, ruleset.hash, digest)
    if cached_id is not None:
        original = await services.decisions.get(key.tenant, cached_id)
        if original is not None and original.status == "succeeded":
            DECISIONS.labels("cached").inc()
            return await _serve_cached(services, original, digest)
    record = DecisionRecord(
        decision_id=new_decision_id(),
        tenant=key.tenant,
        ruleset=ruleset,
        request_hash=digest,
        status="pending",
        facts=facts,
        query=query,
        explain=explain,
        masked_predicates=masked,
        submitted_at=utcnow(),
    )
    await services.decisions.create(record)
    job = Job(
        decision_id=record.decision_id,
        tenant=key.tenant,
        ruleset=ruleset,
        facts=facts,
        query=query,
        explain=explain,
        limits=limits,
        request_hash=digest,
        submitted_at=record.submitted_at,
        masked_predicates=masked,
    )
    await services.bus.publish(
        REASONING_JOBS,
        job.model_dump_json(by_alias=True).encode(),
        {"decision_id": record.decision_id, "tenant": key.tenant, "schema": JOB_SCHEMA},
    )
    DECISIONS.labels("submitted").inc()
    return record


async def _serve_cached(services: Services, original: DecisionRecord, digest: str) -> DecisionRecord:
    """A cache hit is a decision of its own: a new id, ``cached_from`` the decision
    whose result it repeats, stored and published on ``decisions`` (so it gets its
    own audit row) before it is answered. Its facts are the original's as stored
    (the request hash is the same, so the facts are too; masked values stay masked)."""
    now = utcnow()
    served = original.model_copy(
        update={
            "decision_id": new_decision_id(),
            "request_hash": digest,
            "cached": True,
            "cached_from": original.decision_id,
            "worker": None,
            "submitted_at": now,
            "started_at": now,
            "completed_at": now,
        }
    )
    await services.decisions.create(served)
    await services.bus.publish(
        DECISIONS_TOPIC,
        dump_record(served).encode(),
        {"decision_id": served.decision_id, "tenant": served.tenant, "schema": DECISION_SCHEMA},
    )
    return served


def _wait_s(services: Services, wait_ms: int) -> float:
    return min(wait_ms, services.settings.wait_ms_max) / 1000


def _respond(record: DecisionRecord, response: Response) -> Response:
    if record.done:
        DECISIONS.labels(record.status).inc()
    else:
        response.status_code = 202
        response.headers["Location"] = f"/v1/decisions/{record.decision_id}"
    return json_response(public(record), response)


@router.post(
    "",
    response_model=DecisionOut,
    responses={
        202: {"description": "accepted; not done within wait_ms", "model": DecisionOut},
        404: {"description": "no such ruleset, version or tag"},
    },
)
async def decide(
    body: DecisionRequest, response: Response, services: ServicesDep, pool: PoolDep, key: Decide
) -> Any:
    """Evaluate a ruleset over case facts. 200 with the answers when done within
    ``wait_ms``, else 202 with the decision id to poll or follow over SSE. The same
    request against the same ruleset version returns the original decision, marked cached."""
    _check_case(body.facts, body.query, "")
    limits = _limits(services, body.limits)
    ruleset = await _resolve(services, key, body.ruleset)
    check_facts(body.facts, await ruleset_arities(services, pool, ruleset, limits), limits, "")
    record = await _submit(services, key, ruleset, body.facts, body.query, body.explain, limits)
    if not record.done and body.wait_ms > 0:
        done = await services.decisions.wait_done(
            key.tenant, record.decision_id, _wait_s(services, body.wait_ms)
        )
        record = done or record
    return _respond(record, response)


@router.post(
    "/batch",
    response_model=BatchOut,
    responses={
        202: {"description": "accepted; some cases not done within wait_ms", "model": BatchOut},
        404: {"description": "no such ruleset, version or tag"},
        413: {"description": "more cases than ENTAIL_BATCH_MAX_CASES, or the body is too large"},
    },
)
async def decide_batch(
    body: BatchRequest, response: Response, services: ServicesDep, pool: PoolDep, key: Decide
) -> Any:
    """Many cases against one ruleset version, each its own decision."""
    limit = services.settings.batch_max_cases
    if len(body.cases) > limit:
        raise Problem(
            413, "batch-too-large", "Batch too large", f"{len(body.cases)} cases; at most {limit} per batch"
        )
    for i, case in enumerate(body.cases):
        _check_case(case.facts, case.query if case.query is not None else body.query, f"/cases/{i}")
    limits = _limits(services, body.limits)
    ruleset = await _resolve(services, key, body.ruleset)
    arities = await ruleset_arities(services, pool, ruleset, limits)
    for i, case in enumerate(body.cases):
        check_facts(case.facts, arities, limits, f"/cases/{i}")
    records = [
        await _submit(
            services,
            key,
            ruleset,
            case.facts,
            case.query if case.query is not None else body.query,
            body.explain,
            limits,
        )
        for case in body.cases
    ]
    if body.wait_ms > 0:
        wait_s = _wait_s(services, body.wait_ms)
        pending = [r for r in records if not r.done]
        finished = await asyncio.gather(
            *(services.decisions.wait_done(key.tenant, r.decision_id, wait_s) for r in pending)
        )
        by_id = {f.decision_id: f for f in finished if f is not None}
        records = [by_id.get(r.decision_id, r) for r in records]
    done = sum(r.done for r in records)
    if done < len(records):
        response.status_code = 202
    return json_response(
        {"done": done, "total": len(records), "decisions": [public(r) for r in records]}, response
    )


@router.get(
    "/{decision_id}",
    response_model=DecisionOut,
    responses={404: {"description": "no decision of the caller's tenant has this id"}},
)
async def get_decision(decision_id: str, services: ServicesDep, key: Decide) -> Any:
    """A decision of the caller's tenant (404 for any other tenant's)."""
    record = await services.decisions.get(key.tenant, decision_id)
    if record is None:
        raise not_found(f"decision {decision_id!r}")
    return json_response(public(record))


@router.get(
    "/{decision_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"example": 'event: status\ndata: {"status": "pending"}\n\n'}}
        },
        404: {"description": "no decision of the caller's tenant has this id"},
    },
)
async def decision_events(
    decision_id: str, request: Request, services: ServicesDep, key: Decide
) -> StreamingResponse:
    """Server-sent events: ``status`` with the current record, then ``done`` with
    the final record when it completes; comments keep the connection alive."""
    record = await services.decisions.get(key.tenant, decision_id)
    if record is None:
        raise not_found(f"decision {decision_id!r}")

    async def stream() -> AsyncIterator[str]:
        current = record
        yield _event("status", public(current))
        while not current.done:
            if await request.is_disconnected():
                return
            done = await services.decisions.wait_done(key.tenant, decision_id, SSE_KEEPALIVE_S)
            if done is None:
                yield ": keep-alive\n\n"
                continue
            current = done
        yield _event("done", public(current))

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
