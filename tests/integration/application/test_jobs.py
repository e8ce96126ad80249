"""entail.jobs, what the worker does with a job message, on a real Redis and the
worker's own evaluator (a pool of one process) without HTTP: a job in Redis
becomes a completed record and one decision on the bus; a job that fails, a
poison message, a claim held elsewhere, a pool that takes no work and a dead letter each end
as they must."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from entail_worker.evaluation import Evaluations

from entail import decisions, fairness, jobs
from entail.bootstrap import bootstrap
from entail.bus.port import DECISIONS, REASONING_JOBS, Message
from entail.bus.redis_streams import decode_entry, stream_key
from entail.models import DecisionRecord, RulesetVersion
from entail.services import Services
from entail.settings import Settings
from entail.state.quotas import running_key

SOURCE = "decision(A, approve) :- applicant(A), income(A, I), I >= 3000000.\n"
FACTS: dict[str, Any] = {"applicant": [["ann"], ["bob"]], "income": [["ann", 5200000], ["bob", 100]]}
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


async def published(services: Services) -> RulesetVersion:
    version, _ = await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
    return version


async def queued_job(services: Services, query: list[str] = QUERY) -> tuple[DecisionRecord, Message]:
    """A decision submitted as the backend does, and its job message as the bus holds it."""
    limits = decisions.service_limits(services.settings, {})
    sub = await decisions.submit(services, "acme", await published(services), FACTS, query, True, limits)
    (job,) = [
        m
        for m in await messages(services.redis, REASONING_JOBS)
        if m.attributes["decision_id"] == sub.record.decision_id
    ]
    return sub.record, job


async def test_a_job_in_redis_ends_completed_and_published_once(
    services: Services, settings: Settings, evaluator: Evaluations, redis: aioredis.Redis
) -> None:
    record, message = await queued_job(services)
    outcome = await jobs.handle_job(services, settings, evaluator, message)
    assert (outcome.outcome, outcome.redeliver) == ("succeeded", False), outcome
    assert outcome.evaluation_s is not None and outcome.evaluation_s > 0
    stored = await services.decisions.get("acme", record.decision_id)
    assert stored is not None and stored.status == "succeeded" and stored.worker == settings.worker_id
    assert stored.answers is not None
    assert [a["atom"] for a in stored.answers[0]["answers"]] == ['decision("ann",approve)']
    (decision,) = await messages(redis, DECISIONS)
    assert decision.attributes["decision_id"] == record.decision_id
    assert json.loads(decision.data)["result_hash"] == stored.result_hash
    # the same request again is a cache hit now (cached before the done signal)
    assert await services.cache.get("acme", record.ruleset.hash, record.request_hash) == record.decision_id

    # a redelivery evaluates nothing: the stored record, published again for the audit trail
    again = await jobs.handle_job(services, settings, evaluator, message)
    assert (again.outcome, again.redeliver, again.evaluation_s) == ("duplicate", False, None)
    assert len(await messages(redis, DECISIONS)) == 2
    assert await services.decisions.get("acme", record.decision_id) == stored


async def test_a_redelivery_of_a_finished_job_gives_back_a_slot_reserved_for_it(
    services: Services, settings: Settings, evaluator: Evaluations, redis: aioredis.Redis
) -> None:
    # two drains racing over one parked job both publish it; the second reserves a
    # running slot (for its dispatch lease, a minute) after the first delivery
    # ended. Its delivery must give that slot back: with a quota of one, every other
    # job of the tenant waited parked for the lease (the HA failover test's 36
    # decisions left pending for 40 s)
    record, message = await queued_job(services)
    outcome = await jobs.handle_job(services, settings, evaluator, message)
    assert outcome.outcome == "succeeded"
    q = fairness.quotas(services, settings)
    assert await q.running_count("acme") == 0
    await redis.zadd(running_key("acme"), {record.decision_id: 10**13})  # the second drain's reservation
    assert await q.running_count("acme") == 1

    again = await jobs.handle_job(services, settings, evaluator, message)
    assert again.outcome == "duplicate"
    assert await q.running_count("acme") == 0


async def test_a_job_the_engine_refuses_fails_its_decision_with_the_engine_error(
    services: Services, settings: Settings, evaluator: Evaluations, redis: aioredis.Redis
) -> None:
    record, message = await queued_job(services, query=["decision(A"])
    outcome = await jobs.handle_job(services, settings, evaluator, message)
    assert (outcome.outcome, outcome.redeliver) == ("failed", False), outcome
    stored = await services.decisions.get("acme", record.decision_id)
    assert stored is not None and stored.status == "failed" and stored.error is not None
    assert stored.error.code != "internal-error" and stored.answers is None
    (decision,) = await messages(redis, DECISIONS)
    assert json.loads(decision.data)["error"]["code"] == stored.error.code


async def test_a_poison_message_fails_its_decision_and_is_acknowledged(
    services: Services, settings: Settings, evaluator: Evaluations, redis: aioredis.Redis
) -> None:
    record, message = await queued_job(services)
    poison = Message(message.id, b'{"decision_id": 7}', message.attributes)
    outcome = await jobs.handle_job(services, settings, evaluator, poison)
    assert (outcome.outcome, outcome.redeliver) == ("poison", False)
    assert outcome.extra == {"decision_id": record.decision_id}
    stored = await services.decisions.get("acme", record.decision_id)
    assert stored is not None and stored.status == "failed" and stored.error is not None
    assert stored.error.code == "invalid-job"
    assert len(await messages(redis, DECISIONS)) == 1
    # a poison message naming nobody is acknowledged all the same, and changes nothing
    anonymous = await jobs.handle_job(services, settings, evaluator, Message("m2", b"not json", {}))
    assert (anonymous.outcome, anonymous.redeliver) == ("poison", False)
    assert len(await messages(redis, DECISIONS)) == 1


async def test_a_claim_held_by_another_worker_sends_the_job_back(
    services: Services, settings: Settings, evaluator: Evaluations, redis: aioredis.Redis
) -> None:
    record, message = await queued_job(services)
    assert await services.decisions.claim(record.decision_id, "another-worker", 60_000)
    outcome = await jobs.handle_job(services, settings, evaluator, message)
    assert (outcome.outcome, outcome.redeliver) == ("claimed", True)
    stored = await services.decisions.get("acme", record.decision_id)
    assert stored is not None and stored.status == "pending"
    assert await messages(redis, DECISIONS) == []


async def test_a_pool_that_takes_no_work_is_a_redelivery_not_a_failed_decision(
    services: Services, settings: Settings, evaluator: Evaluations, redis: aioredis.Redis
) -> None:
    record, message = await queued_job(services)
    evaluator.close()  # a closed pool refuses tasks as a full one does (WorkerBusy)
    outcome = await jobs.handle_job(services, settings, evaluator, message)
    assert (outcome.outcome, outcome.redeliver) == ("transient-failure", True)
    stored = await services.decisions.get("acme", record.decision_id)
    assert stored is not None and not stored.done
    assert await messages(redis, DECISIONS) == []


async def test_a_job_that_does_not_match_its_decision_is_dropped(
    services: Services, settings: Settings, evaluator: Evaluations, redis: aioredis.Redis
) -> None:
    record, message = await queued_job(services)
    forged = json.loads(message.data)
    forged["request_hash"] = "f" * 64
    outcome = await jobs.handle_job(
        services, settings, evaluator, Message(message.id, json.dumps(forged).encode(), message.attributes)
    )
    assert (outcome.outcome, outcome.redeliver) == ("mismatched-job", False)
    stored = await services.decisions.get("acme", record.decision_id)
    assert stored is not None and stored.status == "pending"
    # a job that would read other dataset versions than the decision recorded
    forged = json.loads(message.data)
    forged["datasets"] = [{"binding": "org", "name": "org", "version": 9, "hash": "e" * 64}]
    outcome = await jobs.handle_job(
        services, settings, evaluator, Message(message.id, json.dumps(forged).encode(), message.attributes)
    )
    assert (outcome.outcome, outcome.redeliver) == ("mismatched-job", False)


async def test_a_dead_letter_fails_the_open_decision_once(
    services: Services, settings: Settings, redis: aioredis.Redis
) -> None:
    record, message = await queued_job(services)
    dead = Message(
        message.id, message.data, {**message.attributes, "CloudPubSubDeadLetterSourceDeliveryCount": "5"}
    )
    first = await jobs.handle_dead_letter(services, dead)
    assert (first.outcome, first.extra) == ("delivery-failed", {"decision_id": record.decision_id})
    stored = await services.decisions.get("acme", record.decision_id)
    assert stored is not None and stored.error is not None and stored.error.code == "delivery-failed"
    second = await jobs.handle_dead_letter(services, dead)
    assert second.outcome == "dead-letter-ignored"
    assert len(await messages(redis, DECISIONS)) == 1
