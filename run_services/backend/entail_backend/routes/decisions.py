"""Decisions: submit one or a batch, read one, follow one over SSE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from entail import decisions, logs, reasoning
from entail.auth import ApiKey
from entail.bootstrap import Services
from entail.compute import ComputePool
from entail.dataset_binding import DatasetBindingError
from entail.models import (
    DecisionRecord,
    RulesetVersion,
    new_decision_id,
)
from entail.reasoning.declarations import Declarations
from entail.reasoning.facts import FactSet
from entail.reasoning.why_not import parse_ground_atom
from entail.record_json import dumps, record_dict
from entail.record_text import head_status, is_final, public_text
from entail.state.quotas import TenantQueueFull
from entail.state.ratelimit import key_bucket
from entail.state.registry import name_ref, parse_version
from entail.state.waiters import Slot, TooManyWaiters

from .. import idempotent
from ..compute import PoolDep
from ..deps import (
    Decide,
    DecideNamingRuleset,
    ServicesDep,
    apply_token,
    recent_version,
    resolved,
    resolved_ruleset,
)
from ..facts_check import check_facts, known_checks, ruleset_arities, ruleset_declarations
from ..metrics import DECISIONS
from ..problems import Problem, not_found
from ..query_check import check_queries, query_signature
from ..schemas import BatchOut, BatchRequest, DecisionOut, DecisionRequest

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

SSE_KEEPALIVE_S = 15.0
QUEUE_FULL_RETRY_AFTER_S = 5
WAITERS_FULL_RETRY_AFTER_S = 2


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
    try:
        return decisions.service_limits(services.settings, requested)
    except decisions.InvalidLimits as exc:
        raise Problem(422, "invalid-limits", "Invalid limits", f"/limits: {exc}") from None


def _check_case(facts: dict[str, Any], query: list[str], where: str) -> FactSet:
    """The case's shape and values, and its queries' syntax (nothing about the
    ruleset yet); returns the facts decoded, for :func:`check_facts`."""
    try:
        decoded = reasoning.facts_from_json(facts)
    except reasoning.FactsError as exc:
        raise Problem(
            422, "invalid-facts", "Invalid facts", f"{where}/facts{exc.path}: {exc}", path=exc.path
        ) from None
    for i, q in enumerate(query):
        try:
            query_signature(q)
        except reasoning.EntailError as exc:
            raise Problem(422, "invalid-query", "Invalid query", f"{where}/query/{i}: {exc}") from None
    return decoded


def _check_why_not(atoms: list[str], version: RulesetVersion) -> None:
    """422 invalid-why-not for explain_absent atoms that cannot be explained: not a
    ground atom, or a ruleset whose case facts are masked (the atoms would be
    compared with HMACs, and their explanations would show values in clear)."""
    if atoms and version.masked_predicates:
        raise Problem(
            422,
            "invalid-why-not",
            "Invalid why-not",
            "/explain_absent: not available for a ruleset with masked predicates "
            f"({', '.join(version.masked_predicates)})",
        )
    for i, atom in enumerate(atoms):
        try:
            parse_ground_atom(atom)
        except reasoning.EntailError as exc:
            raise Problem(422, "invalid-why-not", "Invalid why-not", f"/explain_absent/{i}: {exc}") from None


async def _resolve(services: Services, key: ApiKey, ref: str, request: Request) -> RulesetVersion:
    # read with the rate-limit token when the body names it by name (deps.require)
    known, version = resolved_ruleset(request, key.tenant, ref)
    if not known:
        version = await services.registry.resolve(key.tenant, ref)
    if version is None:
        raise not_found(f"ruleset {ref!r}")
    logs.bind(ruleset=version.name, version=version.version)
    return version


async def _submit(
    services: Services,
    key: ApiKey,
    version: RulesetVersion,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    *,
    admitted_id: str | None = None,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
    decision_id: str | None = None,
) -> decisions.Submission:
    """entail.decisions.submit, with the 429 of a full open quota and the metric."""
    try:
        submission = await decisions.submit(
            services,
            key.tenant,
            version,
            facts,
            query,
            explain,
            limits,
            admitted_id=admitted_id,
            locale=locale,
            explain_absent=explain_absent,
            decision_id=decision_id,
        )
    except TenantQueueFull as exc:
        raise _queue_full(exc) from None
    except DatasetBindingError as exc:
        raise Problem(exc.status, exc.code, "Dataset binding", str(exc), binding=exc.binding) from None
    DECISIONS.labels(submission.outcome).inc()
    return submission


def _queue_full(exc: TenantQueueFull) -> Problem:
    return Problem(
        429,
        "tenant-queue-full",
        "Too many open decisions",
        f"{exc}; wait for some to finish (ENTAIL_TENANT_MAX_OPEN)",
        headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
        limit=exc.limit,
        free=max(exc.free, 0),
    )


async def _admit(services: Services, tenant: str, decision_ids: list[str]) -> None:
    try:
        await decisions.admit(services, tenant, decision_ids)
    except TenantQueueFull as exc:
        raise _queue_full(exc) from None


def _waiters_full(exc: TooManyWaiters) -> Problem:
    return Problem(
        503,
        "too-many-waiters",
        "Too many waiting clients",
        f"{exc}; poll GET /v1/decisions/{{id}} or retry later (ENTAIL_WAITERS_MAX)",
        headers={"Retry-After": str(WAITERS_FULL_RETRY_AFTER_S)},
    )


def _wait_slot(services: Services) -> Slot:
    try:
        return services.waiters.acquire()
    except TooManyWaiters as exc:
        raise _waiters_full(exc) from None


def _wait_s(services: Services, wait_ms: int) -> float:
    return min(wait_ms, services.settings.wait_ms_max) / 1000


def _respond(submission: decisions.Submission, response: Response) -> Response:
    """The record as stored (its text, not encoded again): 200 when done, else 202."""
    record = submission.record
    if record.done:
        DECISIONS.labels(record.status).inc()
        return _text_response(public_text(submission.text.encode()), 200, response)
    response.headers["Location"] = f"/v1/decisions/{record.decision_id}"
    return _text_response(public_text(submission.text.encode()), 202, response)


@router.post(
    "",
    response_model=DecisionOut,
    responses={
        202: {"description": "accepted; not done within wait_ms", "model": DecisionOut},
        404: {"description": "no such ruleset, version or tag"},
        **idempotent.RESPONSES,
    },
)
async def decide(
    body: DecisionRequest,
    request: Request,
    response: Response,
    services: ServicesDep,
    pool: PoolDep,
    key: DecideNamingRuleset,
    idempotency_key: idempotent.IdempotencyKey = None,
) -> Any:
    """Evaluate a ruleset over case facts. 200 with the answers when done within
    ``wait_ms``, else 202 with the decision id to poll or follow over SSE. The same
    request against the same ruleset version returns the original decision, marked cached."""
    return await idempotent.once(
        services,
        key.tenant,
        idempotency_key,
        "POST /v1/decisions",
        lambda: body.model_dump(mode="json"),
        lambda: _decide(body, request, response, services, pool, key),
    )


def _check_against(
    body: DecisionRequest,
    version: RulesetVersion,
    arities: dict[str, int] | None,
    declarations: Declarations | None,
    limits: dict[str, int],
    decoded: FactSet,
) -> None:
    """The checks of a case against its ruleset version (facts, queries, why-not),
    the same for a repeated hit and the usual way: any 4xx is the route's."""
    check_facts(body.facts, arities, limits, "", declarations, decoded)
    check_queries(body.query, arities, body.facts, "")
    _check_why_not(body.explain_absent, version)


async def repeat_hit(
    body: DecisionRequest, request: Request, response: Response, services: Services, key: ApiKey
) -> tuple[Response | None, bool, FactSet | None]:
    """A cache hit this process served a moment ago, answered in one round trip
    (:func:`entail.decisions.repeat_hit`): (the answer, whether the token was taken,
    the facts as :func:`_check_case` decoded them when it ran).

    Tried only for a request this process remembers the answer of
    (:func:`entail.decisions.remembered_hit`, no read), against the version the
    ruleset's name named when this process last read it, and only when everything
    :func:`_decide` checks before it submits can be checked now without a read,
    and passes: a request that would get any 4xx or 503 from those checks goes the
    usual way (the token first, so a client past its limit gets its 429 whatever
    it sends). The script takes the token and serves the hit only while the name
    still names that version; when it names another, the token is taken and the
    route goes on with that version (as after :func:`~..deps.take_token`)."""
    ref = body.ruleset
    raw = recent_version(key.tenant, ref)
    named = name_ref(key.tenant, ref) if raw is not None else None
    if raw is None or named is None:
        return None, False, None
    version = parse_version(raw)
    try:
        decoded = _check_case(body.facts, body.query, "")
        limits = _limits(services, body.limits)
    except Problem:
        return None, False, None
    candidate = decisions.remembered_hit(
        services,
        key.tenant,
        version,
        body.facts,
        body.query,
        body.explain,
        limits,
        locale=body.locale,
        explain_absent=body.explain_absent,
    )
    known = known_checks(version) if candidate is not None else None
    if candidate is None or known is None:
        return None, False, decoded
    arities, declarations = known
    try:
        _check_against(body, version, arities, declarations, limits, decoded)
        slot = _wait_slot(services) if body.wait_ms > 0 else None
    except Problem:
        return None, False, decoded
    try:
        found = await decisions.repeat_hit(services, key_bucket(key.tenant, key.id), named, raw, candidate)
    finally:
        if slot is not None:
            slot.release()
    if found is None:
        return None, False, decoded
    resolved(request, key.tenant, ref, found.version_entry)
    apply_token(request, services, key, found.rate)  # the 429 of a refused token
    submission = found.submission
    if submission is None:  # the name names another version now: the usual way, token taken
        return None, True, decoded
    logs.bind(ruleset=version.name, version=version.version, decision_id=submission.record.decision_id)
    DECISIONS.labels(submission.outcome).inc()
    return _respond(submission, response), True, decoded


async def _decide(
    body: DecisionRequest,
    request: Request,
    response: Response,
    services: Services,
    pool: ComputePool,
    key: ApiKey,
    decoded: FactSet | None = None,
) -> Response:
    """``decoded``: the facts as :func:`_check_case` decoded them already (with the
    queries checked), when :func:`repeat_hit` ran it."""
    if decoded is None:
        decoded = _check_case(body.facts, body.query, "")
    limits = _limits(services, body.limits)
    ruleset = await _resolve(services, key, body.ruleset, request)
    arities = await ruleset_arities(services, pool, ruleset, limits)
    declarations = await ruleset_declarations(services, ruleset)
    _check_against(body, ruleset, arities, declarations, limits, decoded)
    # a waiting slot is taken before anything is created: past the bound the
    # request is refused whole (503), never accepted and then cut off
    slot = _wait_slot(services) if body.wait_ms > 0 else None
    decision_id = new_decision_id()
    # registered before the job is published: the wait need not read the pending record
    watch = services.waiters.watch(decision_id) if slot is not None else None
    try:
        submission = await _submit(
            services,
            key,
            ruleset,
            body.facts,
            body.query,
            body.explain,
            limits,
            locale=body.locale,
            explain_absent=body.explain_absent,
            decision_id=decision_id,
        )
        record = submission.record
        logs.bind(decision_id=record.decision_id)
        final = None
        if not record.done and watch is not None:
            final = await services.waiters.wait_final(
                key.tenant, record.decision_id, _wait_s(services, body.wait_ms), watch=watch
            )
    finally:
        if watch is not None:
            services.waiters.forget(watch)
        if slot is not None:
            slot.release()
    if final is not None:
        DECISIONS.labels(head_status(final)).inc()
        return _text_response(public_text(final), 200, response)
    return _respond(submission, response)


@router.post(
    "/batch",
    response_model=BatchOut,
    responses={
        202: {"description": "accepted; some cases not done within wait_ms", "model": BatchOut},
        404: {"description": "no such ruleset, version or tag"},
        413: {"description": "more cases than ENTAIL_BATCH_MAX_CASES, or the body is too large"},
        **idempotent.RESPONSES,
    },
)
async def decide_batch(
    body: BatchRequest,
    request: Request,
    response: Response,
    services: ServicesDep,
    pool: PoolDep,
    key: DecideNamingRuleset,
    idempotency_key: idempotent.IdempotencyKey = None,
) -> Any:
    """Many cases against one ruleset version, each its own decision."""
    return await idempotent.once(
        services,
        key.tenant,
        idempotency_key,
        "POST /v1/decisions/batch",
        lambda: body.model_dump(mode="json"),
        lambda: _decide_batch(body, request, response, services, pool, key),
    )


async def _decide_batch(
    body: BatchRequest,
    request: Request,
    response: Response,
    services: Services,
    pool: ComputePool,
    key: ApiKey,
) -> Response:
    limit = services.settings.batch_max_cases
    if len(body.cases) > limit:
        raise Problem(
            413, "batch-too-large", "Batch too large", f"{len(body.cases)} cases; at most {limit} per batch"
        )
    # a batch is checked and submitted case by case, giving the event loop back
    # between cases: one tenant's big batch must not hold up other requests
    decoded = []
    for i, case in enumerate(body.cases):
        query = case.query if case.query is not None else body.query
        decoded.append(_check_case(case.facts, query, f"/cases/{i}"))
        await asyncio.sleep(0)
    limits = _limits(services, body.limits)
    ruleset = await _resolve(services, key, body.ruleset, request)
    arities = await ruleset_arities(services, pool, ruleset, limits)
    declarations = await ruleset_declarations(services, ruleset)
    for i, case in enumerate(body.cases):
        check_facts(case.facts, arities, limits, f"/cases/{i}", declarations, decoded[i])
        query = case.query if case.query is not None else body.query
        check_queries(query, arities, case.facts, f"/cases/{i}")
        await asyncio.sleep(0)
    slot = _wait_slot(services) if body.wait_ms > 0 else None  # one client, one slot
    try:
        # the per-tenant batch cap: the whole batch fits into the tenant's open
        # quota or none of it is accepted (429)
        ids = [new_decision_id() for _ in body.cases]
        await _admit(services, key.tenant, ids)
        submissions = []
        for i, (case, decision_id) in enumerate(zip(body.cases, ids, strict=True)):
            try:
                submissions.append(
                    await _submit(
                        services,
                        key,
                        ruleset,
                        case.facts,
                        case.query if case.query is not None else body.query,
                        body.explain,
                        limits,
                        admitted_id=decision_id,
                        locale=body.locale,
                    )
                )
            except BaseException:
                await decisions.withdraw(services, key.tenant, ids[i + 1 :])
                raise
        records = [sub.record for sub in submissions]
        finals: dict[str, bytes] = {}
        if slot is not None:
            wait_s = _wait_s(services, body.wait_ms)
            pending = [r.decision_id for r in records if not r.done]
            texts = await asyncio.gather(
                *(services.waiters.wait_final(key.tenant, decision_id, wait_s) for decision_id in pending)
            )
            finals = {d: t for d, t in zip(pending, texts, strict=True) if t is not None}
    finally:
        if slot is not None:
            slot.release()
    # finished records are answered as stored, never parsed (entail.record_text)
    parts = [
        public_text(finals[sub.record.decision_id] if sub.record.decision_id in finals else sub.text.encode())
        for sub in submissions
    ]
    done = sum(r.done or r.decision_id in finals for r in records)
    status = 202 if done < len(records) else 200
    body_text = b'{"done":%d,"total":%d,"decisions":[%b]}' % (done, len(records), b",".join(parts))
    return _text_response(body_text, status, response)


@router.get(
    "/{decision_id}",
    response_model=DecisionOut,
    responses={404: {"description": "no decision of the caller's tenant has this id"}},
)
async def get_decision(decision_id: str, services: ServicesDep, key: Decide) -> Any:
    """A decision of the caller's tenant (404 for any other tenant's)."""
    text = await services.decisions.get_text(key.tenant, decision_id)
    if text is None:
        raise not_found(f"decision {decision_id!r}")
    return _text_response(public_text(text))


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
    text = await services.decisions.get_text(key.tenant, decision_id)
    if text is None:
        raise not_found(f"decision {decision_id!r}")
    slot = None if is_final(text) else _wait_slot(services)

    async def stream() -> AsyncIterator[str]:
        # records go out as stored, never parsed (entail.record_text)
        try:
            current = text
            yield _event_text("status", current)
            while not is_final(current):
                if await request.is_disconnected():
                    return
                final = await services.waiters.wait_final(key.tenant, decision_id, SSE_KEEPALIVE_S)
                if final is None:
                    yield ": keep-alive\n\n"
                    continue
                current = final
            yield _event_text("done", current)
        finally:
            if slot is not None:
                slot.release()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event_text(name: str, record_text: bytes) -> str:
    # compact JSON has no raw newline: one data line
    return f"event: {name}\ndata: {public_text(record_text).decode()}\n\n"


def _text_response(body: bytes, status: int = 200, response: Response | None = None) -> Response:
    """Stored JSON as the answer, with the headers set on ``response`` (rate limits)."""
    headers = dict(response.headers) if response is not None else None
    return Response(body, status_code=status, headers=headers, media_type="application/json")
