"""The sweeper: fails decisions still open past ``ENTAIL_DECISION_DEADLINE_S``.

The last guarantee that every accepted decision ends, whatever went wrong (a
job lost before it reached the bus, a dead letter that could not be handled, a
bug). The decision store keeps the ids of open decisions in a sorted set by
creation time (:func:`entail.state.keys.open_decisions`); a sweep takes the
overdue ones, oldest first, and fails each with ``deadline-exceeded``
(:func:`entail.ending.fail_decision`: a no-op for one that ended meanwhile).
The clock restarts when a worker starts the decision, and while the decision is
pending and its tenant has jobs parked by the per-tenant quotas
(:mod:`entail.state.quotas`): it is waiting its turn in a queue that moves.

Where it runs: locally inside the relay (``entail relay``), every
``ENTAIL_SWEEP_INTERVAL_S``; in the cloud Cloud Scheduler calls the worker's
``POST /sweep`` (OIDC, like a push) every minute. Several sweepers at once are
safe: exactly one stores each failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from .bus.port import Bus
from .ending import DEADLINE_EXCEEDED, fail_decision
from .settings import Settings
from .state.decisions import DecisionStore
from .state.durability import DurabilityNotConfirmed
from .state.quotas import PARKED_TENANTS

log = logging.getLogger("entail.sweeper")


def deadline_message(deadline_s: int) -> str:
    return f"the decision did not end within {deadline_s} s of being accepted (ENTAIL_DECISION_DEADLINE_S)"


async def sweep_once(decisions: DecisionStore, bus: Bus, settings: Settings) -> int:
    """Fail up to ``sweep_batch`` overdue decisions; how many it failed."""
    overdue = await decisions.overdue(settings.decision_deadline_s * 1000, settings.sweep_batch)
    failed = 0
    for decision_id in overdue:
        record = await decisions.get_any(decision_id)
        if record is None or record.done:
            await decisions.forget_open(decision_id)
            continue
        if record.status == "pending" and await decisions.redis.sismember(PARKED_TENANTS, record.tenant):
            await decisions.touch_open(decision_id)  # queued behind its tenant's own jobs
            continue
        ended = await fail_decision(
            decisions, bus, decision_id, DEADLINE_EXCEEDED, deadline_message(settings.decision_deadline_s)
        )
        failed += ended is not None
    if failed:
        log.warning(
            "sweeper: %d decision(s) past the %d s deadline failed", failed, settings.decision_deadline_s
        )
    return failed


async def run_sweeper(decisions: DecisionStore, bus: Bus, settings: Settings, stop: asyncio.Event) -> None:
    """Sweep every ``sweep_interval_s`` until ``stop``; Redis errors are logged and
    the next sweep tries again. Each sweep is a few awaited Redis calls, so the
    event loop it shares (the relay's) is never held."""
    while not stop.is_set():
        try:
            await sweep_once(decisions, bus, settings)
        except (RedisError, DurabilityNotConfirmed, OSError) as exc:
            log.warning("sweeper: sweep failed (%s); next in %.0f s", exc, settings.sweep_interval_s)
        except Exception:  # a bug must not take the relay down with it
            log.exception("sweeper: sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweep_interval_s)
