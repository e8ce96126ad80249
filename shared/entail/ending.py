"""Every accepted decision ends: failing the decisions nothing else will finish.

Two things end a decision that the worker never completes, both through
:func:`fail_decision`:

* a job given up on by the bus (``delivery-failed``): locally the relay's
  dead-letter path, in the cloud the push subscription on the jobs'
  dead-letter topic (``POST /push/dead-letters`` on the worker);
* the sweeper (:mod:`entail.sweeper`, ``deadline-exceeded``) for a decision
  still open past ``ENTAIL_DECISION_DEADLINE_S``, whatever the reason.

The failed record is stored only while the stored one is not final (the same
atomic check as a worker's completion), so failing a decision that has ended is
a no-op, and of two concurrent attempts exactly one stores, announces (the done
signal, which ends SSE streams and waits) and publishes it on ``decisions``.
"""

from __future__ import annotations

import json
import logging

from .bus.port import Bus, Message
from .messages import publish_decision
from .models import DecisionError, DecisionRecord, utcnow
from .state.decisions import DecisionStore

log = logging.getLogger("entail.ending")

DELIVERY_FAILED = "delivery-failed"
"""Error code of a decision whose job the bus dead-lettered."""

DEADLINE_EXCEEDED = "deadline-exceeded"
"""Error code of a decision the sweeper ended."""

MESSAGE_CHARS = 1000  # of a last error kept in the record


async def fail_decision(
    decisions: DecisionStore, bus: Bus, decision_id: str, code: str, message: str
) -> DecisionRecord | None:
    """Store ``decision_id`` as ``failed`` with ``code`` and ``message``, announce
    and publish it; None (and nothing done) when the record is gone or final."""
    current = await decisions.get_any(decision_id)
    if current is None or current.done:
        await decisions.forget_open(decision_id)
        return None
    failed = current.model_copy(
        update={
            "status": "failed",
            "error": DecisionError(code=code, message=message[:MESSAGE_CHARS]),
            "completed_at": utcnow(),
        }
    )
    if not await decisions.complete(failed):
        return None  # it ended meanwhile: the one who ended it announced it
    await publish_decision(bus, failed)
    log.warning("decision %s failed: %s: %s", decision_id, code, message[:200])
    return failed


def decision_id_of(message: Message) -> str | None:
    """The decision a job message is about: its ``decision_id`` attribute, else the
    job's own field (a message published without attributes), else None."""
    decision_id = message.attributes.get("decision_id")
    if decision_id:
        return decision_id
    try:
        doc = json.loads(message.data)
    except ValueError:
        return None
    value = doc.get("decision_id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value else None


def delivery_failed_message(attempts: int, subscription: str, last_error: str | None) -> str:
    """The error message of a dead-lettered job: how often it was tried, where, and
    the last error when the bus knows it (Pub/Sub's dead letters do not carry it)."""
    text = f"the job was not delivered after {attempts} attempt(s) (subscription {subscription})"
    return f"{text}; last error: {last_error}" if last_error else text


async def fail_dead_letter(
    decisions: DecisionStore,
    bus: Bus,
    message: Message,
    attempts: int,
    subscription: str,
    last_error: str | None,
) -> DecisionRecord | None:
    """End the decision of a dead-lettered job as ``delivery-failed``."""
    decision_id = decision_id_of(message)
    if decision_id is None:
        log.error("dead letter %s names no decision; nothing to fail", message.id)
        return None
    text = delivery_failed_message(attempts, subscription, last_error)
    return await fail_decision(decisions, bus, decision_id, DELIVERY_FAILED, text)
