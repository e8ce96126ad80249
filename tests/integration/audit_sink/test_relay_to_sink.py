"""The audit sink as it runs locally: a ``functions-framework`` process fed by
the real relay from Redis Streams, CloudEvents over HTTP, a DuckDB file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis
from support.waiting import eventually

from entail.bus.port import DECISIONS
from entail.bus.redis_streams import RedisStreamsBus
from entail.bus.stream_queries import dead_letters, pending_lag
from entail.models import DecisionRecord
from entail.relay import AUDIT_SINK_SUBSCRIPTION, Relay, default_subscriptions
from entail.settings import Settings

from ..bus.receiver import running
from .helpers import SinkProcess, decision, record_bytes, rejected, stored


def sink_relay(redis: aioredis.Redis, settings: Settings, sink: SinkProcess) -> Relay:
    """The relay with only the default audit-sink subscription, pointed at ``sink``."""
    fast = settings.model_copy(
        update={
            "audit_sink_url": sink.url,
            "relay_backoff_initial_ms": 50,
            "relay_backoff_max_ms": 400,
            "relay_max_attempts": 50,
            "relay_ack_deadline_ms": 10_000,
        }
    )
    subs = [s for s in default_subscriptions(fast) if s.name == AUDIT_SINK_SUBSCRIPTION]
    return Relay(redis, subs, fast, consumer="relay-test", block_ms=50)


async def publish(redis: aioredis.Redis, record: DecisionRecord) -> str:
    attributes = {"decision_id": record.decision_id, "tenant": record.tenant, "schema": "entail.decision.v1"}
    return await RedisStreamsBus(redis, 10_000).publish(DECISIONS, record_bytes(record), attributes)


async def rows(path: Path) -> dict[str, int]:
    return await asyncio.to_thread(stored, path) if path.exists() else {}


async def delivered(redis: aioredis.Redis) -> bool:
    return await pending_lag(redis, DECISIONS, AUDIT_SINK_SUBSCRIPTION) == 0


async def test_every_decision_lands_exactly_once(
    redis: aioredis.Redis, settings: Settings, sink_process: SinkProcess
) -> None:
    records = [decision(tenant=f"t{i % 3}") for i in range(30)]
    for record in records:
        await publish(redis, record)
    async with running(sink_relay(redis, settings, sink_process)):
        await eventually(lambda: delivered(redis), 15, "every message acked")
    assert await rows(sink_process.audit_path) == {r.decision_id: 1 for r in records}
    assert await dead_letters(redis, DECISIONS, AUDIT_SINK_SUBSCRIPTION) == []
    log = sink_process.log()
    assert log.count(": stored") == len(records)  # one log line per message
    assert "(batch of" in log  # deliveries in flight together were written together


async def test_duplicate_delivery_is_one_row_and_poison_is_rejected_and_acked(
    redis: aioredis.Redis, settings: Settings, sink_process: SinkProcess
) -> None:
    record = decision()
    await publish(redis, record)
    await publish(redis, record)  # republished (a redelivered job): a second message
    bus = RedisStreamsBus(redis, 10_000)
    await bus.publish(DECISIONS, b"\x00 not json", {})
    await publish(redis, decision(status="running"))
    async with running(sink_relay(redis, settings, sink_process)):
        await eventually(lambda: delivered(redis), 15, "every message acked")
    path = sink_process.audit_path
    assert await rows(path) == {record.decision_id: 1}
    reasons = sorted(reason for _, reason, _ in await asyncio.to_thread(rejected, path))
    assert len(reasons) == 2 and all(reasons)
    assert await dead_letters(redis, DECISIONS, AUDIT_SINK_SUBSCRIPTION) == []


async def test_sink_killed_mid_stream_loses_nothing_and_duplicates_nothing(
    redis: aioredis.Redis, settings: Settings, sink_process: SinkProcess
) -> None:
    records = [decision() for _ in range(80)]
    path = sink_process.audit_path

    async def publish_paced() -> None:
        for record in records:
            await publish(redis, record)
            await asyncio.sleep(0.01)  # a steady stream, not synchronisation

    async with running(sink_relay(redis, settings, sink_process)):
        publisher = asyncio.create_task(publish_paced())
        await eventually(lambda: _at_least(path, 15), 15, "some decisions stored")
        sink_process.kill()
        at_kill = len(await rows(path))
        assert at_kill < len(records)
        await asyncio.wait_for(publisher, 15)
        await eventually(
            lambda: redis.hlen(f"entail:bus:{DECISIONS}:{AUDIT_SINK_SUBSCRIPTION}:attempts"),
            10,
            "deliveries failing while the sink is down",
        )
        sink_process.start()  # the same port, the same file
        await eventually(lambda: delivered(redis), 20, "every message acked after the restart")
    assert await rows(path) == {r.decision_id: 1 for r in records}
    assert await dead_letters(redis, DECISIONS, AUDIT_SINK_SUBSCRIPTION) == []


async def _at_least(path: Path, n: int) -> bool:
    return len(await rows(path)) >= n
