"""Result cache: (tenant, ruleset hash, canonical request hash) -> decision id, in
Redis; and :class:`LocalHits`, the same lookups remembered in the process."""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime

import redis.asyncio as aioredis

from ..models import DecisionRecord
from . import keys

LOCAL_HITS_MAX_BYTES = 16 * 1024 * 1024
"""What the records remembered by one process's :class:`LocalHits` may take, in
their stored JSON's bytes (a record is at most a few times that in memory)."""

LOCAL_HIT_MAX_RECORD_BYTES = 64 * 1024
"""A larger record is never remembered: one big answer must not push out the rest."""


class ResultCache:
    """The tenant is part of the key: the same ruleset and request from another
    tenant never finds this tenant's decision.

    Lookups go to ``replica`` (a lagging replica only costs a miss: the decision is
    made again); entries are written to the primary and not waited for — a cache
    entry lost in a failover is a miss, nothing a client was promised."""

    def __init__(self, redis: aioredis.Redis, *, replica: aioredis.Redis | None = None) -> None:
        self.redis = redis
        self.replica = replica or redis
        self.local = LocalHits()

    async def get(self, tenant: str, ruleset_hash: str, request_hash: str) -> str | None:
        raw = await self.replica.get(keys.cache(tenant, ruleset_hash, request_hash))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def put(
        self, tenant: str, ruleset_hash: str, request_hash: str, decision_id: str, ttl_s: int
    ) -> None:
        """Remember ``decision_id`` for ``ttl_s`` seconds (a later put replaces it)."""
        await self.redis.set(keys.cache(tenant, ruleset_hash, request_hash), decision_id, ex=ttl_s)


class LocalHits:
    """The succeeded decisions this process served cache hits from, by cache key,
    each for a short while (``ENTAIL_RESULT_CACHE_LOCAL_S``): a repeated request is
    answered without the two Redis reads (the cache entry, then the record) and the
    parse of the record.

    Safe because what it holds cannot change: a final record is never overwritten
    (``DecisionStore.complete``) and a cache entry only ever names a succeeded
    decision of the same tenant, ruleset source and request. What it may not do is
    outlive them: each entry expires at the earliest of its own short lifetime and
    the moment the Redis entry (``ENTAIL_CACHE_TTL_S``) or the record
    (``ENTAIL_DECISION_TTL_S``) would have expired, both counted from the record's
    ``completed_at`` as the worker set them. Bounded in bytes
    (:data:`LOCAL_HITS_MAX_BYTES`), least recently used first out."""

    def __init__(self, max_bytes: int = LOCAL_HITS_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, int, DecisionRecord]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, tenant: str, ruleset_hash: str, request_hash: str) -> DecisionRecord | None:
        key = (tenant, ruleset_hash, request_hash)
        found = self._entries.get(key)
        if found is None:
            return None
        expires, _, record = found
        if time.monotonic() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return record

    def put(
        self,
        tenant: str,
        ruleset_hash: str,
        request_hash: str,
        record: DecisionRecord,
        size: int,
        *,
        keep_s: float,
        cache_ttl_s: float,
        record_ttl_s: float,
        now: float | None = None,
    ) -> None:
        """Remember ``record`` (``size``: its stored JSON's bytes) for at most
        ``keep_s`` seconds, and never past ``completed_at`` plus the shorter of the
        cache entry's and the record's lifetimes. ``now``: the wall clock (tests)."""
        if keep_s <= 0 or size > LOCAL_HIT_MAX_RECORD_BYTES or record.completed_at is None:
            return
        left = (
            _epoch(record.completed_at)
            + min(cache_ttl_s, record_ttl_s)
            - (time.time() if now is None else now)
        )
        hold = min(keep_s, left)
        if hold <= 0:
            return
        key = (tenant, ruleset_hash, request_hash)
        self._drop(key)
        self._entries[key] = (time.monotonic() + hold, size, record)
        self._bytes += size
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: tuple[str, str, str]) -> None:
        gone = self._entries.pop(key, None)
        if gone is not None:
            self._bytes -= gone[1]


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of a record's ``...Z`` timestamp (entail.models.utcnow)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
