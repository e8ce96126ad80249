"""Handling one reasoning job: the application service behind the worker's push endpoints.

Per job message (:func:`handle_job`): validate it (a job that can never be
evaluated is *poison*: its decision fails ``invalid-job``), check it against the
decision the backend stored, take one of the tenant's running slots
(:mod:`entail.fairness`, or park the job), claim the decision id (a lease,
renewed while evaluating, so a crashed worker's claim expires and a redelivery
can finish the job), evaluate with limits in the caller's :class:`Evaluator`
(the worker's pool of processes), cap the record (:mod:`entail.record_caps`),
store the result once (the done signal), publish the final record on
``decisions``.

:func:`handle_dead_letter` ends the decision of a job the bus gave up on.

Nothing here knows HTTP: each returns a :class:`JobOutcome`, and the worker maps
``redeliver`` to 503 (the message comes back) and the rest to 200 (acknowledged).
A Redis outage, an unconfirmed write or a full pool is such a redelivery
(outcome ``transient-failure``), never an exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import fairness, logs, reasoning, tracing
from .bus.port import DECISIONS, REASONING_JOBS, InStoreBus, Message
from .ending import fail_dead_letter
from .masking import mask_case
from .messages import decision_message, publish_decision
from .models import DecisionError, DecisionRecord, Job, utcnow
from .record_caps import cap_record
from .record_json import dump_record
from .services import Services
from .settings import Settings
from .state.decisions import parse_record
from .state.durability import DurabilityNotConfirmed
from .state.job_start import Start, Stored, start_job
from .state.quotas import ParkedJob

log = logging.getLogger("entail.jobs")

TRANSIENT: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    DurabilityNotConfirmed,
    OSError,
)
"""Failures that pass: the message is delivered again (:class:`EvaluatorBusy` is an OSError)."""


@dataclass(frozen=True)
class JobOutcome:
    """What became of one delivery. ``outcome`` names it (``succeeded``, ``failed``,
    ``duplicate``, ``deferred``, ``claimed``, ``poison``, ...); ``redeliver`` asks
    the bus to deliver the message again; ``extra`` goes into the worker's answer."""

    outcome: str
    detail: str
    redeliver: bool = False
    evaluation_s: float | None = None  # engine time, when this delivery evaluated
    extra: dict[str, Any] = field(default_factory=dict)


class EvaluationFailed(Exception):
    """The decision fails with this error (the engine's, or a limit the evaluator enforced)."""

    def __init__(self, error: DecisionError, stats: dict[str, Any] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.stats = stats or {}


class EvaluatorBusy(OSError):
    """No evaluation can start now (every process busy, the queue full): the job
    comes back later (an OSError, so it is :data:`TRANSIENT`)."""


Evaluated = tuple[list[dict[str, Any]], str, dict[str, Any], list[dict[str, Any]] | None]
"""Answers, result hash, stats and why-nots (explain_absent) of a decision that succeeded."""


class Evaluator(Protocol):
    """Where decisions are evaluated. An evaluator whose ``caps_checked`` attribute is
    True applies the record caps (:mod:`entail.record_caps`) to every result itself
    (the worker's pool checks them in the evaluation process): the job does not
    measure the answers a second time."""

    async def evaluate(self, svc: Services, job: Job) -> tuple[Evaluated, float]:
        """The decision's result and the seconds it took; :class:`EvaluationFailed`
        for a decision that fails, :class:`EvaluatorBusy` to retry later."""
        ...


async def handle_job(svc: Services, settings: Settings, evaluator: Evaluator, message: Message) -> JobOutcome:
    """Handle one delivery of a job message, exactly once in effect: a redelivery
    of a finished job republishes its record and evaluates nothing.

    Traced as ``job.handle``, a child of the span that delivered or published the
    message (its ``traceparent`` attribute), with the engine's stages below it."""
    if not tracing.enabled():
        return await _transient_is_redelivery(message, _handle(svc, settings, evaluator, message))
    attributes = message.attributes
    with tracing.message_span(
        "job.handle",
        attributes,
        {
            "messaging.message.id": message.id,
            "decision_id": attributes.get("decision_id"),
            "tenant": attributes.get("tenant"),
        },
    ) as span:
        outcome = await _transient_is_redelivery(message, _handle(svc, settings, evaluator, message))
        tracing.record(span, outcome=outcome.outcome, redeliver=outcome.redeliver)
        return outcome


async def handle_dead_letter(svc: Services, message: Message) -> JobOutcome:
    """The cloud's dead-letter path: Pub/Sub pushes each job it gave up on; its
    decision ends ``failed`` with code ``delivery-failed``. A no-op for a decision
    that ended or never existed."""
    return await _transient_is_redelivery(message, _handle_dead_letter(svc, message))


async def _transient_is_redelivery(message: Message, handling: Awaitable[JobOutcome]) -> JobOutcome:
    try:
        return await handling
    except TRANSIENT as exc:
        log.warning("transient failure, message %s will be redelivered: %s", message.id, exc)
        return JobOutcome("transient-failure", "state store unavailable (logged)", redeliver=True)


async def _handle_dead_letter(svc: Services, message: Message) -> JobOutcome:
    attempts = int(message.attributes.get("CloudPubSubDeadLetterSourceDeliveryCount") or 0)
    source = message.attributes.get("CloudPubSubDeadLetterSourceSubscription") or "reasoning-jobs"
    failed = await fail_dead_letter(svc.decisions, svc.bus, message, attempts, source, None)
    if failed is None:
        return JobOutcome("dead-letter-ignored", f"dead letter {message.id}: no open decision to fail")
    return JobOutcome(
        "delivery-failed",
        f"decision {failed.decision_id} failed",
        extra={"decision_id": failed.decision_id},
    )


async def _handle(svc: Services, settings: Settings, evaluator: Evaluator, message: Message) -> JobOutcome:
    data, attributes = message.data, message.attributes
    try:
        job = Job.model_validate_json(data)
    except ValidationError as exc:
        return await _poison(svc, attributes, exc)
    logs.bind(
        tenant=job.tenant, ruleset=job.ruleset.name, version=job.ruleset.version, decision_id=job.decision_id
    )

    # one of the tenant's running slots (or parked), the claim, and the record
    # marked running if it is still the pending record the backend stored for this
    # job: one durable round trip. The record is not read first: it is a function
    # of the job (entail.decisions.submit builds both), so the script compares it
    # with the one expected, and only when it differs (the job ran or ended
    # already, another release wrote it, or nobody did) the worker reads and checks
    # it, then starts as before (state/job_start.py)
    started = utcnow()
    pending = _pending_record(job)
    start = await start_job(
        fairness.quotas(svc, settings),
        tenant=job.tenant,
        decision_id=job.decision_id,
        job_data=data,
        job_attributes=attributes,
        worker=settings.worker_id,
        claim_lease_ms=settings.claim_lease_ms,
        record_as_read=dump_record(pending),
        running_record=dump_record(_running(pending, settings, started)),
        expected=True,
    )
    if isinstance(start, Stored):
        checked = await _start_checked(svc, settings, job, message, start.text, started)
        if isinstance(checked, JobOutcome):
            return checked
        start = checked
    if start == "parked":
        # over its tenant's running quota: parked, republished when a slot frees
        return JobOutcome("deferred", f"decision {job.decision_id} waits for a slot of its tenant")
    if start == "claimed":
        # try again later: the holder finishes it, or its lease expires (it crashed)
        return JobOutcome(
            "claimed", f"decision {job.decision_id} is being evaluated by another worker", redeliver=True
        )

    # one timer renews the claim and the slot (each had its own task)
    turn = fairness.Turn(svc, settings, job, renew=False)
    renew = asyncio.create_task(_keep_claim(svc, job.decision_id, settings, turn))
    drain_parked = True  # the slot is given back at the end, and the parked jobs that fit republished
    try:
        if start == "changed" and not await svc.decisions.mark_running(
            job.decision_id, settings.worker_id, started
        ):
            # it ended since we looked (the sweeper, a dead letter, another worker)
            ended = await svc.decisions.get(job.tenant, job.decision_id)
            status = ended.status if ended is not None else "gone"
            return JobOutcome("duplicate", f"decision {job.decision_id} is already {status}")
        record, seconds = await _evaluate(svc, settings, evaluator, job, started)
        if not getattr(evaluator, "caps_checked", False):
            record = await asyncio.to_thread(cap_record, record, settings)
        with tracing.span("job.complete", {"decision_id": job.decision_id, "status": record.status}):
            # stored, signalled, its quotas freed, and (when it succeeded) cached
            # before the signal, in one durable round trip: a client told "done"
            # that repeats the request at once hits the cache. Safe if the store
            # loses a race: the backend serves only a cached decision that succeeded.
            # The record is encoded once, for the store and the bus
            # The complete script also hands the freed slot to the tenant's parked
            # jobs that fit: no drain round trip of its own. They are republished
            # with the decision's message (first, so the tenant's next job starts sooner)
            text = dump_record(record)
            stored, _, handed_out = await svc.decisions.complete_job(
                record, cache_ttl_s=settings.cache_ttl_s, text=text, hand_out=turn.quotas.max_running
            )
            drain_parked = False
            # another final record won: the audit trail gets that one
            final = record if stored else await svc.decisions.get(job.tenant, job.decision_id) or record
            await _publish_final(svc, turn, final, text if stored else None, handed_out)
    finally:
        renew.cancel()
        with suppress(asyncio.CancelledError):
            await renew
        await turn.end(drain_parked=drain_parked)
    return JobOutcome(final.status, f"decision {job.decision_id} {final.status}", evaluation_s=seconds)


async def _publish_final(
    svc: Services, turn: fairness.Turn, final: DecisionRecord, text: str | None, handed_out: list[ParkedJob]
) -> None:
    """Publish the final record on ``decisions`` and republish the parked jobs the
    complete script handed this job's slot to (each then taken off the parked list).

    When the bus keeps its messages in the state store (Redis Streams,
    :class:`~entail.bus.port.InStoreBus`), the jobs and the decision go in one
    durable write, one round trip; the unparks follow once it returned, so a job
    is never unparked unpublished. Otherwise (Pub/Sub, or tracing on: each publish
    keeps its span) one publish after the other. A failed republish leaves the jobs
    parked with their slots reserved (the drain timer hands them out again); a
    failed publish of the decision fails the delivery (redelivered, it republishes
    the stored record)."""
    tenant = turn.job.tenant
    bus = svc.bus
    if handed_out and isinstance(bus, InStoreBus) and bus.joins(svc.durability) and not tracing.enabled():
        data, attributes = decision_message(final, text)

        def build(pipe: Any) -> None:
            for parked in handed_out:
                bus.queue_publish(pipe, REASONING_JOBS, parked.data, parked.attributes)
            bus.queue_publish(pipe, DECISIONS, data, attributes)

        await svc.durability.write(build, one_trip=True)
        try:
            for parked in handed_out:
                await turn.quotas.unpark(tenant, parked)
        except (RedisError, OSError) as exc:  # published: a second drain publishes it twice (harmless)
            log.warning("parked jobs of %s republished but not unparked (%s)", tenant, exc)
        return
    if handed_out:
        try:
            await fairness.republish(svc, turn.quotas, tenant, handed_out)
        except (RedisError, OSError) as exc:  # still parked, slots reserved: the drain timer hands them out
            log.warning("parked jobs of %s not republished (%s); the drain timer will", tenant, exc)
    await publish_decision(bus, final, text)


def _pending_record(job: Job) -> DecisionRecord:
    """The record :func:`entail.decisions.submit` stored for ``job``, field for field
    (the same text through :func:`~entail.record_json.dump_record`)."""
    return DecisionRecord(
        decision_id=job.decision_id,
        tenant=job.tenant,
        ruleset=job.ruleset,
        request_hash=job.request_hash,
        status="pending",
        facts=job.facts,
        query=job.query,
        explain=job.explain,
        masked_predicates=job.masked_predicates,
        datasets=job.datasets,
        submitted_at=job.submitted_at,
    )


def _running(record: DecisionRecord, settings: Settings, started: str) -> DecisionRecord:
    update = {"status": "running", "worker": settings.worker_id, "started_at": started}
    return record.model_copy(update=update)


async def _start_checked(
    svc: Services, settings: Settings, job: Job, message: Message, raw: bytes | None, started: str
) -> Start | JobOutcome:
    """The start of a job whose stored record is not the pending one it implies: the
    record checked against the job (unknown, another tenant's, ended, not the one
    the job was created for), then slot, claim and running with the record as read
    (compare and set), or the outcome that ends this delivery."""
    existing = await parse_record(raw) if raw is not None else None
    if raw is None or existing is None or existing.tenant != job.tenant:
        # only the backend creates decisions: a job for an id it never created (or
        # another tenant's) is not evaluated, whoever managed to publish it
        log.warning("job for unknown decision %s of tenant %s dropped", job.decision_id, job.tenant)
        return JobOutcome("unknown-decision", f"decision {job.decision_id} does not exist; job dropped")
    if existing.done:
        # a redelivery after the result was stored: make sure the audit trail has it
        await publish_decision(svc.bus, existing)
        # and give back a running slot reserved for it since: two drains racing over
        # one parked job (the slot-back's and the timer's) can both publish it, and
        # the second reserves a slot after the first delivery ended; nobody else
        # would give that one back before its dispatch lease (a minute) ran out, and
        # with a quota of one the tenant's every job would wait parked meanwhile
        with suppress(RedisError, OSError):  # else the lease ends it
            await fairness.drain(svc, fairness.quotas(svc, settings), job.tenant, release=job.decision_id)
        return JobOutcome("duplicate", f"decision {job.decision_id} is already {existing.status}")
    if (
        existing.ruleset.hash != job.ruleset.hash
        or existing.request_hash != job.request_hash
        or existing.datasets != job.datasets  # the versions read are the ones recorded
    ):
        log.warning("job for decision %s does not match its record; dropped", job.decision_id)
        return JobOutcome(
            "mismatched-job", f"the job is not the one decision {job.decision_id} was created for"
        )
    start = await start_job(
        fairness.quotas(svc, settings),
        tenant=job.tenant,
        decision_id=job.decision_id,
        job_data=message.data,
        job_attributes=message.attributes,
        worker=settings.worker_id,
        claim_lease_ms=settings.claim_lease_ms,
        record_as_read=raw,
        running_record=dump_record(_running(existing, settings, started)),
    )
    if isinstance(start, Stored):  # a record as read is not compared first: never
        raise RuntimeError("job start compared a record it was not asked to")
    return start


async def _keep_claim(svc: Services, decision_id: str, settings: Settings, turn: fairness.Turn) -> None:
    """Renew the claim lease and the running slot at a third of the lease while the job runs."""
    while True:
        await asyncio.sleep(settings.claim_lease_ms / 3000)
        await turn.renew_once()
        await svc.decisions.claim_renew(decision_id, settings.worker_id, settings.claim_lease_ms)


async def _evaluate(
    svc: Services, settings: Settings, evaluator: Evaluator, job: Job, started: str
) -> tuple[DecisionRecord, float | None]:
    """The final record of ``job`` and the engine's seconds (None when it failed)."""
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
        datasets=job.datasets,  # the versions the evaluator reads (entail/dataset_eval.py)
        query=job.query,
        explain=job.explain,
        worker=settings.worker_id,
        submitted_at=job.submitted_at,
        started_at=started,
    )

    def failed(error: DecisionError, stats: dict[str, Any] | None = None) -> tuple[DecisionRecord, None]:
        update: dict[str, Any] = {"status": "failed", "error": error, "completed_at": utcnow()}
        if stats is not None:
            update["stats"] = stats
        return base.model_copy(update=update), None

    try:
        result, seconds = await evaluator.evaluate(svc, job)
    except EvaluationFailed as exc:
        return failed(exc.error, exc.stats)
    except reasoning.EntailError as exc:
        return failed(DecisionError(**_error_json(exc)))
    except ValueError as exc:  # limits that do not validate
        return failed(DecisionError(code="invalid-job", message=str(exc)))
    except (RedisConnectionError, RedisTimeoutError, DurabilityNotConfirmed, EvaluatorBusy):
        raise  # the delivery fails and the job comes back; any other error fails the decision
    except Exception as exc:  # an engine bug must not wedge the decision or the worker
        log.exception("internal error evaluating %s", job.decision_id)
        return failed(DecisionError(code="internal-error", message=f"{type(exc).__name__}: {exc}"))
    answers, result_hash, stats, why_not = result
    update = {
        "status": "succeeded",
        "answers": answers,
        "result_hash": result_hash,
        "stats": stats,
        "completed_at": utcnow(),
    }
    if why_not is not None:
        update["why_not"] = why_not
    return base.model_copy(update=update), seconds


def _error_json(exc: reasoning.EntailError) -> dict[str, Any]:
    data = exc.to_json() if hasattr(exc, "to_json") else {"code": exc.code, "message": str(exc)}
    return {
        "code": str(data.get("code", "error")),
        "message": str(data.get("message", exc)),
        "diagnostics": list(data.get("diagnostics", [])),
    }


async def _poison(svc: Services, attributes: dict[str, str], exc: ValidationError) -> JobOutcome:
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
                await publish_decision(svc.bus, failed)
    log.error("poison message acknowledged (decision %s): %s", decision_id, detail)
    return JobOutcome("poison", detail, extra={"decision_id": decision_id})


Handler = Callable[[Services, Message], Awaitable[JobOutcome]]
"""What a push endpoint of the worker calls with one decoded message."""
