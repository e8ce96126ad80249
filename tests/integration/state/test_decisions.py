"""entail.state.DecisionStore against a real valkey-server."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from support.records import open_record as record

from entail.models import DecisionRecord, utcnow
from entail.state import DecisionStore


async def test_create_get_and_tenant_isolation(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    assert await store.create(pending)
    assert await store.create(pending)  # the same record again: a retried call, idempotent
    assert not await store.create(pending.model_copy(update={"query": ["other(X)"]}))  # ids are never reused
    assert await store.get("acme", pending.decision_id) == pending
    assert await store.get("globex", pending.decision_id) is None  # as if it did not exist
    assert await store.get("acme", "dec_missing") is None
    assert 0 < await redis.ttl(f"entail:decision:{pending.decision_id}") <= 60


async def test_stored_as_json_by_alias(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record(query=[], stats={})
    await store.create(pending)
    raw = await redis.get(f"entail:decision:{pending.decision_id}")
    assert raw is not None
    assert DecisionRecord.model_validate_json(raw) == pending
    assert b'"schema":"entail.decision.v1"' in raw and b'"query":[]' in raw


async def test_mark_running(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    assert not await store.mark_running(pending.decision_id, "w1", utcnow())  # no record
    await store.create(pending)
    assert await store.mark_running(pending.decision_id, "w1", utcnow())
    running = await store.get("acme", pending.decision_id)
    assert running is not None and (running.status, running.worker) == ("running", "w1")
    assert running.query == [] and running.stats == {}  # empty lists stay lists
    assert 0 < await redis.ttl(f"entail:decision:{pending.decision_id}") <= 60  # TTL kept
    await store.complete(pending.model_copy(update={"status": "succeeded"}))
    assert not await store.mark_running(pending.decision_id, "w2", utcnow())  # final stays final


async def test_complete_is_idempotent(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    await store.create(pending)
    final = pending.model_copy(update={"status": "succeeded", "result_hash": "c" * 64})
    assert await store.complete(final)  # this call stored it
    assert not await store.complete(pending.model_copy(update={"status": "failed"}))
    assert await store.complete(final)  # the same record again: a retried call, idempotent
    assert await store.get("acme", pending.decision_id) == final  # the first final record stays
    assert 0 < await redis.ttl(f"entail:decision:{pending.decision_id}") <= 60


async def test_concurrent_completes_store_exactly_one(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    await store.create(pending)
    finals = [pending.model_copy(update={"status": "succeeded", "worker": f"w{i}"}) for i in range(10)]
    stored = await asyncio.gather(*(store.complete(f) for f in finals))
    assert sum(stored) == 1
    winner = finals[stored.index(True)]
    assert await store.get("acme", pending.decision_id) == winner


async def test_wait_done_times_out(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    await store.create(pending)
    t0 = time.monotonic()
    assert await store.wait_done("acme", pending.decision_id, 0.2) is None
    assert 0.2 <= time.monotonic() - t0 < 1.0
    assert await store.wait_done("acme", pending.decision_id, 0) is None


async def test_wait_done_when_completed_later(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    await store.create(pending)
    final = pending.model_copy(update={"status": "failed"})

    async def finish_later() -> None:
        await asyncio.sleep(0.1)
        await store.complete(final)

    t0 = time.monotonic()
    done, _ = await asyncio.gather(store.wait_done("acme", pending.decision_id, 5), finish_later())
    assert done == final
    assert time.monotonic() - t0 < 0.5  # woken by the signal, not by a poll


async def test_wait_done_when_already_done(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    final = record(status="succeeded")
    await store.complete(final)
    t0 = time.monotonic()
    assert await store.wait_done("acme", final.decision_id, 5) == final
    assert await store.wait_done("acme", final.decision_id, 0) == final  # even with no time to wait
    assert time.monotonic() - t0 < 0.5


async def test_wait_done_other_tenant_or_missing_returns_at_once(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    await store.create(pending)
    t0 = time.monotonic()
    assert await store.wait_done("globex", pending.decision_id, 5) is None
    assert await store.wait_done("acme", "dec_missing", 5) is None
    assert time.monotonic() - t0 < 0.5
    await store.complete(pending.model_copy(update={"status": "succeeded"}))
    assert await store.wait_done("globex", pending.decision_id, 5) is None


async def test_wait_done_misses_no_completion_right_after_the_call(redis: aioredis.Redis) -> None:
    """The race the subscribe-then-read order closes: a completion that lands while
    wait_done is starting must wake it (not the periodic re-read, made 30 s here so
    that a finish well before it can only be the signal; no tight timing bound)."""
    store = DecisionStore(redis, ttl_s=60)
    store.reread_s = 30.0
    pendings = [record() for _ in range(20)]
    for p in pendings:
        await store.create(p)

    async def complete_now(p: DecisionRecord) -> None:
        await asyncio.sleep(0)
        await store.complete(p.model_copy(update={"status": "succeeded"}))

    t0 = time.monotonic()
    results = await asyncio.gather(
        *(store.wait_done("acme", p.decision_id, 60) for p in pendings),
        *(complete_now(p) for p in pendings),
    )
    assert all(r is not None and r.status == "succeeded" for r in results[: len(pendings)])
    assert time.monotonic() - t0 < 20  # woken by the signals, not the 30 s re-read


async def test_wait_done_leaves_no_subscription(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    await store.create(pending)
    await store.wait_done("acme", pending.decision_id, 0.05)
    channels = await redis.pubsub_numsub(f"entail:done:{pending.decision_id}")
    assert channels[0][1] == 0


async def test_claims_and_leases(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    assert await store.claim("dec_1", "w1", 150)
    assert not await store.claim("dec_1", "w2", 150)  # the second claim fails
    assert await store.claim_renew("dec_1", "w1", 150)
    assert not await store.claim_renew("dec_1", "w2", 150)  # only the holder renews
    assert 0 < await redis.pttl("entail:claim:dec_1") <= 150
    # the holder died: its lease runs out and another worker can claim
    deadline = time.monotonic() + 2
    while not await store.claim("dec_1", "w2", 150):
        assert time.monotonic() < deadline, "the lease did not expire"
        await asyncio.sleep(0.02)
    assert not await store.claim_renew("dec_1", "w1", 150)  # w1 lost it


async def test_release_claim(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    assert await store.claim("dec_1", "w1", 10_000)
    await store.release_claim("dec_1", "w2")  # not the holder: nothing happens
    assert not await store.claim("dec_1", "w2", 10_000)
    await store.release_claim("dec_1", "w1")
    assert await store.claim("dec_1", "w2", 10_000)
    await store.release_claim("dec_1")  # unconditional
    assert await store.claim("dec_1", "w3", 10_000)
