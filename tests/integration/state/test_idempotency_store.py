"""entail.idempotency and its Redis store against a real valkey-server: one
winner per key, fingerprints, owners, leases and TTLs."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from entail.idempotency import (
    Claim,
    Idempotency,
    InvalidKey,
    KeyInFlight,
    KeyReused,
    StoredResponse,
    fingerprint,
)
from entail.state.idempotency import IdempotencyStore, idempotency_key


def _idempotency(redis: aioredis.Redis, ttl_s: float = 60, in_flight_s: float = 30) -> Idempotency:
    return Idempotency(IdempotencyStore(redis), ttl_s, in_flight_s)


async def test_racing_requests_have_one_winner(redis: aioredis.Redis) -> None:
    idem = _idempotency(redis)
    fp = fingerprint("POST /v1/decisions", {"a": 1})
    outcomes = await asyncio.gather(
        *(idem.begin("acme", "k1", fp) for _ in range(20)), return_exceptions=True
    )
    claims = [o for o in outcomes if isinstance(o, Claim)]
    assert len(claims) == 1
    assert all(isinstance(o, KeyInFlight) for o in outcomes if o is not claims[0])
    body = b'{"decision_id":"dec_1","x":"\\u00e9\xc3\xa9"}'
    await idem.finish(claims[0], 202, {"Location": "/v1/decisions/dec_1", "RateLimit-Limit": "9"}, body)
    replay = await idem.begin("acme", "k1", fp)
    assert replay == StoredResponse(202, {"Location": "/v1/decisions/dec_1"}, body)
    with pytest.raises(KeyReused):
        await idem.begin("acme", "k1", fingerprint("POST /v1/decisions", {"a": 2}))
    with pytest.raises(KeyReused):  # the same body on another operation
        await idem.begin("acme", "k1", fingerprint("POST /v1/decisions/batch", {"a": 1}))
    assert isinstance(await idem.begin("globex", "k1", fp), Claim)  # per tenant
    assert 0 < await redis.pttl(idempotency_key("acme", "k1")) <= 60_000


async def test_errors_free_the_key_and_only_the_owner_writes(redis: aioredis.Redis) -> None:
    idem = _idempotency(redis)
    fp = fingerprint("op", {})
    first = await idem.begin("acme", "k2", fp)
    assert isinstance(first, Claim)
    await idem.finish(first, 503, {}, b"{}")  # not a success: not kept
    second = await idem.begin("acme", "k2", fp)
    assert isinstance(second, Claim)
    # a request whose lease ran out (another took the key) cannot write or free it
    stale = Claim("acme", "k2", "not-the-owner")
    await idem.finish(stale, 200, {}, b"stale")
    await idem.abandon(stale)
    with pytest.raises(KeyInFlight):
        await idem.begin("acme", "k2", fp)
    await idem.finish(second, 200, {}, b"mine")
    assert await idem.begin("acme", "k2", fp) == StoredResponse(200, {}, b"mine")


async def test_leases_and_ttls_expire(redis: aioredis.Redis) -> None:
    idem = _idempotency(redis, ttl_s=0.2, in_flight_s=0.2)
    fp = fingerprint("op", {})
    assert isinstance(await idem.begin("acme", "k3", fp), Claim)
    await asyncio.sleep(0.3)  # the holder died mid-request: the key is free again
    claim = await idem.begin("acme", "k3", fp)
    assert isinstance(claim, Claim)
    await idem.finish(claim, 201, {}, b"x")
    assert isinstance(await idem.begin("acme", "k3", fp), StoredResponse)
    await asyncio.sleep(0.3)
    assert isinstance(await idem.begin("acme", "k3", fp), Claim)


async def test_keys_are_checked(redis: aioredis.Redis) -> None:
    idem = _idempotency(redis)
    for bad in ("", "a b", "x" * 256, "é", "new\nline"):
        with pytest.raises(InvalidKey):
            await idem.begin("acme", bad, "fp")
    assert isinstance(await idem.begin("acme", "A-z_0.9:~+/=" + "x" * 243, "fp"), Claim)
