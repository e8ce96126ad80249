"""A job's start on a worker in one durable round trip: slot, claim, ``running``.

A delivered job used to take three sequential steps before its evaluation, five
round trips in all: take one of its tenant's running slots or park it
(:meth:`~entail.state.quotas.TenantQuotas.acquire_or_park`, durable), claim the
decision id (:meth:`~entail.state.decisions.DecisionStore.claim`), and mark the
record ``running`` (:meth:`~entail.state.decisions.DecisionStore.mark_running`, an
optimistic WATCH/MULTI transaction: three round trips). :data:`_START` does the
three in one script, in that order and with the same rules, through
:class:`~entail.state.durability.Durability` (a parked job's push is acknowledged,
so its parking must be on a replica first).

The record is marked ``running`` only when it is still exactly the text the
worker read and checked (compare and set on the whole record, so Lua never
re-encodes JSON: cjson would turn the record's empty lists into objects).
When it changed in between (the sweeper, a dead letter, another worker), the
slot and the claim are held and the caller falls back to ``mark_running``,
which reads it again and decides.
"""

from __future__ import annotations

from typing import Literal

from . import keys, quotas
from .quotas import OPEN_HORIZON_MS, PARKED_TENANTS, TenantQuotas, encode_parked

# KEYS: 1 running slots, 2 parked list, 3 parked tenants, 4 claim, 5 record,
#       6 the sweeper's open index.
# ARGV: 1 decision id, 2 max running, 3 slot lease ms, 4 parked entry,
#       5 republished ('1'/'0'), 6 tenant, 7 open horizon ms, 8 worker,
#       9 claim lease ms, 10 the record as read, 11 the running record.
_START = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local id = ARGV[1]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZSCORE', KEYS[1], id) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), id)
else
  local queue_free = ARGV[5] == '1' or redis.call('LLEN', KEYS[2]) == 0
  if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) and queue_free then
    redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), id)
    redis.call('PEXPIRE', KEYS[1], ARGV[7])
  else
    redis.call('RPUSH', KEYS[2], ARGV[4])
    redis.call('PEXPIRE', KEYS[2], ARGV[7])
    redis.call('SADD', KEYS[3], ARGV[6])
    return 'parked'
  end
end
if not redis.call('SET', KEYS[4], ARGV[8], 'NX', 'PX', ARGV[9]) then
  if redis.call('GET', KEYS[4]) ~= ARGV[8] then return 'claimed' end
  redis.call('PEXPIRE', KEYS[4], ARGV[9])
end
if redis.call('GET', KEYS[5]) ~= ARGV[10] then return 'changed' end
redis.call('SET', KEYS[5], ARGV[11], 'KEEPTTL')
redis.call('ZADD', KEYS[6], 'XX', now_ms, id)
return 'running'
"""

Start = Literal["running", "changed", "claimed", "parked"]
"""``running``: slot, claim and record are the job's, evaluate it. ``changed``: slot
and claim held, the record changed since it was read (mark it running the slow
way, or stop). ``claimed``: slot held, another worker holds the claim. ``parked``:
over the tenant's running quota, the job waits in its list (acknowledge it)."""


async def start_job(
    q: TenantQuotas,
    *,
    tenant: str,
    decision_id: str,
    job_data: bytes,
    job_attributes: dict[str, str],
    worker: str,
    claim_lease_ms: int,
    record_as_read: bytes,
    running_record: str,
) -> Start:
    """Take a running slot (or park), claim, and mark the record running, as one
    durable script. DurabilityNotConfirmed when no replica confirms."""
    republished = job_attributes.get(quotas.PARKED_ATTRIBUTE) == "1"
    parked = encode_parked(decision_id, job_data, {**job_attributes, quotas.PARKED_ATTRIBUTE: "1"})
    script_keys = [
        quotas.running_key(tenant),
        quotas.parked_key(tenant),
        PARKED_TENANTS,
        keys.claim(decision_id),
        keys.decision(decision_id),
        keys.open_decisions(),
    ]
    args: list[str | int | bytes] = [
        decision_id,
        q.max_running,
        q.lease_ms,
        parked,
        "1" if republished else "0",
        tenant,
        OPEN_HORIZON_MS,
        worker,
        claim_lease_ms,
        record_as_read,
        running_record,
    ]
    (outcome,) = await q.durability.write(
        lambda pipe: pipe.eval(_START, len(script_keys), *script_keys, *args)
    )
    text = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
    if text not in ("running", "changed", "claimed", "parked"):
        raise RuntimeError(f"unexpected job start outcome {text!r}")
    return text  # type: ignore[return-value]
