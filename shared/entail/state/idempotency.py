"""Idempotency keys in Redis: who holds a key, and the first response made under it.

One hash per (tenant, key), ``entail:idem:{tenant}:{sha256 of the key}``:
``fp`` (the fingerprint of the request that took it), ``owner`` (a token of
the request in flight), ``state`` (``pending`` or ``done``) and, once done,
``status``, ``headers`` (JSON) and ``body``. A pending entry expires after the
in-flight lease (a backend that died mid-request frees the key); a done entry
after the idempotency TTL. Each step is one script, so two requests racing for
a key see one winner.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis.asyncio as aioredis

from . import keys
from .durability import Durability

# Take the key for ARGV[1] (fingerprint) / ARGV[2] (owner) for ARGV[3] ms, or
# return what holds it: {fp, state, status, headers, body}.
_BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'owner', ARGV[2], 'state', 'pending')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {}
end
return redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', 'headers', 'body')
"""

# Store the response of the owner ARGV[1]; keep it ARGV[5] ms. 0: the key is no
# longer the owner's (its lease ran out and another request took it).
_FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4])
redis.call('HDEL', KEYS[1], 'owner')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# Free the key of the owner ARGV[1] (its request failed: a retry runs again).
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def idempotency_key(tenant: str, key: str) -> str:
    """The Redis key of a tenant's idempotency key (hashed: any text, bounded length)."""
    return keys.idempotency(tenant, hashlib.sha256(key.encode()).hexdigest())


@dataclass(frozen=True)
class Held:
    """What holds a key: the request's fingerprint, and its response once done."""

    fingerprint: str
    done: bool
    status: int = 0
    headers: dict[str, str] | None = None
    body: bytes = b""


class IdempotencyStore:
    def __init__(self, redis: aioredis.Redis, *, durability: Durability | None = None) -> None:
        self.redis = redis
        self.durability = durability

    async def begin(self, tenant: str, key: str, fingerprint: str, owner: str, lease_ms: int) -> Held | None:
        """None when ``owner`` now holds the key, else what holds it."""
        reply = await self.redis.eval(_BEGIN, 1, idempotency_key(tenant, key), fingerprint, owner, lease_ms)
        if not reply:
            return None
        fp, state, status, headers, body = reply
        if fp is None:  # expired between EXISTS and HMGET cannot happen in a script; a foreign hash
            return Held("", False)
        done = state == b"done"
        return Held(
            fp.decode(),
            done,
            int(status) if done and status else 0,
            json.loads(headers) if done and headers else None,
            bytes(body) if done and body is not None else b"",
        )

    async def finish(
        self,
        tenant: str,
        key: str,
        owner: str,
        status: int,
        headers: dict[str, str],
        body: bytes,
        ttl_ms: int,
    ) -> bool:
        """Keep the response for ``ttl_ms``, acknowledged like a decision (WAIT for
        replicas): a retry after a failover must still find it."""
        name = idempotency_key(tenant, key)
        args = (owner, status, json.dumps(headers), body, ttl_ms)
        if self.durability is None:
            return bool(await self.redis.eval(_FINISH, 1, name, *args))
        replies = await self.durability.write(lambda pipe: pipe.eval(_FINISH, 1, name, *args))
        return bool(replies[0])

    async def release(self, tenant: str, key: str, owner: str) -> None:
        await self.redis.eval(_RELEASE, 1, idempotency_key(tenant, key), owner)
