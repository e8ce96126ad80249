"""Per-tenant quotas on the worker tier: how many decisions a tenant may have
open (queued or running) and how many may be evaluated at once.

Without them one tenant's batch of slow cases took every worker for minutes
while another tenant's decisions waited behind it in the same topic. The quotas
live in Redis, so they hold across every backend and worker instance, locally
(the relay pushes) and in the cloud (Pub/Sub pushes to many workers):

* **open** (``ENTAIL_TENANT_MAX_OPEN``): the backend admits a decision, or a
  whole batch, only while the tenant's open decisions stay within the quota
  (:meth:`TenantQuotas.admit`, all or nothing); past it the API answers 429.
  The id leaves the set when its final record is stored
  (:mod:`entail.state.decisions`); entries older than ``OPEN_HORIZON_MS`` are
  dropped as a backstop.
* **running** (``ENTAIL_TENANT_MAX_RUNNING``): a worker evaluates a job only
  after it took one of the tenant's slots: a sorted set of decision ids scored by
  a lease expiry (renewed with the claim, so a crashed worker's slot frees
  itself). A job over the quota is *parked* in the tenant's list in the same
  atomic step and its push acknowledged: a nack would count towards the
  subscription's delivery attempts and dead-letter a job that is merely
  waiting its turn. When a slot frees, the worker that freed it republishes
  the tenant's parked jobs that fit (:meth:`ready` then :meth:`unpark`), and
  every worker drains parked tenants on a timer, which covers slots freed by
  expiry. A republished job comes through the bus like any other; a job taken
  out of the list is republished before it is removed, so a crash in between
  delivers it twice (harmless: the worker's claim), never zero times.

Slots are taken by decision id: a redelivered job whose slot is still held
takes no second one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..settings import Settings
from .direct_calls import run_script
from .durability import Durability

OPEN_HORIZON_MS = 3_600_000  # an open entry older than this is dropped at the next admit
DISPATCH_LEASE_MS = 60_000  # a slot reserved for a job on its way through the bus
PARKED_ATTRIBUTE = "parked"  # set on a republished job: it goes before fresh jobs of its tenant


def open_key(tenant: str) -> str:
    return f"entail:tq:{tenant}:open"


def running_key(tenant: str) -> str:
    return f"entail:tq:{tenant}:running"


def parked_key(tenant: str) -> str:
    return f"entail:tq:{tenant}:parked"


PARKED_TENANTS = "entail:tq:parked-tenants"

# Admit ARGV[4..] ids when the tenant's open set has room for all of them.
# Returns -1 when admitted, else how many more it could take now.
_ADMIT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[2]))
local open = redis.call('ZCARD', KEYS[1])
local wanted = #ARGV - 3
if open + wanted > tonumber(ARGV[1]) then return tonumber(ARGV[1]) - open end
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], now_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return -1
"""

# Take a running slot for ARGV[1] (or renew it, when already held), or park the
# job (ARGV[4]) at the end of the tenant's list. A fresh job (ARGV[5] == '0') also
# parks while older jobs are parked, so a tenant's parked jobs are not overtaken.
# 1: slot taken; 0: parked.
_ACQUIRE_OR_PARK = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
  return 1
end
local queue_free = ARGV[5] == '1' or redis.call('LLEN', KEYS[2]) == 0
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) and queue_free then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return 1
end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('SADD', KEYS[3], ARGV[6])
return 0
"""

_RENEW = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""

# The parked jobs that fit into the free slots now (oldest first), each with its
# slot reserved for ARGV[3] ms (the time to come back through the bus); left
# parked until :meth:`unpark`. Entries are "<decision id> <message JSON>"; an
# entry whose slot is already reserved (a drain that did not finish) is handed out
# again. A non-empty ARGV[4] is a slot given back first, in the same round trip
# (the worker's job ended: its slot frees, and what fits now is handed out).
_READY = """
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[1], ARGV[4]) end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[2])
  return {}
end
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local out = {}
for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)) do
  local id = string.sub(entry, 1, string.find(entry, ' ', 1, true) - 1)
  if redis.call('ZSCORE', KEYS[1], id) then
    table.insert(out, entry)
  elseif free > 0 then
    redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), id)
    free = free - 1
    table.insert(out, entry)
  end
end
return out
"""

# Remove one parked job (after it was republished); forget the tenant when none is left.
_UNPARK = """
local removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return removed
"""


class TenantQueueFull(Exception):
    """The tenant has ``limit`` decisions open; ``free`` more would fit now."""

    def __init__(self, tenant: str, limit: int, free: int, wanted: int) -> None:
        super().__init__(
            f"tenant {tenant!r} has {limit - free} of at most {limit} decisions queued or running; "
            f"{wanted} more do not fit" + (f" ({free} would)" if free > 0 else "")
        )
        self.limit, self.free, self.wanted = limit, free, wanted


@dataclass(frozen=True)
class ParkedJob:
    """A job message waiting for one of its tenant's slots."""

    raw: str  # the list entry, exactly (to remove it)
    data: bytes
    attributes: dict[str, str]


def encode_parked(decision_id: str, data: bytes, attributes: dict[str, str]) -> str:
    message = json.dumps({"data": data.decode(), "attributes": attributes}, separators=(",", ":"))
    return f"{decision_id} {message}"


def _decode_parked(raw: bytes | str) -> ParkedJob:
    text = raw.decode() if isinstance(raw, bytes) else raw
    doc: dict[str, Any] = json.loads(text.split(" ", 1)[1])
    return ParkedJob(text, str(doc["data"]).encode(), {str(k): str(v) for k, v in doc["attributes"].items()})


# the worker's complete script hands out parked jobs with the drain's own script,
# run as a Lua function (state/decisions.py), and decodes what it returns
READY_SCRIPT = _READY
decode_parked = _decode_parked


class TenantQuotas:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        max_open: int,
        max_running: int,
        lease_ms: int,
        durability: Durability | None = None,
    ) -> None:
        self.redis = redis
        self.max_open = max(1, max_open)
        self.max_running = max(1, max_running)
        self.lease_ms = max(1, lease_ms)
        self.durability = durability or Durability(redis)

    @classmethod
    def from_settings(
        cls, redis: aioredis.Redis, settings: Settings, durability: Durability | None = None
    ) -> TenantQuotas:
        return cls(
            redis,
            max_open=settings.tenant_max_open,
            max_running=settings.tenant_max_running,
            lease_ms=settings.claim_lease_ms,
            durability=durability,
        )

    # -- the backend ---------------------------------------------------------------

    async def admit(self, tenant: str, decision_ids: list[str]) -> None:
        """Count ``decision_ids`` as open for ``tenant``, all or none;
        :class:`TenantQueueFull` when they do not fit."""
        if not decision_ids:
            return
        free = int(
            await self.redis.eval(
                _ADMIT,
                1,
                open_key(tenant),
                self.max_open,
                OPEN_HORIZON_MS,
                OPEN_HORIZON_MS,
                *decision_ids,
            )
        )
        if free >= 0:
            raise TenantQueueFull(tenant, self.max_open, free, len(decision_ids))

    async def withdraw(self, tenant: str, decision_ids: list[str]) -> None:
        """Undo :meth:`admit` for decisions that were not created after all."""
        if decision_ids:
            await self.redis.zrem(open_key(tenant), *decision_ids)

    async def open_count(self, tenant: str) -> int:
        return int(await self.redis.zcard(open_key(tenant)))

    # -- the worker ----------------------------------------------------------------

    async def acquire_or_park(
        self,
        tenant: str,
        decision_id: str,
        data: bytes,
        attributes: dict[str, str],
        *,
        lease_ms: int | None = None,
    ) -> bool:
        """True: the job holds one of its tenant's slots (for ``lease_ms``, default the
        claim lease) and may be evaluated, or published. False: it was parked
        (durably), to be republished when a slot frees.

        The backend calls it before publishing a job (with :data:`DISPATCH_LEASE_MS`):
        so the bus never carries more of a tenant's jobs than it may run, and another
        tenant's job is never queued behind a flood. The worker calls it again when
        the job arrives: a job whose slot is reserved keeps it."""
        republished = attributes.get(PARKED_ATTRIBUTE) == "1"
        parked = encode_parked(decision_id, data, {**attributes, PARKED_ATTRIBUTE: "1"})
        script_keys = [running_key(tenant), parked_key(tenant), PARKED_TENANTS]
        args: list[str | int] = [
            decision_id,
            self.max_running,
            self.lease_ms if lease_ms is None else lease_ms,
            parked,
            "1" if republished else "0",
            tenant,
            OPEN_HORIZON_MS,
        ]
        (taken,) = await self.durability.write(
            lambda pipe: pipe.eval(_ACQUIRE_OR_PARK, len(script_keys), *script_keys, *args)
        )
        return bool(taken)

    async def renew(self, tenant: str, decision_id: str) -> bool:
        return bool(await self.redis.eval(_RENEW, 1, running_key(tenant), decision_id, self.lease_ms))

    async def release(self, tenant: str, decision_id: str) -> None:
        await self.redis.zrem(running_key(tenant), decision_id)

    async def running_count(self, tenant: str) -> int:
        return int(await self.redis.zcard(running_key(tenant)))

    async def parked_count(self, tenant: str) -> int:
        return int(await self.redis.llen(parked_key(tenant)))

    async def parked_tenants(self) -> list[str]:
        members = await self.redis.smembers(PARKED_TENANTS)
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def ready(self, tenant: str, *, release: str | None = None) -> list[ParkedJob]:
        """The tenant's oldest parked jobs that fit into its free slots now, each with
        its slot reserved while it comes back through the bus (left parked until
        :meth:`unpark`). ``release``: a decision id whose slot is given back first
        (:meth:`release` and this in one round trip)."""
        script_keys = [running_key(tenant), parked_key(tenant), PARKED_TENANTS]
        raw = await run_script(
            self.redis, _READY, script_keys, [self.max_running, tenant, DISPATCH_LEASE_MS, release or ""]
        )
        return [_decode_parked(entry) for entry in raw or []]

    async def unpark(self, tenant: str, job: ParkedJob) -> None:
        """Take a republished job off the tenant's list."""
        await run_script(self.redis, _UNPARK, [parked_key(tenant), PARKED_TENANTS], [job.raw, tenant])
