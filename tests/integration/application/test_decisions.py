"""entail.decisions, the application service behind POST /v1/decisions, on a
real Redis and without HTTP: what a submission stores, queues and publishes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from entail import decisions
from entail.bootstrap import Services, bootstrap
from entail.bus.port import DECISIONS, REASONING_JOBS, Message
from entail.bus.redis_streams import RedisStreamsBus, decode_entry, stream_key
from entail.models import RulesetVersion, utcnow
from entail.settings import Settings
from entail.state.quotas import TenantQueueFull

VERSION = RulesetVersion(
    tenant="acme",
    name="loan",
    version=1,
    hash="c" * 64,
    published_at=utcnow(),
    published_by="k1",
)
FACTS: dict[str, Any] = {"applicant": [["ann"]], "income": [["ann", 5200000]]}
QUERY = ["decision(A, D)"]


@pytest.fixture
async def services(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    svc = await bootstrap(settings, redis=redis)
    try:
        yield svc
    finally:
        await svc.aclose()


async def messages(redis: aioredis.Redis, topic: str) -> list[Message]:
    return [decode_entry(i, f) for i, f in await redis.xrange(stream_key(topic))]


def limits(services: Services) -> dict[str, int]:
    return decisions.service_limits(services.settings, {})


async def test_a_new_decision_is_stored_pending_and_its_job_queued(
    services: Services, redis: aioredis.Redis
) -> None:
    sub = await decisions.submit(services, "acme", VERSION, FACTS, QUERY, True, limits(services))
    assert sub.outcome == "submitted" and sub.record.status == "pending"
    stored = await services.decisions.get("acme", sub.record.decision_id)
    assert stored is not None and stored.facts == FACTS and stored.ruleset.hash == VERSION.hash
    (job,) = await messages(redis, REASONING_JOBS)
    assert job.attributes == {
        "decision_id": sub.record.decision_id,
        "tenant": "acme",
        "schema": "entail.job.v1",
    }
    body = json.loads(job.data)
    assert body["facts"] == FACTS and body["query"] == QUERY and body["request_hash"] == stored.request_hash
    assert await messages(redis, DECISIONS) == []  # nothing final yet


async def test_masked_values_never_reach_the_record_or_the_job(
    services: Services, redis: aioredis.Redis
) -> None:
    masked = VERSION.model_copy(update={"masked_predicates": ["income/2"]})
    sub = await decisions.submit(services, "acme", masked, FACTS, ["income(ann, X)"], False, limits(services))
    (job,) = await messages(redis, REASONING_JOBS)
    for text in (sub.record.model_dump_json(), job.data.decode()):
        assert "5200000" not in text
        assert '"ann"' not in text  # the masked row's string, everywhere it appears
    assert "hmac-sha256:" in job.data.decode()


async def test_a_repeated_request_is_served_from_the_cache_as_its_own_decision(
    services: Services, redis: aioredis.Redis
) -> None:
    first = await decisions.submit(services, "acme", VERSION, FACTS, QUERY, True, limits(services))
    done = first.record.model_copy(update={"status": "succeeded", "completed_at": utcnow()})
    assert await services.decisions.complete(done)
    stored = await services.decisions.get("acme", first.record.decision_id)
    assert stored is not None and stored.status == "succeeded"
    await services.cache.put("acme", VERSION.hash, first.record.request_hash, first.record.decision_id, 60)

    again = await decisions.submit(services, "acme", VERSION, FACTS, QUERY, True, limits(services))
    assert again.outcome == "cached"
    assert again.record.decision_id != first.record.decision_id
    assert again.record.cached and again.record.cached_from == first.record.decision_id
    published = [
        m for m in await messages(redis, DECISIONS) if m.attributes["decision_id"] == again.record.decision_id
    ]
    assert len(published) == 1  # its own audit row
    assert len(await messages(redis, REASONING_JOBS)) == 1  # no second job


async def test_a_full_open_quota_refuses_before_anything_is_stored(
    settings: Settings, redis: aioredis.Redis
) -> None:
    svc = await bootstrap(settings.model_copy(update={"tenant_max_open": 1}), redis=redis)
    try:
        await decisions.submit(svc, "acme", VERSION, FACTS, QUERY, False, limits(svc))
        with pytest.raises(TenantQueueFull):
            await decisions.submit(svc, "acme", VERSION, {"applicant": [["bob"]]}, QUERY, False, limits(svc))
        assert len(await messages(redis, REASONING_JOBS)) == 1
        # another tenant is not affected
        other = VERSION.model_copy(update={"tenant": "globex"})
        await decisions.submit(svc, "globex", other, FACTS, QUERY, False, limits(svc))
    finally:
        await svc.aclose()


def test_service_limits_cap_a_request_and_name_bad_ones() -> None:
    settings = Settings(limit_wall_time_ms=500)
    assert decisions.service_limits(settings, {"wall_time_ms": 60_000})["wall_time_ms"] == 500
    assert decisions.service_limits(settings, {"wall_time_ms": 100})["wall_time_ms"] == 100
    with pytest.raises(decisions.InvalidLimits, match="unknown limit"):
        decisions.service_limits(settings, {"nonsense": 1})
    with pytest.raises(decisions.InvalidLimits, match="positive integer"):
        decisions.service_limits(settings, {"wall_time_ms": 0})


async def test_a_refused_publish_gives_the_tenants_slots_back(
    settings: Settings, redis: aioredis.Redis
) -> None:
    # the bus refusing a job is a 503 the client may retry: the running slot it
    # reserved must not hold the tenant's next decisions for the dispatch lease
    closed = RedisStreamsBus(redis)
    await closed.close()
    svc = await bootstrap(settings, redis=redis, bus=closed)
    try:
        with pytest.raises(RuntimeError):
            await decisions.submit(svc, "acme", VERSION, FACTS, QUERY, False, limits(svc))
        q = decisions.quotas(svc)
        assert await q.running_count("acme") == 0
        assert await q.open_count("acme") == 0
    finally:
        await svc.aclose()
