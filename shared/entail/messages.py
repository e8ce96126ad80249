"""The two messages a decision sends, written once: its job on ``reasoning-jobs``
and its final record on ``decisions``.

The backend publishes jobs (and, for a cache hit, the served decision's record);
the worker, the dead-letter path and the sweeper publish final records; the
worker's fairness drain republishes parked jobs. Each goes through here, so the
attributes the subscribers route on (decision id, tenant, schema) are the same
whoever sends.
"""

from __future__ import annotations

from . import tracing
from .bus.port import DECISIONS, REASONING_JOBS, Bus
from .models import DECISION_SCHEMA, JOB_SCHEMA, DecisionRecord, Job
from .record_json import dump_record


def job_message(job: Job) -> tuple[bytes, dict[str, str]]:
    """The data and attributes of ``job``'s message (parked as is when its tenant
    has no free slot, published when one frees)."""
    data = job.model_dump_json(by_alias=True).encode()
    return data, {"decision_id": job.decision_id, "tenant": job.tenant, "schema": JOB_SCHEMA}


async def publish_job(bus: Bus, data: bytes, attributes: dict[str, str]) -> str:
    """Put a job message (from :func:`job_message`) on ``reasoning-jobs``; its message id.

    The span ``bus.publish`` is a child of the trace context the attributes
    already carry (the submitting request's, kept while the job was parked), else
    of the current span; the message carries the publish's own context."""
    if not tracing.enabled():
        return await bus.publish(REASONING_JOBS, data, attributes)
    with tracing.span(
        "bus.publish",
        {"messaging.destination.name": REASONING_JOBS, "decision_id": attributes.get("decision_id")},
        parent=tracing.extract(attributes),
    ) as span:
        message_id = await bus.publish(REASONING_JOBS, data, tracing.inject(attributes))
        tracing.record(span, **{"messaging.message.id": message_id})
        return message_id


def decision_message(record: DecisionRecord, text: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The data and attributes of a final ``record``'s message on ``decisions``."""
    data = (text if text is not None else dump_record(record)).encode()
    return data, {"decision_id": record.decision_id, "tenant": record.tenant, "schema": DECISION_SCHEMA}


async def publish_decision(bus: Bus, record: DecisionRecord, text: str | None = None) -> str:
    """Publish a final ``record`` (any proof depth) on ``decisions`` with the
    attributes the audit sink routes on (and the ``traceparent`` of its span
    ``decision.publish``); returns the message id. ``text``: the record as
    :func:`~entail.record_json.dump_record` wrote it already (not encoded twice)."""
    data, attributes = decision_message(record, text)
    if not tracing.enabled():
        return await bus.publish(DECISIONS, data, attributes)
    with tracing.span(
        "decision.publish",
        {
            "messaging.destination.name": DECISIONS,
            "decision_id": record.decision_id,
            "status": record.status,
            "cached": record.cached,
        },
    ) as span:
        message_id = await bus.publish(DECISIONS, data, tracing.inject(attributes))
        tracing.record(span, **{"messaging.message.id": message_id})
        return message_id
