"""The sweeper against a real Redis: which open decisions it fails, which it
leaves alone, and that each is failed, signalled and published once."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from support.records import loan_pending

from entail.bus.port import DECISIONS
from entail.bus.redis_streams import RedisStreamsBus, stream_key
from entail.models import utcnow
from entail.settings import Settings
from entail.state import keys
from entail.state.decisions import DecisionStore
from entail.state.quotas import PARKED_TENANTS
from entail.sweeper import sweep_once

OPEN = keys.open_decisions()


async def _open(store: DecisionStore, tenant: str = "acme") -> str:
    record = loan_pending(tenant)
    assert await store.create(record)
    return record.decision_id


async def _age(redis: aioredis.Redis, decision_id: str) -> None:
    """Make an open decision look accepted long ago."""
    await redis.zadd(OPEN, {decision_id: 0}, xx=True)


async def test_only_overdue_open_decisions_are_failed_once(redis: aioredis.Redis, settings: Settings) -> None:
    store, bus = DecisionStore(redis, 3600), RedisStreamsBus(redis, 10_000)
    overdue, fresh = await _open(store), await _open(store)
    await _age(redis, overdue)
    assert await store.overdue(settings.decision_deadline_s * 1000, 10) == [overdue]

    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.done_channel(overdue))
    assert await sweep_once(store, bus, settings) == 1
    record = await store.get("acme", overdue)
    assert record is not None and record.status == "failed" and record.error is not None
    assert record.error.code == "deadline-exceeded"
    assert str(settings.decision_deadline_s) in record.error.message
    messages = [await pubsub.get_message(timeout=1) for _ in range(2)]
    assert any(m is not None and m["data"] == b"done" for m in messages)
    await pubsub.aclose()  # type: ignore[no-untyped-call]

    published = [json.loads(f[b"data"]) for _, f in await redis.xrange(stream_key(DECISIONS))]
    assert [(p["decision_id"], p["status"]) for p in published] == [(overdue, "failed")]
    assert await redis.zscore(OPEN, overdue) is None
    fresh_record = await store.get("acme", fresh)
    assert fresh_record is not None and fresh_record.status == "pending"

    assert await sweep_once(store, bus, settings) == 0  # nothing twice
    assert await redis.xlen(stream_key(DECISIONS)) == 1


async def test_a_started_decision_counts_from_its_start(redis: aioredis.Redis, settings: Settings) -> None:
    store, bus = DecisionStore(redis, 3600), RedisStreamsBus(redis, 10_000)
    decision_id = await _open(store)
    await _age(redis, decision_id)
    assert await store.mark_running(decision_id, "w1", utcnow())
    assert await sweep_once(store, bus, settings) == 0
    record = await store.get("acme", decision_id)
    assert record is not None and record.status == "running"


async def test_a_decision_waiting_behind_its_tenants_parked_jobs_is_not_failed(
    redis: aioredis.Redis, settings: Settings
) -> None:
    store, bus = DecisionStore(redis, 3600), RedisStreamsBus(redis, 10_000)
    decision_id = await _open(store, "busy")
    await _age(redis, decision_id)
    await redis.sadd(PARKED_TENANTS, "busy")
    assert await sweep_once(store, bus, settings) == 0
    assert (await redis.zscore(OPEN, decision_id) or 0) > 0  # its clock restarted
    await redis.srem(PARKED_TENANTS, "busy")
    await _age(redis, decision_id)
    assert await sweep_once(store, bus, settings) == 1


async def test_completed_and_expired_decisions_leave_the_index(
    redis: aioredis.Redis, settings: Settings
) -> None:
    store, bus = DecisionStore(redis, 3600), RedisStreamsBus(redis, 10_000)
    done, gone = await _open(store), await _open(store)
    record = await store.get("acme", done)
    assert record is not None
    assert await store.complete(record.model_copy(update={"status": "succeeded", "completed_at": utcnow()}))
    assert await redis.zscore(OPEN, done) is None
    await redis.delete(keys.decision(gone))  # its TTL ran out
    await _age(redis, gone)
    assert await sweep_once(store, bus, settings) == 0
    assert await redis.zcard(OPEN) == 0
    assert await redis.xlen(stream_key(DECISIONS)) == 0
