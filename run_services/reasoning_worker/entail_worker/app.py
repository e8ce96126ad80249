"""The reasoning worker: a Pub/Sub push endpoint for topic ``reasoning-jobs``.

Per job: claim the decision id (a lease, renewed while evaluating, so a crashed
worker's claim expires and a redelivery can finish the job), evaluate with limits,
store the result, signal done, publish the decision record on ``decisions``.

Responses drive redelivery: 2xx acknowledges (done, failed-and-recorded, or a
duplicate); 400 a malformed envelope; 503 while another worker holds the claim
or on a transient failure (Redis unreachable, or no replica confirmed the stored
result), so the message comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from entail import reasoning
from entail.bootstrap import Services, open_services
from entail.bus.port import Message
from entail.bus.push import BadEnvelope, decode_push
from entail.ending import fail_dead_letter
from entail.masking import mask_case
from entail.messages import publish_decision
from entail.models import DecisionError, DecisionRecord, Job, utcnow
from entail.problems import MEDIA_TYPE, encode_problem, problem_body
from entail.settings import Settings
from entail.state.durability import DurabilityNotConfirmed
from entail.sweeper import sweep_once

from . import fairness
from .evaluation import EvaluationFailed, Evaluations, WorkerBusy
from .push_auth import CertsUnavailable, PushAuthenticator
from .record_caps import cap_record

log = logging.getLogger("entail.worker")

REGISTRY = CollectorRegistry()
JOBS = Counter("entail_worker_jobs_total", "Push deliveries by outcome", ["outcome"], registry=REGISTRY)
EVAL_SECONDS = Histogram(
    "entail_worker_evaluation_seconds",
    "Engine time per decision",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30),
    registry=REGISTRY,
)


def _reply(
    status: int, outcome: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    JOBS.labels(outcome).inc()
    if status >= 400:  # Pub/Sub only reads the status; a person reading the log gets a problem
        problem = problem_body(status, outcome, detail, title=outcome, outcome=outcome, **extra)
        return Response(encode_problem(problem), status_code=status, media_type=MEDIA_TYPE, headers=headers)
    body: dict[str, Any] = {"outcome": outcome, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()
    evaluations = Evaluations(settings)  # decisions run in a pool of processes (evaluation.py)
    authenticator = PushAuthenticator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        evaluations.start_in_background()
        try:
            async with (
                open_services(settings, services) as app.state.services,
                fairness.drainer(app.state.services, settings),
            ):
                yield
        finally:
            evaluations.close()

    app = FastAPI(title="Entail reasoning worker", version="1.0.0", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        try:
            await request.app.state.services.redis.ping()
        except Exception as exc:
            # the exception names Redis's host and port: logged, never answered
            log.warning("readyz: Redis is unreachable: %s", exc)
            return JSONResponse({"status": "unavailable", "detail": "Redis is unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(REGISTRY).decode(), media_type=CONTENT_TYPE_LATEST)

    async def authenticate(request: Request) -> Response | None:
        """None when the caller may push (or sweep), else the refusal to answer."""
        try:
            denied = await authenticator.check(request.headers)
        except CertsUnavailable as exc:
            log.warning("push not verified, it will be redelivered: %s", exc)
            return _reply(503, "transient-failure", str(exc))
        if denied is not None:
            outcome = "unauthorized" if denied.status == 401 else "forbidden"
            headers = {"WWW-Authenticate": "Bearer"} if denied.status == 401 else None
            return _reply(denied.status, outcome, denied.reason, headers=headers)
        return None

    async def delivered(
        request: Request, handle: Callable[[Services, Message], Awaitable[Response]]
    ) -> Response:
        """One push: authenticated, decoded, handled; a Redis outage is a 503, so
        Pub/Sub (or the relay) delivers the message again."""
        if (refused := await authenticate(request)) is not None:
            return refused
        try:
            message = decode_push(await request.body())
        except BadEnvelope as exc:
            return _reply(400, "malformed-envelope", str(exc))
        try:
            return await handle(request.app.state.services, message)
        except (RedisConnectionError, RedisTimeoutError, DurabilityNotConfirmed, OSError) as exc:
            log.warning("transient failure, message %s will be redelivered: %s", message.id, exc)
            return _reply(503, "transient-failure", "state store unavailable (logged)")

    @app.post("/push/reasoning-jobs")
    async def push(request: Request) -> Response:
        return await delivered(
            request, lambda svc, m: _handle(svc, settings, evaluations, m.data, m.attributes)
        )

    @app.post("/push/dead-letters")
    async def push_dead_letter(request: Request) -> Response:
        """The cloud's dead-letter path: Pub/Sub pushes each job it gave up on (topic
        ``reasoning-jobs-dead-letter``); its decision ends ``failed`` with code
        ``delivery-failed``. A no-op for a decision that ended or never existed."""
        return await delivered(request, _handle_dead_letter)

    @app.post("/sweep")
    async def sweep(request: Request) -> Response:
        """Fail the decisions open past ``ENTAIL_DECISION_DEADLINE_S`` (Cloud Scheduler
        calls this every minute in the cloud, with the push service account's token)."""
        if (refused := await authenticate(request)) is not None:
            return refused
        svc: Services = request.app.state.services
        try:
            failed = await sweep_once(svc.decisions, svc.bus, settings)
        except (RedisConnectionError, RedisTimeoutError, DurabilityNotConfirmed, OSError) as exc:
            log.warning("sweep failed, the next one retries: %s", exc)
            return _reply(503, "transient-failure", "state store unavailable (logged)")
        return _reply(200, "swept", f"{failed} overdue decision(s) failed", failed=failed)

    return app


async def _handle_dead_letter(svc: Services, message: Message) -> Response:
    attempts = int(message.attributes.get("CloudPubSubDeadLetterSourceDeliveryCount") or 0)
    source = message.attributes.get("CloudPubSubDeadLetterSourceSubscription") or "reasoning-jobs"
    failed = await fail_dead_letter(svc.decisions, svc.bus, message, attempts, source, None)
    if failed is None:
        return _reply(200, "dead-letter-ignored", f"dead letter {message.id}: no open decision to fail")
    return _reply(
        200, "delivery-failed", f"decision {failed.decision_id} failed", decision_id=failed.decision_id
    )


async def _handle(
    svc: Services, settings: Settings, evaluations: Evaluations, data: bytes, attributes: dict[str, str]
) -> Response:
    try:
        job = Job.model_validate_json(data)
    except ValidationError as exc:
        return await _poison(svc, attributes, exc)

    existing = await svc.decisions.get(job.tenant, job.decision_id)
    if existing is None:
        # only the backend creates decisions: a job for an id it never created (or
        # another tenant's) is not evaluated, whoever managed to publish it
        log.warning("job for unknown decision %s of tenant %s dropped", job.decision_id, job.tenant)
        return _reply(200, "unknown-decision", f"decision {job.decision_id} does not exist; job dropped")
    if existing.done:
        # a redelivery after the result was stored: make sure the audit trail has it
        await _publish_record(svc, existing)
        return _reply(200, "duplicate", f"decision {job.decision_id} is already {existing.status}")
    if existing.ruleset.hash != job.ruleset.hash or existing.request_hash != job.request_hash:
        log.warning("job for decision %s does not match its record; dropped", job.decision_id)
        return _reply(
            200, "mismatched-job", f"the job is not the one decision {job.decision_id} was created for"
        )

    if not await fairness.take_turn(svc, settings, job, data, attributes):
        # over its tenant's running quota: parked, republished when a slot frees
        return _reply(200, "deferred", f"decision {job.decision_id} waits for a slot of its tenant")

    if not await svc.decisions.claim(job.decision_id, settings.worker_id, settings.claim_lease_ms):
        # try again later: the holder finishes it, or its lease expires (it crashed)
        return _reply(503, "claimed", f"decision {job.decision_id} is being evaluated by another worker")

    renew = asyncio.create_task(_keep_claim(svc, job.decision_id, settings))
    turn = fairness.Turn(svc, settings, job)
    try:
        started = utcnow()
        if not await svc.decisions.mark_running(job.decision_id, settings.worker_id, started):
            # it ended since we looked (the sweeper, a dead letter, another worker)
            ended = await svc.decisions.get(job.tenant, job.decision_id)
            status = ended.status if ended is not None else "gone"
            return _reply(200, "duplicate", f"decision {job.decision_id} is already {status}")
        record = await _evaluate(svc, settings, evaluations, job, started)
        record = await asyncio.to_thread(cap_record, record, settings)
        if record.status == "succeeded":
            # cached before the done signal: a client told "done" that repeats
            # the request at once must hit the cache. Safe if the store below
            # loses a race: the backend serves only a cached decision that succeeded
            await svc.cache.put(
                job.tenant, job.ruleset.hash, job.request_hash, job.decision_id, settings.cache_ttl_s
            )
        stored = await svc.decisions.complete(record)
        final = record if stored else (await svc.decisions.get(job.tenant, job.decision_id) or record)
        await _publish_record(svc, final)
    finally:
        renew.cancel()
        with suppress(asyncio.CancelledError):
            await renew
        await turn.end()
    return _reply(200, final.status, f"decision {job.decision_id} {final.status}")


async def _keep_claim(svc: Services, decision_id: str, settings: Settings) -> None:
    """Renew the claim lease at a third of its length while the job runs."""
    while True:
        await asyncio.sleep(settings.claim_lease_ms / 3000)
        await svc.decisions.claim_renew(decision_id, settings.worker_id, settings.claim_lease_ms)


async def _evaluate(
    svc: Services, settings: Settings, evaluations: Evaluations, job: Job, started: str
) -> DecisionRecord:
    if job.masked_predicates:
        # the backend masked the case before queueing it; masking is idempotent, so
        # this only matters for a job that arrived with clear values: they are
        # evaluated, answered and stored masked all the same
        case = mask_case(job.facts, job.query, job.masked_predicates, settings.mask_secret)
        job = job.model_copy(update={"facts": case.facts, "query": case.query})
    base = DecisionRecord(
        decision_id=job.decision_id,
        tenant=job.tenant,
        ruleset=job.ruleset,
        request_hash=job.request_hash,
        status="running",
        facts=job.facts,
        masked_predicates=job.masked_predicates,
        query=job.query,
        explain=job.explain,
        worker=settings.worker_id,
        submitted_at=job.submitted_at,
        started_at=started,
    )
    try:
        result, seconds = await evaluations.evaluate(svc, job)
        EVAL_SECONDS.observe(seconds)
    except EvaluationFailed as exc:
        failed = {"status": "failed", "error": exc.error, "stats": exc.stats, "completed_at": utcnow()}
        return base.model_copy(update=failed)
    except reasoning.EntailError as exc:
        return base.model_copy(
            update={"status": "failed", "error": DecisionError(**_error_json(exc)), "completed_at": utcnow()}
        )
    except ValueError as exc:  # limits that do not validate
        error = DecisionError(code="invalid-job", message=str(exc))
        return base.model_copy(update={"status": "failed", "error": error, "completed_at": utcnow()})
    except (RedisConnectionError, RedisTimeoutError, DurabilityNotConfirmed, WorkerBusy):
        raise
    except Exception as exc:  # an engine bug must not wedge the decision or the worker
        log.exception("internal error evaluating %s", job.decision_id)
        error = DecisionError(code="internal-error", message=f"{type(exc).__name__}: {exc}")
        return base.model_copy(update={"status": "failed", "error": error, "completed_at": utcnow()})
    answers, result_hash, stats = result
    return base.model_copy(
        update={
            "status": "succeeded",
            "answers": answers,
            "result_hash": result_hash,
            "stats": stats,
            "completed_at": utcnow(),
        }
    )


def _error_json(exc: reasoning.EntailError) -> dict[str, Any]:
    data = exc.to_json() if hasattr(exc, "to_json") else {"code": exc.code, "message": str(exc)}
    return {
        "code": str(data.get("code", "error")),
        "message": str(data.get("message", exc)),
        "diagnostics": list(data.get("diagnostics", [])),
    }


async def _poison(svc: Services, attributes: dict[str, str], exc: ValidationError) -> Response:
    """A job that can never be evaluated: record a failed decision if we know
    whose it is, and acknowledge so it is not redelivered forever."""
    decision_id, tenant = attributes.get("decision_id"), attributes.get("tenant")
    detail = f"invalid job: {exc.error_count()} error(s): {exc.errors()[0]['msg']}"
    if decision_id and tenant:
        existing = await svc.decisions.get(tenant, decision_id)
        if existing is not None and not existing.done:
            failed = existing.model_copy(
                update={
                    "status": "failed",
                    "error": DecisionError(code="invalid-job", message=detail),
                    "completed_at": utcnow(),
                }
            )
            if await svc.decisions.complete(failed):
                await _publish_record(svc, failed)
    log.error("poison message acknowledged (decision %s): %s", decision_id, detail)
    return _reply(200, "poison", detail, decision_id=decision_id)


async def _publish_record(svc: Services, record: DecisionRecord) -> None:
    await publish_decision(svc.bus, record)
