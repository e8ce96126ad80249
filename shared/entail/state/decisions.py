"""Decision state: one JSON record per decision, claims, and the done signal."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from ..models import DecisionRecord
from . import keys

# Store the final record only if the stored one is not final yet (a redelivered
# job must not overwrite what another worker stored), then announce it.
_COMPLETE = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and (doc['status'] == 'succeeded' or doc['status'] == 'failed') then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PUBLISH', KEYS[2], 'done')
return 1
"""

# Extend a claim only while this worker still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class DecisionStore:
    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._complete = redis.register_script(_COMPLETE)
        self._renew = redis.register_script(_RENEW)

    async def create(self, record: DecisionRecord) -> bool:
        stored = await self.redis.set(
            keys.decision(record.decision_id), _dump(record), ex=self.ttl_s, nx=True
        )
        return bool(stored)

    async def get(self, tenant: str, decision_id: str) -> DecisionRecord | None:
        """The record, or None when absent or another tenant's (indistinguishable)."""
        raw = await self.redis.get(keys.decision(decision_id))
        if raw is None:
            return None
        record = DecisionRecord.model_validate_json(raw)
        return record if record.tenant == tenant else None

    async def mark_running(self, decision_id: str, worker: str, started_at: str) -> bool:
        """pending/running → running by ``worker``; False when the record is final or gone.

        An optimistic transaction in Python rather than Lua: cjson would turn the
        record's empty lists into objects."""
        key = keys.decision(decision_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        return False
                    current = DecisionRecord.model_validate_json(raw)
                    if current.done:
                        return False
                    running = current.model_copy(
                        update={"status": "running", "worker": worker, "started_at": started_at}
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, _dump(running), keepttl=True)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def complete(self, record: DecisionRecord) -> bool:
        """Store a final record and signal it; False if a final record was already stored."""
        stored = await self._complete(
            keys=[keys.decision(record.decision_id), keys.done_channel(record.decision_id)],
            args=[_dump(record), self.ttl_s],
        )
        return bool(stored)

    async def wait_done(self, tenant: str, decision_id: str, timeout_s: float) -> DecisionRecord | None:
        """The final record as soon as it exists, or None after ``timeout_s``.

        Subscribes before reading, so a completion between the read and the
        subscription cannot be missed."""
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(keys.done_channel(decision_id))
            deadline = time.monotonic() + timeout_s
            while True:
                record = await self.get(tenant, decision_id)
                if record is None or record.done:
                    return record if record is not None and record.done else None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(remaining, 1.0))
        finally:
            await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]

    async def claim(self, decision_id: str, worker: str, lease_ms: int) -> bool:
        return bool(await self.redis.set(keys.claim(decision_id), worker, px=lease_ms, nx=True))

    async def claim_renew(self, decision_id: str, worker: str, lease_ms: int) -> bool:
        return bool(await self._renew(keys=[keys.claim(decision_id)], args=[worker, lease_ms]))

    async def release_claim(self, decision_id: str) -> None:
        await self.redis.delete(keys.claim(decision_id))


def _dump(record: DecisionRecord) -> str:
    return record.model_dump_json(by_alias=True)
