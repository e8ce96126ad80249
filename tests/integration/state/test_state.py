"""entail.state against a real valkey-server."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from entail.models import DecisionRecord, RulesetRef, new_decision_id, utcnow
from entail.state import DecisionStore, RateLimiter, ResultCache, RulesetRegistry
from entail.state.embedded import EmbeddedRedis
from entail.state.registry import source_hash


def record(tenant: str = "acme", status: str = "pending", **extra: object) -> DecisionRecord:
    return DecisionRecord(
        decision_id=new_decision_id(),
        tenant=tenant,
        ruleset=RulesetRef(tenant=tenant, name="r", version=1, hash="a" * 64),
        request_hash="b" * 64,
        status=status,  # type: ignore[arg-type]
        submitted_at=utcnow(),
        **extra,  # type: ignore[arg-type]
    )


# decisions ---------------------------------------------------------------------


async def test_decision_lifecycle_and_tenant_isolation(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    assert await store.create(pending)
    assert not await store.create(pending)  # ids are never reused
    assert (await store.get("acme", pending.decision_id)) == pending
    assert await store.get("globex", pending.decision_id) is None
    assert await store.get("acme", "dec_missing") is None
    assert await store.mark_running(pending.decision_id, "w1", utcnow())
    running = await store.get("acme", pending.decision_id)
    assert running is not None and (running.status, running.worker) == ("running", "w1")
    final = pending.model_copy(update={"status": "succeeded", "result_hash": "c" * 64})
    assert await store.complete(final)
    other = pending.model_copy(update={"status": "failed"})
    assert not await store.complete(other)  # the first final record stays
    stored = await store.get("acme", pending.decision_id)
    assert stored is not None and stored.status == "succeeded"
    assert not await store.mark_running(pending.decision_id, "w2", utcnow())
    assert 0 < await redis.ttl(f"entail:decision:{pending.decision_id}") <= 60


async def test_wait_done(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    pending = record()
    await store.create(pending)
    t0 = time.monotonic()
    assert await store.wait_done("acme", pending.decision_id, 0.2) is None
    assert time.monotonic() - t0 >= 0.2

    async def finish_later() -> None:
        await asyncio.sleep(0.1)
        await store.complete(pending.model_copy(update={"status": "failed"}))

    task = asyncio.create_task(finish_later())
    done = await store.wait_done("acme", pending.decision_id, 5)
    await task
    assert done is not None and done.status == "failed"
    # already done: answers at once; another tenant never sees it
    assert (await store.wait_done("acme", pending.decision_id, 5)) == done
    assert await store.wait_done("globex", pending.decision_id, 0.1) is None


async def test_claims_and_leases(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    assert await store.claim("dec_1", "w1", 200)
    assert not await store.claim("dec_1", "w2", 200)
    assert await store.claim_renew("dec_1", "w1", 200)
    assert not await store.claim_renew("dec_1", "w2", 200)  # only the holder renews
    await asyncio.sleep(0.3)  # the holder died: its lease runs out
    assert await store.claim("dec_1", "w2", 200)
    await store.release_claim("dec_1")
    assert await store.claim("dec_1", "w3", 200)


# cache -------------------------------------------------------------------------


async def test_result_cache(redis: aioredis.Redis) -> None:
    cache = ResultCache(redis)
    assert await cache.get("acme", "h", "r") is None
    await cache.put("acme", "h", "r", "dec_1", 60)
    assert await cache.get("acme", "h", "r") == "dec_1"
    assert await cache.get("globex", "h", "r") is None


# registry ----------------------------------------------------------------------


async def test_publish_versions_and_idempotence(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    v1, created = await reg.publish("acme", "loan", "a(1).", "first", [], "k1")
    assert created and v1.version == 1 and v1.hash == source_hash("a(1).")
    same, created = await reg.publish("acme", "loan", "a(1).", "again", [], "k2")
    assert not created and same == v1
    v2, _ = await reg.publish("acme", "loan", "a(2).", "", [{"name": "t", "query": []}], "k1")
    assert v2.version == 2 and v2.tests == [{"name": "t", "query": []}]
    back, created = await reg.publish("acme", "loan", "a(1).", "rollback", [], "k1")
    assert created and back.version == 3  # old source again: a new version
    assert [v.version for v in await reg.versions("acme", "loan")] == [1, 2, 3]
    assert await reg.source(v1.hash) == "a(1)."
    summary = await reg.summary("acme", "loan")
    assert summary is not None and summary.latest == 3
    with pytest.raises(ValueError, match="invalid ruleset name"):
        await reg.publish("acme", "9bad", "a.", "", [], "k1")


async def test_concurrent_publishes_get_distinct_versions(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    results = await asyncio.gather(*(reg.publish("acme", "c", f"p({i}).", "", [], "k") for i in range(10)))
    assert sorted(v.version for v, created in results if created) == list(range(1, 11))


async def test_resolve_forms_and_tenant_isolation(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    v1, _ = await reg.publish("acme", "loan", "a(1).", "", [], "k")
    v2, _ = await reg.publish("acme", "loan", "a(2).", "", [], "k")
    await reg.set_tag("acme", "loan", "prod", 1, "k")
    assert (await reg.resolve("acme", "loan")) == v2
    assert (await reg.resolve("acme", "loan@latest")) == v2
    assert (await reg.resolve("acme", "loan@1")) == v1
    assert (await reg.resolve("acme", "loan@prod")) == v1
    assert (await reg.resolve("acme", v1.hash)) == v1
    assert await reg.resolve("acme", "loan@9") is None
    assert await reg.resolve("acme", "loan@nosuchtag") is None
    assert await reg.resolve("acme", "nope") is None
    assert await reg.resolve("globex", "loan") is None
    assert await reg.resolve("globex", v1.hash) is None  # a hash is not a way into another tenant
    assert await reg.list("globex") == []


async def test_tags_history(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    await reg.publish("acme", "loan", "a(1).", "", [], "k")
    await reg.publish("acme", "loan", "a(2).", "", [], "k")
    first = await reg.set_tag("acme", "loan", "prod", 1, "alice")
    assert (first.previous, first.moved_by) == (None, "alice")
    second = await reg.set_tag("acme", "loan", "prod", 2, "bob")
    assert second.previous == 1
    history = await reg.tag_history("acme", "loan")
    assert [(m.version, m.moved_by) for m in history] == [(2, "bob"), (1, "alice")]
    assert (await reg.list("acme"))[0].tags == {"prod": 2}
    for bad in ("Prod", "1", "latest", "a b", "x" * 40):
        with pytest.raises(ValueError, match="invalid tag"):
            await reg.set_tag("acme", "loan", bad, 1, "k")


# rate limits -------------------------------------------------------------------


async def test_token_bucket(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    decisions = [await limiter.take("key1", 10.0, 5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[0].remaining == 4 and decisions[0].limit == 5
    refused = decisions[-1]
    assert refused.remaining == 0 and 0 < refused.retry_after_s <= 0.1
    assert (await limiter.take("key2", 10.0, 5)).allowed  # buckets are per key
    await asyncio.sleep(0.12)
    assert (await limiter.take("key1", 10.0, 5)).allowed  # refilled
    assert 0 < await redis.pttl("entail:rl:key1") <= 1500  # idle buckets vanish


async def test_token_bucket_is_atomic_under_concurrency(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    results = await asyncio.gather(*(limiter.take("k", 0.001, 20) for _ in range(50)))
    assert sum(r.allowed for r in results) == 20


# the embedded server -----------------------------------------------------------


def test_embedded_server_starts_and_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r").start()
    assert server.process is not None
    pid = server.process.pid
    assert server.url.startswith("redis://127.0.0.1:")
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert (tmp_path / "r" / "valkey.log").exists()
