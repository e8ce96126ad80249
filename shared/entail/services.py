"""The services one process works with: Redis-backed stores, the bus, the keys,
the audit store (opened on first use) and the done-signal waiters.

A plain container of ports, built by the composition root
(:func:`entail.bootstrap.bootstrap`, the one place adapters are chosen) and
handed to the application layer (:mod:`entail.decisions`, :mod:`entail.ending`,
...) and the deployables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from .audit.port import AuditStore
from .auth import KeyRing
from .bus.port import Bus
from .datasets.port import DatasetStore
from .settings import Settings
from .state.cache import ResultCache
from .state.client import RedisClients
from .state.decisions import DecisionStore
from .state.durability import Durability
from .state.ratelimit import RateLimiter
from .state.registry import RulesetRegistry
from .state.waiters import DoneWaiters


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis  # the primary
    bus: Bus
    decisions: DecisionStore
    cache: ResultCache
    registry: RulesetRegistry
    rate_limiter: RateLimiter
    keys: KeyRing
    durability: Durability
    datasets: DatasetStore
    # opens ``datasets`` in a compute pool process, to read versions' rows there
    # (picklable: entail/dataset_eval.py, the composition root's choice of store)
    dataset_reader: Callable[[], DatasetStore]
    redis_read: aioredis.Redis | None = None  # a replica for stale-tolerant reads; None: the primary
    _audit: AuditStore | None = None
    _open_audit: Callable[[], AuditStore] | None = None  # the composition root's choice of store
    _clients: RedisClients | None = None  # owned: closed with the services
    _waiters: DoneWaiters | None = None

    @property
    def waiters(self) -> DoneWaiters:
        """This process's waiters for done signals (one shared subscription), made on first use."""
        if self._waiters is None:
            self._waiters = DoneWaiters(self.decisions, self.settings.waiters_max)
        return self._waiters

    @property
    def audit(self) -> AuditStore:
        """Opened on first use: the worker and the relay never touch the audit file."""
        if self._audit is None:
            if self._open_audit is None:
                raise RuntimeError("these services were built without an audit store")
            self._audit = self._open_audit()
        return self._audit

    async def aclose(self) -> None:
        if self._waiters is not None:
            await self._waiters.aclose()
        await self.bus.close()
        if self._audit is not None:
            self._audit.close()
        if self._clients is not None:
            await self._clients.aclose()
