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

The worker need not read the record first: a job's pending record is a function
of the job itself (the backend builds both from the same request), so the worker
passes the record it *expects* (``expected=True``). The script compares it with
the stored one before it takes anything; equal, it goes on as above, in the same
atomic step (one round trip per job instead of two); different or absent (a
redelivery of a job that started or ended, a job of an older or newer release,
one nobody created), it takes nothing and returns the stored text
(:class:`Stored`), and the caller checks it and starts the way it did before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import keys, quotas
from .quotas import OPEN_HORIZON_MS, PARKED_TENANTS, TenantQuotas, encode_parked

# KEYS: 1 running slots, 2 parked list, 3 parked tenants, 4 claim, 5 record,
#       6 the sweeper's open index.
# ARGV: 1 decision id, 2 max running, 3 slot lease ms, 4 parked entry,
#       5 republished ('1'/'0'), 6 tenant, 7 open horizon ms, 8 worker,
#       9 claim lease ms, 10 the record as read (or expected), 11 the running record,
#       12 '1' when ARGV[10] is the record expected, not read: compared first, and
#       when it is not the stored one nothing is taken and {'read', record} returned.
_START = """
local id = ARGV[1]
local expected = ARGV[12] == '1'
if expected then
  local current = redis.call('GET', KEYS[5])
  if current ~= ARGV[10] then return {'read', current} end
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
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
if not expected and redis.call('GET', KEYS[5]) ~= ARGV[10] then return 'changed' end
redis.call('SET', KEYS[5], ARGV[11], 'KEEPTTL')
redis.call('ZADD', KEYS[6], 'XX', now_ms, id)
return 'running'
"""

Start = Literal["running", "changed", "claimed", "parked"]
"""``running``: slot, claim and record are the job's, evaluate it. ``changed``: slot
and claim held, the record changed since it was read (mark it running the slow
way, or stop). ``claimed``: slot held, another worker holds the claim. ``parked``:
over the tenant's running quota, the job waits in its list (acknowledge it)."""


@dataclass(frozen=True)
class Stored:
    """The stored record was not the one expected (``expected=True``): nothing was
    taken. ``text`` is the record as stored (None when there is none)."""

    text: bytes | None


async def start_job(
    q: TenantQuotas,
    *,
    tenant: str,
    decision_id: str,
    job_data: bytes,
    job_attributes: dict[str, str],
    worker: str,
    claim_lease_ms: int,
    record_as_read: bytes | str,
    running_record: str,
    expected: bool = False,
) -> Start | Stored:
    """Take a running slot (or park), claim, and mark the record running, as one
    durable script. DurabilityNotConfirmed when no replica confirms.

    ``expected``: ``record_as_read`` is the record the caller expects, not one it
    read; :class:`Stored` (nothing taken) when the stored record is another."""
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
        "1" if expected else "0",
    ]
    outcome = await q.durability.script(_START, script_keys, args)
    if isinstance(outcome, list):
        if not expected or len(outcome) != 2 or _text(outcome[0]) != "read":
            raise RuntimeError(f"unexpected job start outcome {outcome!r}")
        stored = outcome[1]
        if stored is None or isinstance(stored, bytes):
            return Stored(stored)
        return Stored(str(stored).encode())
    text = _text(outcome)
    if text not in ("running", "changed", "claimed", "parked"):
        raise RuntimeError(f"unexpected job start outcome {text!r}")
    return text  # type: ignore[return-value]


def _text(reply: object) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)
