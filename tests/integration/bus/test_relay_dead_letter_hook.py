"""The relay's dead-letter hook against a real endpoint and Redis: the reasoning
worker's hook ends the job's decision ``failed`` (``delivery-failed``, the last
error) before the message is dead-lettered, exactly once, and a hook that fails
does not lose the dead letter."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from support.waiting import eventually

from entail.bus.port import DECISIONS, REASONING_JOBS, Message
from entail.bus.redis_streams import RedisStreamsBus, stream_key
from entail.bus.stream_queries import dead_letters
from entail.models import DecisionRecord, RulesetRef, new_decision_id, utcnow
from entail.relay import Relay, Subscription, job_dead_letter_hook
from entail.settings import Settings
from entail.state.decisions import DecisionStore

from .receiver import Receiver, running


def _subscription(receiver: Receiver, hook: object) -> Subscription:
    return Subscription(
        "reasoning-worker",
        REASONING_JOBS,
        receiver.push_url("/push/reasoning-jobs"),
        max_attempts=2,
        on_dead_letter=hook,  # type: ignore[arg-type]
    )


async def _pending(store: DecisionStore) -> str:
    record = DecisionRecord(
        decision_id=new_decision_id(),
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="loan", version=1, hash="0" * 64),
        request_hash="0" * 64,
        status="pending",
        submitted_at=utcnow(),
    )
    assert await store.create(record)
    return record.decision_id


async def test_dead_lettered_job_fails_its_decision_once(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: 500
    receiver.body = lambda push, status: "Internal Server Error"
    store = DecisionStore(redis, 3600)
    bus = RedisStreamsBus(redis, 10_000)
    decision_id = await _pending(store)
    await bus.publish(REASONING_JOBS, b'{"job": 1}', {"decision_id": decision_id, "tenant": "acme"})
    sub = _subscription(receiver, job_dead_letter_hook(store, bus))
    async with running(Relay(redis, [sub], relay_settings, consumer="relay-a", block_ms=50)):
        await eventually(
            lambda: dead_letters(redis, REASONING_JOBS, "reasoning-worker"), what="the dead letter"
        )

    record = await store.get("acme", decision_id)
    assert record is not None and record.status == "failed" and record.error is not None
    assert record.error.code == "delivery-failed"
    assert record.error.message == (
        "the job was not delivered after 2 attempt(s) (subscription reasoning-worker); "
        "last error: HTTP 500: Internal Server Error"
    )
    assert record.completed_at
    published = [json.loads(f[b"data"]) for _, f in await redis.xrange(stream_key(DECISIONS))]
    assert [p["decision_id"] for p in published] == [decision_id]
    assert await redis.zscore("entail:decisions:open", decision_id) is None

    # the same dead letter again (a relay restarted before its ack): nothing changes
    hook = job_dead_letter_hook(store, bus)
    await hook(Message(id="1-0", data=b"{}", attributes={"decision_id": decision_id}), 2, "again")
    assert await store.get("acme", decision_id) == record
    assert await redis.xlen(stream_key(DECISIONS)) == 1


async def test_a_failing_hook_still_dead_letters(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: 503
    calls: list[tuple[str, int, str]] = []

    async def broken(message: Message, attempts: int, error: str) -> None:
        calls.append((message.id, attempts, error))
        raise RuntimeError("bug in the hook")

    bus = RedisStreamsBus(redis, 10_000)
    message_id = await bus.publish(REASONING_JOBS, b"{}", {"decision_id": "dec_x"})
    async with running(
        Relay(redis, [_subscription(receiver, broken)], relay_settings, consumer="r", block_ms=50)
    ):
        [letter] = await eventually(
            lambda: dead_letters(redis, REASONING_JOBS, "reasoning-worker"), what="the dead letter"
        )
    assert letter["original_id"] == message_id
    assert calls == [(message_id, 2, "HTTP 503: status 503")]
