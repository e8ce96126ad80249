"""The jobs' side of the per-tenant quotas (:mod:`entail.state.quotas`).

A job is evaluated only while it holds one of its tenant's running slots
(``ENTAIL_TENANT_MAX_RUNNING`` across all workers). Over the quota it is parked
and its push acknowledged (outcome ``deferred``); when the job's slot is given
back, the tenant's parked jobs that fit are republished on ``reasoning-jobs``.
A timer drains every parked tenant too, for slots that freed by lease expiry
(a crashed worker) or parked jobs that raced a release.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from .messages import publish_job
from .models import Job
from .services import Services
from .settings import Settings
from .state.quotas import ParkedJob, TenantQuotas

log = logging.getLogger("entail.worker.fairness")

DRAIN_INTERVAL_S = 1.0


def quotas(svc: Services, settings: Settings) -> TenantQuotas:
    return TenantQuotas.from_settings(svc.redis, settings, svc.durability)


async def take_turn(
    svc: Services, settings: Settings, job: Job, data: bytes, attributes: dict[str, str]
) -> bool:
    """True when the job may be evaluated now; False when it was parked (acknowledge it)."""
    return await quotas(svc, settings).acquire_or_park(job.tenant, job.decision_id, data, attributes)


class Turn:
    """The job's slot, held from the claim to the stored result: renewed with the
    claim's rhythm, then given back, and the tenant's parked jobs that fit now are
    republished (:meth:`end`)."""

    def __init__(self, svc: Services, settings: Settings, job: Job, *, renew: bool = True) -> None:
        """``renew=False``: the caller renews the slot (:meth:`renew_once`) with its own timer."""
        self.svc, self.job = svc, job
        self.quotas = quotas(svc, settings)
        self.renew: asyncio.Task[None] | None = None
        if renew:
            self.renew = asyncio.create_task(_keep_turn(self.quotas, job, settings.claim_lease_ms / 3000))

    async def renew_once(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.quotas.renew(self.job.tenant, self.job.decision_id)

    async def end(self, *, drain_parked: bool = True) -> None:
        """Stop renewing; give the slot back and republish the parked jobs that fit.
        ``drain_parked=False``: the slot was given back already and the tenant had no
        parked job then (:meth:`~entail.state.decisions.DecisionStore.complete_job`);
        a job parked since is drained by the holder of the slot it waits for, or by
        the timer (:func:`drainer`)."""
        if self.renew is not None:
            self.renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.renew
        if not drain_parked:
            return
        try:
            # the slot given back and the parked jobs that fit now, in one round trip
            await drain(self.svc, self.quotas, self.job.tenant, release=self.job.decision_id)
        except (RedisError, OSError) as exc:  # the slot's lease ends it; the timer drains
            log.warning("slot of %s not given back (%s); its lease frees it", self.job.decision_id, exc)


async def _keep_turn(q: TenantQuotas, job: Job, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        with contextlib.suppress(RedisError, OSError):
            await q.renew(job.tenant, job.decision_id)


async def drain(svc: Services, q: TenantQuotas, tenant: str, *, release: str | None = None) -> int:
    """Republish the tenant's parked jobs that fit into its free slots (after giving
    back ``release``'s slot, when given); how many.

    Each is published before it is taken off the list: a crash in between
    delivers it twice (the claim makes that harmless), never zero times."""
    return await republish(svc, q, tenant, await q.ready(tenant, release=release))


async def republish(svc: Services, q: TenantQuotas, tenant: str, handed_out: list[ParkedJob]) -> int:
    """Republish parked jobs handed out to free slots (:meth:`TenantQuotas.ready`, or
    the worker's complete script), each before it is taken off the list; how many."""
    for parked in handed_out:
        await publish_job(svc.bus, parked.data, parked.attributes)
        await q.unpark(tenant, parked)
    return len(handed_out)


async def drain_all(svc: Services, settings: Settings) -> int:
    q = quotas(svc, settings)
    return sum([await drain(svc, q, tenant) for tenant in await q.parked_tenants()])


@asynccontextmanager
async def drainer(svc: Services, settings: Settings) -> AsyncIterator[None]:
    """Drain every parked tenant every ``DRAIN_INTERVAL_S`` while the body runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(DRAIN_INTERVAL_S)
            try:
                await drain_all(svc, settings)
            except (RedisError, OSError) as exc:
                log.warning("draining parked jobs failed (%s); next try in %.0f s", exc, DRAIN_INTERVAL_S)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
