"""Decision state: one JSON record per decision, claims, and the done signal."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline, PubSub
from redis.exceptions import WatchError

from ..models import DecisionRecord
from ..record_json import dump_record, load_record
from . import keys, quotas
from .durability import Durability

# Store the final record only if the stored one is not final yet (a redelivered
# job must not overwrite what another worker stored), then announce it and take
# the id off the open index. The very same record stored already counts as
# stored: this call retried after its reply was lost in a failover. (cjson
# decodes up to 1000 levels: deeper than any record the service writes.)
# With a sixth key, the result cache's entry for the request is set first (to
# ARGV[3], for ARGV[4] s), in the same round trip: before the done signal, so a
# client told "done" that repeats the request at once hits the cache.
# KEYS: 1 record, 2 done channel, 3 open index, 4 tenant's open, 5 tenant's running,
#       6 result cache entry (set when ARGV[4] > 0), 7 (optional) tenant's parked list.
# Returns 1 when stored (0 when another final record was), plus 2 when KEYS[7] is
# given and the tenant has parked jobs (its worker then republishes those that fit).
_COMPLETE = """
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[6], ARGV[3], 'EX', ARGV[4]) end
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('ZREM', KEYS[5], ARGV[3])
local parked = 0
if KEYS[7] and redis.call('LLEN', KEYS[7]) > 0 then parked = 2 end
local current = redis.call('GET', KEYS[1])
if current then
  if current == ARGV[1] then return 1 + parked end
  local ok, doc = pcall(cjson.decode, current)
  if ok and (doc['status'] == 'succeeded' or doc['status'] == 'failed') then return parked end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PUBLISH', KEYS[2], 'done')
return 1 + parked
"""

# The worker's complete: _COMPLETE, then, when the tenant has parked jobs, the ones
# that fit into its free slots now handed out in the same step (quotas._READY, the
# drain's own script, run as a function on these keys: the slot was given back
# above, so nothing is released there). Saves the drain's separate round trip on
# every job that ends while its tenant has parked jobs, which is every job of a
# tenant over its running quota. A crash before the handed-out jobs are
# republished leaves them parked with their slots reserved: the drain timer hands
# them out again, as it does after a drain that did not finish.
# KEYS: as _COMPLETE (all seven), 8 the parked tenants.
# ARGV: as _COMPLETE, 5 the tenant's max running, 6 the tenant, 7 the dispatch lease ms.
# Returns {_COMPLETE's outcome, parked entries handed out...}.
_COMPLETE_HANDING_OUT = (
    "local function complete(KEYS, ARGV)\n"
    + _COMPLETE
    + "end\nlocal function ready(KEYS, ARGV)\n"
    + quotas.READY_SCRIPT
    + """end
local outcome = complete(KEYS, ARGV)
local out = {}
if outcome >= 2 then out = ready({KEYS[5], KEYS[7], KEYS[8]}, {ARGV[5], ARGV[6], ARGV[7], ''}) end
table.insert(out, 1, outcome)
return out
"""
)

# The record only when it is the tenant's: its head carries the tenant (records
# are written with ``"tenant"`` among the first fields, before any nested one), so
# another tenant's record is neither sent nor parsed.
_GET_FOR_TENANT = """
local head = redis.call('GETRANGE', KEYS[1], 0, 1023)
local i = string.find(head, '"tenant":', 1, true)
if not i or string.sub(head, i + 9, i + 8 + #ARGV[1]) ~= ARGV[1] then return false end
return redis.call('GET', KEYS[1])
"""

# Take a free claim, or confirm one this worker holds already (a retried SET NX
# whose first reply was lost must not read as another worker's claim).
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Extend a claim only while this worker still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Drop a claim only while this worker still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class DecisionStore:
    #: the longest wait_done goes without re-reading the record (a lost signal's cost)
    reread_s = 1.0
    """Records are created and completed durably (:mod:`entail.state.durability`):
    both are acknowledged to someone (the API client, the bus). Every write here is
    idempotent, so a call retried after a failover does no harm."""

    def __init__(self, redis: aioredis.Redis, ttl_s: int, *, durability: Durability | None = None) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.durability = durability or Durability(redis)
        self._claim = redis.register_script(_CLAIM)
        self._get_for_tenant = redis.register_script(_GET_FOR_TENANT)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def create(self, record: DecisionRecord, text: str | None = None) -> bool:
        """Store a new record, durably; False if another record has the id (ids are
        never reused; the same record stored by a retried call counts as created).
        ``text``: the record as :func:`~entail.record_json.dump_record` wrote it already.

        :class:`~entail.state.durability.DurabilityNotConfirmed` when no replica confirms."""
        key = keys.decision(record.decision_id)
        stored_text = text if text is not None else _dump(record)
        opened = {record.decision_id: int(time.time() * 1000)}

        def build(pipe: Pipeline) -> None:
            pipe.set(key, stored_text, ex=self.ttl_s, nx=True)
            if not record.done:  # the sweeper's index: ends it if nothing else does
                pipe.zadd(keys.open_decisions(), opened, nx=True)

        stored = (await self.durability.write(build))[0]
        return bool(stored) or _text(await self.redis.get(key)) == stored_text

    async def get(self, tenant: str, decision_id: str) -> DecisionRecord | None:
        """The record, or None when absent or another tenant's (indistinguishable)."""
        raw = await self.get_text(tenant, decision_id)
        if raw is None:
            return None
        record = await parse_record(raw)
        return record if record.tenant == tenant else None

    async def get_text(self, tenant: str, decision_id: str) -> bytes | None:
        """The stored JSON of the record, unparsed (entail.record_text), or None when
        absent or another tenant's. The tenant is checked in Redis on the record's
        head before the record is sent: another tenant's id costs what a missing one does."""
        raw = await self._get_for_tenant(keys=[keys.decision(decision_id)], args=[_tenant_field(tenant)])
        if not raw:
            return None
        return raw if isinstance(raw, bytes) else str(raw).encode()

    async def get_any(self, decision_id: str) -> DecisionRecord | None:
        """The record whatever its tenant (for the services' own use, never an API
        caller's), or None when absent."""
        raw = await self.redis.get(keys.decision(decision_id))
        return None if raw is None else await parse_record(raw)

    async def overdue(self, older_than_ms: int, count: int) -> list[str]:
        """Up to ``count`` ids of decisions still open (not final) that were created
        more than ``older_than_ms`` ago, oldest first."""
        cutoff = int(time.time() * 1000) - older_than_ms
        ids = await self.redis.zrangebyscore(keys.open_decisions(), "-inf", cutoff, start=0, num=count)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def touch_open(self, decision_id: str) -> None:
        """Restart an open decision's deadline (it made progress, or waits its turn)."""
        await self.redis.zadd(keys.open_decisions(), {decision_id: int(time.time() * 1000)}, xx=True)

    async def forget_open(self, decision_id: str) -> None:
        """Take an id off the open index (its record is final, or gone with its TTL)."""
        await self.redis.zrem(keys.open_decisions(), decision_id)

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
                    current = load_record(raw)
                    if current.done:
                        return False
                    running = current.model_copy(
                        update={"status": "running", "worker": worker, "started_at": started_at}
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, _dump(running), keepttl=True)
                    # the sweeper's clock restarts: the deadline counts from the latest start
                    pipe.zadd(keys.open_decisions(), {decision_id: int(time.time() * 1000)}, xx=True)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def complete(self, record: DecisionRecord, *, cache_ttl_s: int | None = None) -> bool:
        """Store a final record durably and signal it; False if another final record
        was already stored. DurabilityNotConfirmed when no replica confirms.

        With ``cache_ttl_s``, a record that succeeded is also remembered in the
        result cache (:class:`~entail.state.cache.ResultCache`) for that long, before
        the done signal and whether or not this store wins: the backend serves only
        a cached decision whose stored record succeeded."""
        stored, _, _ = await self.complete_job(record, cache_ttl_s=cache_ttl_s)
        return stored

    async def complete_job(
        self,
        record: DecisionRecord,
        *,
        cache_ttl_s: int | None = None,
        text: str | None = None,
        hand_out: int | None = None,
    ) -> tuple[bool, bool, list[quotas.ParkedJob]]:
        """:meth:`complete` for the worker that held the job's running slot: whether
        the record was stored, whether its tenant has parked jobs (the slot is given
        back here), and the parked jobs handed out to the free slots.
        ``text``: the record as :func:`~entail.record_json.dump_record` wrote it.

        ``hand_out``: the tenant's running quota; the parked jobs that fit into its
        free slots now are handed out in the same round trip (slots reserved while
        they come back through the bus, left parked until the caller republishes and
        unparks them, :func:`entail.fairness.republish`). Without it, only the flag:
        the caller republishes them with :func:`entail.fairness.drain`, a round trip
        of its own."""
        cache = cache_ttl_s is not None and cache_ttl_s > 0 and record.status == "succeeded"
        script_keys = [
            keys.decision(record.decision_id),
            keys.done_channel(record.decision_id),
            keys.open_decisions(),
            quotas.open_key(record.tenant),  # the tenant's quotas (state/quotas.py)
            quotas.running_key(record.tenant),
            keys.cache(record.tenant, record.ruleset.hash, record.request_hash),
            quotas.parked_key(record.tenant),
        ]
        dumped = text if text is not None else _dump(record)
        args: list[str | int | bytes] = [
            dumped,
            self.ttl_s,
            record.decision_id,
            cache_ttl_s if cache and cache_ttl_s else 0,
        ]
        if hand_out is None:
            outcome = int(await self.durability.script(_COMPLETE, script_keys, args))
            return bool(outcome & 1), bool(outcome & 2), []
        script_keys.append(quotas.PARKED_TENANTS)
        args += [max(1, hand_out), record.tenant, quotas.DISPATCH_LEASE_MS]
        reply = await self.durability.script(_COMPLETE_HANDING_OUT, script_keys, args)
        outcome = int(reply[0])
        ready = [quotas.decode_parked(entry) for entry in reply[1:]]
        return bool(outcome & 1), bool(outcome & 2), ready

    async def wait_done(self, tenant: str, decision_id: str, timeout_s: float) -> DecisionRecord | None:
        """The final record as soon as it exists, or None after ``timeout_s`` (also at
        once when the decision does not exist or is another tenant's).

        Subscribes — and waits for the server to confirm it — before reading, so a
        completion between the read and the subscription cannot be missed. The
        record is re-read after every signal, and at least every second."""
        deadline = time.monotonic() + timeout_s
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(keys.done_channel(decision_id))
            await _await_subscribed(pubsub, deadline)
            while True:
                record = await self.get(tenant, decision_id)
                if record is None or record.done:
                    return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait_s = min(remaining, self.reread_s)
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait_s)
        finally:
            await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]

    async def claim(self, decision_id: str, worker: str, lease_ms: int) -> bool:
        """Take the decision for ``lease_ms`` (SET NX PX); False while another worker holds it."""
        return bool(await self._claim(keys=[keys.claim(decision_id)], args=[worker, lease_ms]))

    async def claim_renew(self, decision_id: str, worker: str, lease_ms: int) -> bool:
        """Extend the lease; False when ``worker`` no longer holds it (expired, taken over)."""
        return bool(await self._renew(keys=[keys.claim(decision_id)], args=[worker, lease_ms]))

    async def release_claim(self, decision_id: str, worker: str | None = None) -> None:
        """Drop the claim; with ``worker``, only while that worker still holds it."""
        if worker is None:
            await self.redis.delete(keys.claim(decision_id))
        else:
            await self._release(keys=[keys.claim(decision_id)], args=[worker])


async def _await_subscribed(pubsub: PubSub, deadline: float) -> None:
    """Wait for the subscribe confirmation: from then on every PUBLISH reaches us.

    ``subscribe`` only sends the command, and the read that follows goes over
    another connection, which the server may serve first."""
    while (remaining := deadline - time.monotonic()) > 0:
        message = await pubsub.get_message(timeout=remaining)
        if message is not None and message["type"] == "subscribe":
            return


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


PARSE_INLINE_MAX_BYTES = 64 * 1024
"""A record larger than this is parsed in a thread: the event loop keeps serving."""


async def parse_record(raw: bytes | str) -> DecisionRecord:
    """A stored record's JSON parsed (in a thread when it is large)."""
    if len(raw) > PARSE_INLINE_MAX_BYTES:
        return await asyncio.to_thread(load_record, raw)
    return load_record(raw)


def _tenant_field(tenant: str) -> str:
    """How the record's JSON spells its tenant field's value, with the comma after it."""
    return json.dumps(tenant, ensure_ascii=False) + ","


def _dump(record: DecisionRecord) -> str:
    return dump_record(record)
