"""A new decision's whole write at submit, in one durable round trip.

Submitting an uncached decision used to take three sequential round trips, each
its own script or pipeline: admit it against the tenant's open quota
(:mod:`entail.state.quotas`), create its ``pending`` record and put it on the
sweeper's open index (:meth:`~entail.state.decisions.DecisionStore.create`), then
take one of the tenant's running slots or park the job. :data:`_ADMIT_CREATE_DISPATCH`
does the three steps in one script, in that order and with the same rules; the
script goes through :class:`~entail.state.durability.Durability`, so with replicas
its ``WAIT`` follows it on the same connection and the client is answered only
once the record (and the parked job, if parked) is on a replica.

Every step stays idempotent, so a call retried after a lost reply (a failover)
does no harm: an id already admitted is not admitted twice (nor refused for a
quota it already counts towards), the very same record stored already counts as
created, and a slot already held is renewed, not taken twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import keys, quotas
from .quotas import OPEN_HORIZON_MS, PARKED_TENANTS, TenantQueueFull, TenantQuotas, encode_parked
from .stream_add import STREAM_ADD_LUA, StreamAdd

# KEYS: 1 open set, 2 record, 3 the sweeper's open index, 4 running slots,
#       5 parked list, 6 parked tenants, 7 the jobs' stream (or KEYS[1], unused).
# ARGV: 1 admit ('1', or '0' when the caller admitted the id already), 2 max open,
#       3 open horizon ms, 4 decision id, 5 record JSON, 6 record TTL s,
#       7 max running, 8 dispatch lease ms, 9 parked entry, 10 tenant,
#       11 publish here ('1': the job's XADD, ARGV 12.. as stream_add reads them;
#       added with the slot it is reserved, so a retry that finds the slot held
#       adds nothing twice).
# Returns {'full', free} when the open quota has no room (nothing written),
# {'taken', 0} when the id belongs to another record (nothing else written),
# else {'dispatch', 1} (slot reserved: publish the job) or {'dispatch', 0} (parked).
_ADMIT_CREATE_DISPATCH = (
    STREAM_ADD_LUA
    + """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local id = ARGV[4]
if ARGV[1] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[3]))
  if not redis.call('ZSCORE', KEYS[1], id) then
    local open = redis.call('ZCARD', KEYS[1])
    if open + 1 > tonumber(ARGV[2]) then return {'full', tonumber(ARGV[2]) - open} end
    redis.call('ZADD', KEYS[1], now_ms, id)
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
if not redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6], 'NX') then
  if redis.call('GET', KEYS[2]) ~= ARGV[5] then return {'taken', 0} end
end
redis.call('ZADD', KEYS[3], 'NX', now_ms, id)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms)
if redis.call('ZSCORE', KEYS[4], id) then
  redis.call('ZADD', KEYS[4], now_ms + tonumber(ARGV[8]), id)
  return {'dispatch', 1}
end
if redis.call('ZCARD', KEYS[4]) < tonumber(ARGV[7]) and redis.call('LLEN', KEYS[5]) == 0 then
  redis.call('ZADD', KEYS[4], now_ms + tonumber(ARGV[8]), id)
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
  if ARGV[11] == '1' then stream_add(KEYS[7], 12) end
  return {'dispatch', 1}
end
redis.call('RPUSH', KEYS[5], ARGV[9])
redis.call('PEXPIRE', KEYS[5], ARGV[3])
redis.call('SADD', KEYS[6], ARGV[10])
return {'dispatch', 0}
"""
)


class DecisionIdTaken(RuntimeError):
    """Another record is stored under the new decision's id (ids are never reused)."""


@dataclass(frozen=True)
class Dispatch:
    """What the submit script did with the job: ``publish`` it now (a running slot
    of its tenant is reserved for it), or it was ``parked`` until one frees."""

    action: Literal["publish", "parked"]
    # the script added the job's message itself (or the first attempt of a retried call did)
    published: bool = False


async def admit_create_dispatch(
    q: TenantQuotas,
    *,
    tenant: str,
    decision_id: str,
    record_json: str,
    ttl_s: int,
    job_data: bytes,
    job_attributes: dict[str, str],
    dispatch_lease_ms: int,
    admit: bool,
    publish: StreamAdd | None = None,
) -> Dispatch:
    """Admit (unless the caller did), create the pending record and reserve a running
    slot or park the job, atomically and durably. ``publish``: the job's message as
    the bus would add it (entail.bus.port.InStoreBus), added by the script when it
    reserves the slot: then a ``publish`` dispatch is published already
    (:attr:`Dispatch.published`), one round trip fewer.

    :class:`~entail.state.quotas.TenantQueueFull` (nothing written) when the
    tenant's open quota has no room; :class:`DecisionIdTaken` when another record
    holds the id; :class:`~entail.state.durability.DurabilityNotConfirmed` when no
    replica confirms (the write may have happened)."""
    parked = encode_parked(decision_id, job_data, {**job_attributes, quotas.PARKED_ATTRIBUTE: "1"})
    script_keys = [
        quotas.open_key(tenant),
        keys.decision(decision_id),
        keys.open_decisions(),
        quotas.running_key(tenant),
        quotas.parked_key(tenant),
        PARKED_TENANTS,
        publish.stream if publish is not None else quotas.open_key(tenant),
    ]
    args: list[str | int] = [
        "1" if admit else "0",
        q.max_open,
        OPEN_HORIZON_MS,
        decision_id,
        record_json,
        ttl_s,
        q.max_running,
        dispatch_lease_ms,
        parked,
        tenant,
        "1" if publish is not None else "0",
        *(publish.args() if publish is not None else ()),
    ]
    ((kind, value),) = await q.durability.write(
        lambda pipe: pipe.eval(_ADMIT_CREATE_DISPATCH, len(script_keys), *script_keys, *args)
    )
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "full":
        raise TenantQueueFull(tenant, q.max_open, int(value), 1)
    if kind == "taken":
        raise DecisionIdTaken(f"decision id {decision_id} is taken by another record")
    return Dispatch("publish" if int(value) else "parked", published=publish is not None and bool(int(value)))
