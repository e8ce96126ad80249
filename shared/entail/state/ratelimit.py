"""Rate limits: one token bucket per API key (tenant + key id) and one per client
address for unauthenticated requests, updated atomically in Lua.

The script reads the server clock (``TIME``), so every backend instance agrees
on refills whatever its own clock says. Each take carries a random token that the
bucket remembers with its outcome: a take retried after its reply was lost (a
failover) gets the same outcome again instead of a second token.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from . import keys
from .registry import RESOLVE_NAME_LUA, NameRef

# the take as a Lua function: its own script, and the first part of the decision
# routes' take + resolve (one round trip for the token and the ruleset version)
TAKE_LUA = """
local function take(bucket, rate, burst, token)
  local now_parts = redis.call('TIME')
  local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
  local state = redis.call('HMGET', bucket, 'tokens', 'at', 'take', 'allowed')
  if state[3] == token then return {tonumber(state[4]), state[1]} end
  local tokens = tonumber(state[1])
  local at = tonumber(state[2])
  if tokens == nil then tokens = burst; at = now end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  local allowed = 0
  if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
  -- %.6f: tostring keeps 14 digits, which would round the time to 0.1 ms
  redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', string.format('%.6f', now),
    'take', token, 'allowed', allowed)
  -- gone once it would be full again anyway (capped: a huge number would print as 1e+15)
  redis.call('PEXPIRE', bucket, math.min(math.ceil(burst / rate * 1000) + 1000, 1e12))
  return {allowed, tostring(tokens)}
end
"""

_TAKE = TAKE_LUA + "return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])\n"

# KEYS: the bucket, then the NameRef's keys; ARGV: rate, burst, token, then the
# NameRef's arguments. The version is read only when the token is granted: a
# refused request is answered 429 whatever it names.
_TAKE_RESOLVING = (
    TAKE_LUA
    + RESOLVE_NAME_LUA
    + """
local taken = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
local version = false
if taken[1] == 1 then version = resolve_name(KEYS[2], KEYS[3], KEYS[4], ARGV[4], ARGV[5], ARGV[6]) end
return {taken[1], taken[2], version}
"""
)


def key_bucket(tenant: str, key_id: str) -> str:
    """The bucket of one API key: its tenant and id (two tenants' keys may share an
    id), JSON-encoded so that no (tenant, id) pair can spell another's."""
    return "key:" + json.dumps([tenant, key_id], separators=(",", ":"))


def address_bucket(address: str) -> str:
    """The bucket of the unauthenticated requests (401s) of one client address."""
    return f"addr:{address}"


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one :meth:`RateLimiter.take`, ready for ``RateLimit-*`` headers."""

    allowed: bool
    remaining: int
    limit: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # until one token is available (0 when allowed)


class RateLimiter:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._take = redis.register_script(_TAKE)
        self._take_resolving = redis.register_script(_TAKE_RESOLVING)

    async def take(self, bucket: str, rate_per_s: float, burst: int) -> RateDecision:
        """Take one token from ``bucket`` (:func:`key_bucket`, :func:`address_bucket`:
        ``burst`` tokens, refilled at ``rate_per_s``); not allowed when less than
        one token is left."""
        _check(rate_per_s, burst)
        token = secrets.token_hex(8)
        allowed, raw = await self._take(keys=[keys.rate_bucket(bucket)], args=[rate_per_s, burst, token])
        return _decision(allowed, raw, rate_per_s, burst)

    async def take_resolving(
        self, bucket: str, rate_per_s: float, burst: int, ruleset: NameRef
    ) -> tuple[RateDecision, bytes | None]:
        """:meth:`take`, and the stored entry of the version ``ruleset`` names
        (:func:`entail.state.registry.name_ref`; None when there is none, or when
        the token is refused) in the same round trip."""
        _check(rate_per_s, burst)
        token = secrets.token_hex(8)
        allowed, raw, version = await self._take_resolving(
            keys=[keys.rate_bucket(bucket), *ruleset.keys], args=[rate_per_s, burst, token, *ruleset.args]
        )
        return _decision(allowed, raw, rate_per_s, burst), version or None


def _check(rate_per_s: float, burst: int) -> None:
    if rate_per_s <= 0 or burst < 1:
        raise ValueError(f"rate limit needs rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")


def _decision(allowed: int, raw: bytes | str, rate_per_s: float, burst: int) -> RateDecision:
    tokens = float(raw)
    return RateDecision(
        allowed=bool(allowed),
        remaining=max(0, math.floor(tokens)),
        limit=burst,
        reset_s=(burst - tokens) / rate_per_s,
        retry_after_s=0.0 if allowed else (1 - tokens) / rate_per_s,
    )
