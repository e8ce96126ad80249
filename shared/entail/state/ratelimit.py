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
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ReadOnlyError

from . import keys
from .direct_calls import run_script
from .durability import Durability
from .registry import RESOLVE_NAME_LUA, NameRef
from .retry import retry_until
from .stream_add import STREAM_ADD_LUA, StreamAdd

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


# A repeated cache hit in one round trip (entail.decisions.repeat_hit): the token,
# the version the name resolves to now, and, only when the token is granted and the
# version is the one the hit was built against (its entry's SHA-1), the hit's
# record (SET NX, as DecisionStore.create stores a final record) and its audit
# message (the XADD the bus would send: stream, MAXLEN, then its fields). A retry
# whose first attempt did write finds the record stored and adds no second message.
# KEYS: bucket, the NameRef's three keys, the record, the stream. ARGV: rate,
# burst, token, the NameRef's three arguments, the expected SHA-1, the record, its
# TTL, the XADD's trimming ('' or 'MAXLEN', '~' or '=', the length), its fields.
_TAKE_RESOLVING_SERVING = (
    TAKE_LUA
    + RESOLVE_NAME_LUA
    + STREAM_ADD_LUA
    + """
local taken = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
if taken[1] ~= 1 then return {taken[1], taken[2], false, 0} end
local version = resolve_name(KEYS[2], KEYS[3], KEYS[4], ARGV[4], ARGV[5], ARGV[6])
if not version or redis.sha1hex(version) ~= ARGV[7] then return {taken[1], taken[2], version, 0} end
local stored = redis.call('SET', KEYS[5], ARGV[8], 'EX', ARGV[9], 'NX')
if not stored then return {taken[1], taken[2], version, 1} end
stream_add(KEYS[6], 10)
return {taken[1], taken[2], version, 1}
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
    def __init__(self, redis: aioredis.Redis, *, retry_window_s: float = 1.0) -> None:
        self.redis = redis
        self.retry_window_s = retry_window_s

    async def take(self, bucket: str, rate_per_s: float, burst: int) -> RateDecision:
        """Take one token from ``bucket`` (:func:`key_bucket`, :func:`address_bucket`:
        ``burst`` tokens, refilled at ``rate_per_s``); not allowed when less than
        one token is left."""
        _check(rate_per_s, burst)
        token = secrets.token_hex(8)
        allowed, raw = await self._script(_TAKE, [keys.rate_bucket(bucket)], [rate_per_s, burst, token])
        return _decision(allowed, raw, rate_per_s, burst)

    async def take_resolving(
        self, bucket: str, rate_per_s: float, burst: int, ruleset: NameRef
    ) -> tuple[RateDecision, bytes | None]:
        """:meth:`take`, and the stored entry of the version ``ruleset`` names
        (:func:`entail.state.registry.name_ref`; None when there is none, or when
        the token is refused) in the same round trip."""
        _check(rate_per_s, burst)
        token = secrets.token_hex(8)
        allowed, raw, version = await self._script(
            _TAKE_RESOLVING,
            [keys.rate_bucket(bucket), *ruleset.keys],
            [rate_per_s, burst, token, *ruleset.args],
        )
        return _decision(allowed, raw, rate_per_s, burst), version or None

    async def take_resolving_serving(
        self,
        bucket: str,
        rate_per_s: float,
        burst: int,
        ruleset: NameRef,
        expected_sha1: str,
        record_key: str,
        record: str,
        ttl_s: int,
        message: StreamAdd,
        durability: Durability,
    ) -> tuple[RateDecision, bytes | None, bool]:
        """:meth:`take_resolving`, and when the token is granted and ``ruleset`` still
        names the version entry whose SHA-1 is ``expected_sha1``, ``record`` stored
        under ``record_key`` (never over another) and ``message`` added, all in one
        script: (the token, the entry the name resolves to, whether it was served).

        A durable write (``durability``): with replicas the script is sent as
        ``EVAL`` (a promoted replica has no script cache) followed by ``WAIT``;
        without (none asked for, or none connected: ``Durability.write`` would not
        wait either), as ``EVALSHA`` (reloaded after a restart or a failover). A retried call
        gets its first attempt's token back, and stores and adds nothing twice."""
        _check(rate_per_s, burst)
        token = secrets.token_hex(8)
        script_keys = [keys.rate_bucket(bucket), *ruleset.keys, record_key, message.stream]
        args: list[Any] = [rate_per_s, burst, token, *ruleset.args, expected_sha1, record, ttl_s]
        args += message.args()
        if durability.replicas == 0 or await durability.connected_replicas() == 0:
            reply = await self._script(_TAKE_RESOLVING_SERVING, script_keys, args, durability.retry_window_s)
        else:

            def build(pipe: Pipeline) -> None:
                pipe.eval(_TAKE_RESOLVING_SERVING, len(script_keys), *script_keys, *args)

            (reply,) = await durability.write(build)
        allowed, raw, version, served = reply
        return _decision(allowed, raw, rate_per_s, burst), version or None, served == 1

    async def _script(
        self, text: str, script_keys: list[str], args: list[Any], window_s: float | None = None
    ) -> Any:
        """The script by SHA1 on a direct connection (entail.state.direct_calls:
        without the pool's per-call work; its text only after a NOSCRIPT). Every
        script here is idempotent (the take's token; the hit's SET NX), so a
        connection error's resend through the client's path (reconnect, Sentinel
        lookup, retries) and a READONLY reply's retry within the window are safe."""

        async def attempt() -> Any:
            return await run_script(self.redis, text, script_keys, args)

        window = self.retry_window_s if window_s is None else window_s
        return await retry_until(window, attempt, (ReadOnlyError,))


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
