"""The push relay against a real HTTP endpoint and a real Redis.

Delivery is at least once and unordered: the tests never rely on the order of
pushes, only on what each message went through.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import sys
import time
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from support.waiting import eventually

from entail.bus.port import DECISIONS, REASONING_JOBS
from entail.bus.push import PUSH_SECRET_HEADER
from entail.bus.redis_streams import RedisStreamsBus, stream_key
from entail.bus.stream_queries import attempts_key, dead_letter_key, dead_letters, pending_lag
from entail.relay import (
    AUDIT_READ_WINDOW_MS,
    AUDIT_SINK_SUBSCRIPTION,
    REASONING_WORKER_SUBSCRIPTION,
    Relay,
    Subscription,
    backoff_s,
    default_subscriptions,
    serve,
)
from entail.settings import Settings

from .receiver import HANG, Push, Receiver, running

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TOPIC = REASONING_JOBS
STREAM = stream_key(TOPIC)


def subscription(
    receiver: Receiver, name: str = "sub", max_attempts: int = 5, **headers: str
) -> Subscription:
    return Subscription(name, TOPIC, receiver.push_url(f"/push/{name}"), dict(headers), max_attempts)


def relay(
    redis: aioredis.Redis, settings: Settings, *subs: Subscription, consumer: str = "relay-a", **kw: Any
) -> Relay:
    return Relay(redis, list(subs), settings, consumer=consumer, block_ms=50, **kw)


async def publish(redis: aioredis.Redis, n: int = 1, **attributes: str) -> list[str]:
    bus = RedisStreamsBus(redis, 10_000)
    return [await bus.publish(TOPIC, f"job {i}".encode(), {"n": str(i), **attributes}) for i in range(n)]


async def pending_count(redis: aioredis.Redis, group: str = "sub") -> int:
    info = await redis.xpending(STREAM, group)
    return int(info["pending"])


async def acked(redis: aioredis.Redis, ids: list[str], group: str = "sub") -> bool:
    """Every id delivered to the group and none of them pending."""
    groups = {g["name"].decode(): g for g in await redis.xinfo_groups(STREAM)}
    if group not in groups or groups[group]["lag"] != 0:
        return False
    pending = await redis.xpending_range(STREAM, group, min="-", max="+", count=10_000)
    pending_ids = {p["message_id"].decode() for p in pending}
    return not pending_ids & set(ids)


# -- envelope and acknowledgement ---------------------------------------------------------


async def test_deliveries_reuse_kept_alive_connections(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    """60 messages, 4 deliveries in flight: at most 4 connections, each reused."""
    ids = await publish(redis, 60)
    async with running(relay(redis, relay_settings, subscription(receiver), max_in_flight=4)):
        await eventually(lambda: acked(redis, ids), what="every message acked")
    assert {p.message_id for p in receiver.pushes} == set(ids)
    assert 1 <= len({p.client_port for p in receiver.pushes}) <= 4


async def test_envelope_is_the_exact_pubsub_push_format(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    data = b'\x00\xff{"job": 1}\xe2\x82'
    attributes = {"decision_id": "dec_1", "tenant": "acme", "schema": "entail.job.v1"}
    message_id = await RedisStreamsBus(redis, 100).publish(TOPIC, data, attributes)
    sub = subscription(receiver, "jobs-sub", **{PUSH_SECRET_HEADER: "s3cret"})
    async with running(relay(redis, relay_settings, sub)):
        push = await eventually(lambda: receiver.of(message_id), what="the push")
        await eventually(lambda: acked(redis, [message_id], "jobs-sub"), what="the ack")

    [push] = receiver.pushes
    envelope = push.envelope
    assert set(envelope) == {"message", "subscription", "deliveryAttempt"}
    assert set(envelope["message"]) == {
        "data",
        "attributes",
        "messageId",
        "message_id",
        "publishTime",
        "publish_time",
    }
    assert base64.b64decode(envelope["message"]["data"], validate=True) == data
    assert envelope["message"]["attributes"] == attributes
    assert envelope["message"]["messageId"] == envelope["message"]["message_id"] == message_id
    publish_time = envelope["message"]["publishTime"]
    assert RFC3339_MS.match(publish_time) and envelope["message"]["publish_time"] == publish_time
    (_, fields), *_ = await redis.xrange(STREAM)
    assert publish_time == fields[b"publish_time"].decode()
    assert envelope["subscription"] == "projects/local/subscriptions/jobs-sub"
    assert envelope["deliveryAttempt"] == 1
    assert push.path == "/push/jobs-sub"
    assert push.headers[PUSH_SECRET_HEADER.lower()] == "s3cret"
    assert push.headers["content-type"] == "application/json"
    assert await redis.hlen(attempts_key(TOPIC, "jobs-sub")) == 0


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_pubsub_success_statuses_ack(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver, status: int
) -> None:
    receiver.plan = lambda push: status
    ids = await publish(redis, 3)
    async with running(relay(redis, relay_settings, subscription(receiver))):
        await eventually(lambda: acked(redis, ids), what="three acks")
    assert sorted(p.message_id for p in receiver.pushes) == sorted(ids)
    assert await pending_count(redis) == 0
    assert await pending_lag(redis, TOPIC, "sub") == 0


@pytest.mark.parametrize("status", [203, 302, 400, 429])
async def test_other_statuses_are_nacks(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver, status: int
) -> None:
    receiver.plan = lambda push: status
    [message_id] = await publish(redis)
    async with running(relay(redis, relay_settings, subscription(receiver, max_attempts=2))):
        letters = await eventually(lambda: dead_letters(redis, TOPIC, "sub"), what="the dead letter")
    assert [p.attempt for p in receiver.of(message_id)] == [1, 2]
    assert letters[0]["last_error"].startswith(f"HTTP {status}")


async def test_messages_published_while_running_are_delivered(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    async with running(relay(redis, relay_settings, subscription(receiver))):
        await eventually(lambda: redis.exists(STREAM), what="the group's stream")
        ids = await publish(redis, 25)
        await eventually(lambda: acked(redis, ids), what="25 acks")
    assert sorted({p.message_id for p in receiver.pushes}) == sorted(ids)


async def xreadgroup_calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xreadgroup", {}).get("calls", 0))


async def test_a_read_window_reads_a_trickle_of_messages_together(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    """With ``read_window_ms`` (the audit sink's subscription) messages published
    one at a time are read several to a round trip, not one read each; each is
    still delivered once and acked. Without it this trickle took a read each."""
    sub = replace(subscription(receiver), read_window_ms=150)
    async with running(relay(redis, relay_settings, sub)):
        await eventually(lambda: redis.exists(STREAM), what="the group's stream")
        before = await xreadgroup_calls(redis)
        ids = []
        for _ in range(20):  # 20 messages over some 200 ms
            ids += await publish(redis)
            await asyncio.sleep(0.01)
        await eventually(lambda: acked(redis, ids), what="20 acks")
        reads = await xreadgroup_calls(redis) - before
        started = time.monotonic()
    assert time.monotonic() - started < 1  # a stop does not wait out the window
    assert reads <= 6, f"{reads} reads for 20 messages"
    assert sorted(p.message_id for p in receiver.pushes) == sorted(ids)


async def test_a_read_window_never_holds_back_a_backlog(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    """A stream with a backlog fills every read, so the window is never waited:
    deliveries ending while a read is on its way (slots free again by the time
    it returns) must not pass for a drained stream."""
    ids = await publish(redis, 200)
    answers = iter(range(10**6))
    receiver.plan = lambda push: HANG if next(answers) % 2 else 200  # every other one a little later

    async def answer_the_held_ones() -> None:
        while True:
            receiver.release.set()  # wakes the requests held now
            receiver.release.clear()
            await asyncio.sleep(0.003)

    sub = replace(subscription(receiver), read_window_ms=2_000)
    pulses = asyncio.create_task(answer_the_held_ones())
    started = time.monotonic()
    try:
        async with running(relay(redis, relay_settings, sub, max_in_flight=8)):
            await eventually(lambda: acked(redis, ids), what="the backlog acked", timeout_s=120)
            drained = time.monotonic() - started
    finally:
        pulses.cancel()
    assert drained < 8, f"a 200-message backlog took {drained:.1f} s"
    assert sorted({p.message_id for p in receiver.pushes}) == sorted(ids)


async def test_a_message_alone_costs_a_read_a_count_and_an_ack_without_transactions(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    """A trickle (one message per read, as the worker's jobs come): one
    ``XREADGROUP``, one ``HINCRBY`` (not in a pipeline) and one ack round trip of
    ``XACK`` + ``HDEL`` without ``MULTI``/``EXEC`` per message; the count is gone
    with the ack."""
    async with running(relay(redis, relay_settings, subscription(receiver))):
        await eventually(lambda: redis.exists(STREAM), what="the group's stream")
        before = await command_calls(redis)
        ids: list[str] = []
        for _ in range(5):
            ids.extend(await publish(redis))
            await eventually(lambda: acked(redis, ids), what="the ack")
        used = {k: v - before.get(k, 0) for k, v in (await command_calls(redis)).items()}
    assert used.get("hincrby") == 5 and used.get("xack") == 5 and used.get("hdel") == 5
    assert used.get("multi", 0) == 0 and used.get("exec", 0) == 0
    assert await redis.hlen(attempts_key(TOPIC, "sub")) == 0


async def command_calls(redis: aioredis.Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


# -- retries and dead letters -------------------------------------------------------------


async def test_retried_with_backoff_until_success_on_third_attempt(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: {1: 503, 2: 500}.get(push.attempt, 200)
    [message_id] = await publish(redis)
    async with running(relay(redis, relay_settings, subscription(receiver))):
        await eventually(lambda: acked(redis, [message_id]), what="the ack")
    pushes = receiver.of(message_id)
    assert [p.attempt for p in pushes] == [1, 2, 3]
    # backoff: at least half of 20 ms, then half of 40 ms (jitter keeps half)
    assert pushes[1].at - pushes[0].at >= 0.010
    assert pushes[2].at - pushes[1].at >= 0.020
    assert await redis.hlen(attempts_key(TOPIC, "sub")) == 0
    assert await dead_letters(redis, TOPIC, "sub") == []


async def test_permanent_500_goes_to_dead_letter_after_max_attempts(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: 500
    receiver.body = lambda push, status: "E" * 2_000
    [message_id] = await publish(redis, 1, decision_id="dec_9")
    async with running(relay(redis, relay_settings, subscription(receiver, max_attempts=3))):
        letters = await eventually(lambda: dead_letters(redis, TOPIC, "sub"), what="the dead letter")
        await eventually(lambda: acked(redis, [message_id]), what="the original acked")

    assert [p.attempt for p in receiver.of(message_id)] == [1, 2, 3]
    [letter] = letters
    assert letter["original_id"] == message_id
    assert letter["data"] == b"job 0"
    assert letter["attributes"] == {"n": "0", "decision_id": "dec_9"}
    assert letter["attempts"] == 3
    assert letter["last_error"] == "HTTP 500: " + "E" * 500
    assert letter["subscription"] == "sub"
    assert RFC3339_MS.match(letter["publish_time"]) and RFC3339_MS.match(letter["dead_lettered_at"])
    raw = await redis.xrange(dead_letter_key(TOPIC, "sub"))
    assert {b"data", b"attributes", b"original_id", b"attempts", b"last_error"} <= set(raw[0][1])
    assert await pending_count(redis) == 0
    assert await pending_lag(redis, TOPIC, "sub") == 0
    assert await redis.hlen(attempts_key(TOPIC, "sub")) == 0


async def test_unreachable_subscriber_dead_letters_with_the_exception(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    await receiver.stop()  # nothing listens on its port any more
    [message_id] = await publish(redis)
    async with running(relay(redis, relay_settings, subscription(receiver, max_attempts=2))):
        letters = await eventually(lambda: dead_letters(redis, TOPIC, "sub"), what="the dead letter")
    assert letters[0]["original_id"] == message_id
    assert letters[0]["last_error"].startswith("ConnectionRefusedError: ")


async def test_a_poisoned_message_does_not_block_the_others(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: 500 if push.attributes.get("poison") else 200
    [poison] = await publish(redis, 1, poison="yes")
    good = await publish(redis, 40)
    sub = subscription(receiver, max_attempts=1_000)
    async with running(relay(redis, relay_settings, sub, max_in_flight=2)):
        await eventually(lambda: acked(redis, good), what="the good messages")
        await eventually(lambda: len(receiver.of(poison)) >= 3, what="the poison retried")
        pending = await redis.xpending_range(STREAM, "sub", min="-", max="+", count=100)
        assert [p["message_id"].decode() for p in pending] == [poison]
    assert all(len(receiver.of(i)) == 1 for i in good)


async def test_a_hanging_delivery_does_not_block_the_others(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: HANG if push.attributes.get("slow") else 200
    [slow] = await publish(redis, 1, slow="yes")
    fast = await publish(redis, 10)
    async with running(relay(redis, relay_settings, subscription(receiver), max_in_flight=2)):
        await eventually(lambda: acked(redis, fast), what="the fast messages")
        assert await pending_count(redis) == 1
        receiver.release.set()
        await eventually(lambda: acked(redis, [slow]), what="the slow message")
    assert len(receiver.of(slow)) == 1


async def xack_calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xack", {}).get("calls", 0))


async def test_deliveries_finishing_together_share_their_ack_round_trips(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    """Acks are written in batches: 16 deliveries answered at once are acked with
    far fewer than 16 XACKs (each of many ids), and every one of them is acked."""
    receiver.plan = lambda push: HANG
    ids = await publish(redis, 16)
    before = await xack_calls(redis)
    async with running(relay(redis, relay_settings, subscription(receiver), max_in_flight=16)):
        await eventually(lambda: all(receiver.of(i) for i in ids), what="all 16 pushes in flight")
        receiver.release.set()
        await eventually(lambda: acked(redis, ids), what="the 16 acks")
    assert await xack_calls(redis) - before <= 8
    assert await redis.hlen(attempts_key(TOPIC, "sub")) == 0  # the attempt counts went with the acks


# -- stopping, crashing, restarting ----------------------------------------------------------


async def test_graceful_stop_finishes_deliveries_in_flight(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: HANG
    [message_id] = await publish(redis)
    async with running(relay(redis, relay_settings, subscription(receiver))) as r:
        await eventually(lambda: receiver.of(message_id), what="the push")
        r.stop.set()
        done, _ = await asyncio.wait({r.task}, timeout=0.2)
        assert not done  # the stop waits for the delivery in flight
        receiver.release.set()
        await r.stopped()
    assert await pending_count(redis) == 0
    assert await redis.xinfo_consumers(STREAM, "sub") == []  # a clean stop leaves no consumer behind


async def test_crashed_relay_mid_delivery_is_reclaimed_by_a_new_one(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    first_push = asyncio.Event()

    def plan(push: Push) -> int:
        if first_push.is_set():
            return 200
        first_push.set()
        return HANG  # the first relay dies while the subscriber holds the request

    receiver.plan = plan
    [message_id] = await publish(redis)
    sub = subscription(receiver)
    async with running(relay(redis, relay_settings, sub, consumer="relay-a")) as a:
        await eventually(lambda: receiver.of(message_id), what="the first push")
        a.crash()
    assert a.task.cancelled()
    pending = await redis.xpending_range(STREAM, "sub", min="-", max="+", count=10)
    assert [(p["message_id"].decode(), p["consumer"].decode()) for p in pending] == [(message_id, "relay-a")]

    later = await publish(redis, 3)
    fast_reclaim = relay_settings.model_copy(update={"relay_ack_deadline_ms": 300})
    async with running(relay(redis, fast_reclaim, sub, consumer="relay-b")):
        await eventually(lambda: acked(redis, [message_id, *later]), what="reclaim and delivery")
    assert [p.attempt for p in receiver.of(message_id)] == [1, 2]  # counting went on across relays
    assert all(len(receiver.of(i)) == 1 for i in later)


async def test_message_read_by_a_relay_that_died_before_pushing_is_reclaimed(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    [message_id] = await publish(redis)
    await redis.xgroup_create(STREAM, "sub", id="0")
    read = await redis.xreadgroup("sub", "ghost", {STREAM: ">"}, count=10)
    assert read[0][1][0][0].decode() == message_id  # read, never delivered, never acked
    fast_reclaim = relay_settings.model_copy(update={"relay_ack_deadline_ms": 200})
    started = time.monotonic()
    async with running(relay(redis, fast_reclaim, subscription(receiver))):
        await eventually(lambda: acked(redis, [message_id]), what="the reclaimed delivery")
    assert time.monotonic() - started >= 0.15  # not before the ack deadline
    assert [p.attempt for p in receiver.of(message_id)] == [1]


async def test_restarted_relay_continues_the_attempt_count(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: 503
    [message_id] = await publish(redis)
    sub = subscription(receiver, max_attempts=4)
    slow_retry = relay_settings.model_copy(
        update={"relay_backoff_initial_ms": 60_000, "relay_backoff_max_ms": 60_000}
    )
    async with running(relay(redis, slow_retry, sub, consumer="relay-a")) as a:
        await eventually(lambda: receiver.of(message_id), what="the first attempt")
        await eventually(lambda: redis.hget(attempts_key(TOPIC, "sub"), message_id), what="the count")
        await a.stopped()  # its retry, a minute away, is released to the next relay
    assert await redis.hget(attempts_key(TOPIC, "sub"), message_id) == b"1"

    started = time.monotonic()
    async with running(relay(redis, relay_settings, sub, consumer="relay-b")):
        letters = await eventually(lambda: dead_letters(redis, TOPIC, "sub"), what="the dead letter")
    assert time.monotonic() - started < 5  # taken over at once, not after the ack deadline
    assert [p.attempt for p in receiver.of(message_id)] == [1, 2, 3, 4]
    assert letters[0]["attempts"] == 4 and letters[0]["last_error"].startswith("HTTP 503")


async def test_two_relays_share_a_subscription(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    ids = await publish(redis, 60)
    sub = subscription(receiver)
    async with (
        running(relay(redis, relay_settings, sub, consumer="relay-a")),
        running(relay(redis, relay_settings, sub, consumer="relay-b")),
    ):
        await eventually(lambda: acked(redis, ids), what="all acks")
    assert {p.message_id for p in receiver.pushes} == set(ids)  # at least once, any order


async def test_each_subscription_gets_every_message(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    ids = await publish(redis, 5)
    one, two = subscription(receiver, "one"), subscription(receiver, "two")
    async with running(relay(redis, relay_settings, one, two)):
        await eventually(lambda: acked(redis, ids, "one"), what="subscription one")
        await eventually(lambda: acked(redis, ids, "two"), what="subscription two")
    for name in ("one", "two"):
        paths = [p.message_id for p in receiver.pushes if p.path == f"/push/{name}"]
        assert sorted(paths) == sorted(ids)


# -- metrics helpers, defaults and the entry point ----------------------------------------------


async def test_pending_lag_counts_unread_and_unacked(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    assert await pending_lag(redis, TOPIC, "sub") == 0  # no stream yet
    await publish(redis, 3)
    assert await pending_lag(redis, TOPIC, "sub") == 3  # no group yet: all of them will be delivered
    receiver.plan = lambda push: HANG
    async with running(relay(redis, relay_settings, subscription(receiver))):
        await eventually(lambda: len(receiver.pushes) == 3, what="three pushes in flight")
        assert await pending_lag(redis, TOPIC, "sub") == 3  # read, not acked
        await publish(redis, 2)
        await eventually(lambda: len(receiver.pushes) == 5, what="five pushes in flight")
        receiver.release.set()
        await eventually(lambda: _lag_is_zero(redis), what="lag 0")
    assert await dead_letters(redis, TOPIC, "sub") == []


async def _lag_is_zero(redis: aioredis.Redis) -> bool:
    return await pending_lag(redis, TOPIC, "sub") == 0


def test_backoff_doubles_is_capped_and_jittered() -> None:
    def low() -> float:
        return 0.0

    def high() -> float:
        return 1.0

    assert [backoff_s(n, 200, 10_000, high) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert [backoff_s(n, 200, 10_000, low) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff_s(20, 200, 10_000, high) == 10.0
    assert 5.0 <= backoff_s(20, 200, 10_000) <= 10.0


def test_default_subscription_pushes_jobs_to_the_worker(settings: Settings) -> None:
    [sub, _audit] = default_subscriptions(settings)
    assert sub.format == "push"
    assert sub.name == REASONING_WORKER_SUBSCRIPTION == "reasoning-worker"
    assert sub.topic == REASONING_JOBS
    assert sub.push_url == settings.worker_push_url
    assert sub.headers == {PUSH_SECRET_HEADER: settings.push_secret}
    assert sub.max_attempts == settings.relay_max_attempts
    assert sub.read_window_ms == 0  # a client waits for the job: read again at once


def test_default_subscription_delivers_decisions_to_the_audit_sink_as_cloudevents(
    settings: Settings,
) -> None:
    [_worker, sub] = default_subscriptions(settings)
    assert sub.name == AUDIT_SINK_SUBSCRIPTION == "audit-sink"
    assert sub.topic == DECISIONS
    assert sub.push_url == settings.audit_sink_url
    assert sub.format == "cloudevent"
    assert sub.headers == {PUSH_SECRET_HEADER: settings.push_secret}  # the local sink requires it
    assert sub.max_attempts == settings.relay_max_attempts
    assert sub.read_window_ms == AUDIT_READ_WINDOW_MS > 0  # nobody waits for the audit row


async def test_cloudevent_format_is_eventarcs_binary_mode_pubsub_event(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    data = b'{"decision_id": "dec_1"}\xff'
    attributes = {"decision_id": "dec_1", "tenant": "acme"}
    message_id = await RedisStreamsBus(redis, 100).publish(DECISIONS, data, attributes)
    sub = Subscription(
        "fn-sub", DECISIONS, receiver.push_url("/"), {"X-Extra": "kept"}, max_attempts=5, format="cloudevent"
    )
    async with running(relay(redis, relay_settings, sub)):
        await eventually(lambda: receiver.of(message_id), what="the delivery")
        await eventually(lambda: acked_on(redis, DECISIONS, [message_id], "fn-sub"), what="the ack")

    [push] = receiver.pushes
    (_, fields), *_ = await redis.xrange(stream_key(DECISIONS))
    publish_time = fields[b"publish_time"].decode()
    assert RFC3339_MS.match(publish_time)
    assert push.path == "/"
    assert push.headers["ce-id"] == message_id
    assert push.headers["ce-source"] == "//pubsub.googleapis.com/projects/local/topics/decisions"
    assert push.headers["ce-type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert push.headers["ce-specversion"] == "1.0"
    assert push.headers["ce-time"] == publish_time
    assert push.headers["content-type"] == "application/json"
    assert push.headers["x-extra"] == "kept"
    assert push.envelope == {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": publish_time,
            "publish_time": publish_time,
        },
        "subscription": "projects/local/subscriptions/fn-sub",
    }
    assert base64.b64decode(push.envelope["message"]["data"], validate=True) == data


async def test_cloudevent_subscription_retries_and_dead_letters_like_push(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    receiver.plan = lambda push: 500
    message_id = await RedisStreamsBus(redis, 100).publish(DECISIONS, b"{}", {})
    sub = Subscription("fn-sub", DECISIONS, receiver.push_url("/"), max_attempts=3, format="cloudevent")
    async with running(relay(redis, relay_settings, sub)):
        [letter] = await eventually(lambda: dead_letters(redis, DECISIONS, "fn-sub"), what="the dead letter")
        await eventually(lambda: acked_on(redis, DECISIONS, [message_id], "fn-sub"), what="the ack")
    assert len(receiver.of(message_id)) == 3
    assert letter["original_id"] == message_id
    assert letter["attempts"] == 3
    assert letter["last_error"].startswith("HTTP 500")


async def acked_on(redis: aioredis.Redis, topic: str, ids: list[str], group: str) -> bool:
    """Every id delivered to the group of ``topic`` and none of them pending."""
    stream = stream_key(topic)
    groups = {g["name"].decode(): g for g in await redis.xinfo_groups(stream)}
    if group not in groups or groups[group]["lag"] != 0:
        return False
    pending = await redis.xpending_range(stream, group, min="-", max="+", count=10_000)
    return not {p["message_id"].decode() for p in pending} & set(ids)


async def test_serve_delivers_the_default_subscription_until_stopped(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    settings = relay_settings.model_copy(
        update={"worker_push_url": receiver.push_url("/push/reasoning-jobs"), "push_secret": "local-secret"}
    )
    [message_id] = await publish(redis)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))

    def pushed() -> list[Push]:
        if task.done():  # failed to start: say why now rather than at the deadline
            task.result()
            raise AssertionError("serve returned before stop")
        return receiver.of(message_id)

    try:
        push = (await eventually(pushed, what="the push"))[0]
        await eventually(lambda: acked(redis, [message_id], "reasoning-worker"), what="the ack")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert push.path == "/push/reasoning-jobs"
    assert push.headers["x-entail-push-secret"] == "local-secret"
    assert push.envelope["subscription"] == "projects/local/subscriptions/reasoning-worker"


async def test_module_entry_point_relays_and_stops_on_sigterm(
    redis: aioredis.Redis, relay_settings: Settings, receiver: Receiver
) -> None:
    env = {
        **os.environ,
        "ENTAIL_REDIS_URL": relay_settings.redis_url,
        "ENTAIL_WORKER_PUSH_URL": receiver.push_url("/push/reasoning-jobs"),
        "ENTAIL_PUSH_SECRET": "proc-secret",
    }
    env.pop("PORT", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entail.relay",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )

    async def pushed() -> list[Push]:
        if process.returncode is not None:  # died: show its output now rather than at the deadline
            assert process.stdout is not None
            raise AssertionError((await process.stdout.read()).decode())
        return receiver.of(message_id)

    try:
        [message_id] = await publish(redis)
        await eventually(pushed, timeout_s=30, what="the relay process to push")
        await eventually(lambda: acked(redis, [message_id], "reasoning-worker"), what="the ack")
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode()
    assert receiver.of(message_id)[0].headers["x-entail-push-secret"] == "proc-secret"
    text = output.decode()
    assert "reasoning-worker" in text and "relay stopped" in text
