"""The push relay: Pub/Sub push subscriptions on top of Redis Streams (``entail relay``).

A local stand-in for Google Pub/Sub's push delivery, run as a process of its own
(``python -m entail.relay``, started by ``entail up``). It sits beside the
services, above the application layer: the wire format is :mod:`entail.bus.push`,
the stream keys and queries :mod:`entail.bus.stream_queries`.

Locally nothing pushes messages to the services the way Google Pub/Sub does in
the cloud, so the relay does: one consumer group per :class:`Subscription`, and
every message POSTed to the subscriber in the exact Pub/Sub push envelope, so the
worker cannot tell the two apart. A subscription with ``format="cloudevent"``
(a Cloud Function, such as the audit sink) gets instead the CloudEvent in binary
mode that functions-framework makes of a Pub/Sub push to a gen2 function. The
delivery rules are Pub/Sub's:

* acknowledged by an HTTP 102, 200, 201, 202 or 204 answer, nothing else;
* anything else (another status, a refused connection, a timeout after the ack
  deadline) is retried with exponential backoff and jitter, without holding up
  the other messages of the subscription;
* after ``max_attempts`` deliveries the message goes to the subscription's
  dead-letter stream with the last error, and is acknowledged; first the
  subscription's ``on_dead_letter`` hook runs (for the reasoning worker:
  the decision becomes ``failed`` with code ``delivery-failed``, see
  :mod:`entail.ending`), so that a dead letter never leaves a decision open;
* at least once, in no particular order: a relay that dies mid-delivery leaves
  its messages pending, and any relay reclaims entries pending for longer than
  the ack deadline (``XAUTOCLAIM``) and delivers them again.

Traces (:mod:`entail.tracing`): each push is a span ``relay.push``, a child of
the publish whose ``traceparent`` the message carries; the delivered copy of the
attributes (and the request's ``traceparent`` header) carry the push's context
instead, so the subscriber's span hangs below the delivery. Pub/Sub delivers
the attributes as published: there the subscriber's span is the publish's child.

Keys: see :mod:`entail.bus.stream_queries`.

Several relays may serve the same subscriptions at once (each is one consumer of
the groups); they share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import os
import random
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from redis.typing import StreamIdT

from . import tracing
from .bus.port import DECISIONS, REASONING_JOBS, Bus, Message
from .bus.push import PUSH_SECRET_HEADER, PUSH_SUCCESS_STATUSES, cloudevent_request, push_envelope
from .bus.push_client import PushClient, encode_headers
from .bus.redis_streams import decode_entry, stream_key
from .bus.stream_queries import attempts_key, dead_letter_key, read_entries
from .models import utcnow
from .settings import Settings
from .state.decisions import DecisionStore
from .sweeper import run_sweeper

log = logging.getLogger("entail.relay")

REASONING_WORKER_SUBSCRIPTION = "reasoning-worker"
"""The local subscription of the reasoning worker to ``reasoning-jobs`` (also the /metrics label)."""

AUDIT_SINK_SUBSCRIPTION = "audit-sink"
"""The local subscription of the audit sink function to ``decisions`` (CloudEvents)."""

ERROR_BODY_CHARS = 500
# the audit subscription's read window: at the local stack's 50 to 150 decisions
# a second a read took one or two messages, so each decision paid a read and a
# count round trip of its own in the relay and came alone to the sink, where
# functions-framework costs 0.9 to 1.2 ms of CPU a request one at a time but
# 0.65 to 0.8 in bursts of 6 to 12 (bench/audit_throughput.py --floor --burst); the
# sink gathers a batch for up to 100 ms anyway (entail.audit_sink.GATHER_MS),
# and no client waits for the audit row (its SLO allows a minute)
AUDIT_READ_WINDOW_MS = 100
ERROR_PAUSE_S = 1.0  # after a Redis error in a loop: do not spin while Redis is away
IDLE_CONSUMER_MS = 3_600_000  # consumers of gone relays, with nothing pending, are removed after this


DeadLetterHook = Callable[[Message, int, str], Awaitable[object]]
"""Called with a message, its attempts and the last error just before it is
dead-lettered. A Redis error from it leaves the message pending (retried after
the ack deadline); any other error is logged and the message dead-lettered."""


@dataclass
class Subscription:
    """A push subscription: the messages of ``topic`` are POSTed to ``push_url``,
    as a Pub/Sub push envelope (``format="push"``, a Cloud Run service) or as a
    binary-mode CloudEvent (``format="cloudevent"``, a Cloud Function gen2)."""

    name: str
    topic: str
    push_url: str
    headers: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 5
    format: Literal["push", "cloudevent"] = "push"
    on_dead_letter: DeadLetterHook | None = None
    read_window_ms: int = 0
    """After a read that came back with fewer messages than it asked for (the
    stream drained; a backlog never waits), wait this long before the next read,
    so that the messages published meanwhile are read (and their attempts
    counted) in one round trip instead of one each, and reach the subscriber
    together. Only for a subscriber no client waits on: the audit sink
    (:data:`AUDIT_READ_WINDOW_MS`); 0 reads again at once (the worker's jobs)."""


def backoff_s(attempt: int, initial_ms: int, max_ms: int, rand: Callable[[], float] = random.random) -> float:
    """The wait before delivery ``attempt + 1``: ``initial_ms`` doubling per attempt,
    capped at ``max_ms``, then uniformly between half and all of it, so that the
    retries of messages that failed together (a subscriber restarting) spread out."""
    capped = min(float(max_ms), initial_ms * 2.0 ** max(attempt - 1, 0))
    return capped * (0.5 + 0.5 * rand()) / 1000


def default_consumer() -> str:
    """A consumer name unique to this process (host, pid and a random suffix)."""
    return f"relay-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _describe(message: Message) -> str:
    decision = message.attributes.get("decision_id")
    return f"{message.id} (decision {decision})" if decision else message.id


def _without_password(url: str) -> str:
    """A Redis URL fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _is_nogroup(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")


@dataclass
class _Owned:
    """A message this relay is delivering or will retry."""

    message: Message
    touched: float  # time.monotonic() just after we last read or claimed it: its PEL idle clock restart


class _SubscriptionRunner:
    """Delivers one subscription: a reader of new messages, a retry scheduler and a
    reclaimer of stale pending entries, each spawning deliveries; at most
    ``max_in_flight`` deliveries run at a time."""

    def __init__(
        self,
        redis: aioredis.Redis,
        subscription: Subscription,
        settings: Settings,
        http: PushClient,
        consumer: str,
        *,
        max_in_flight: int,
        block_ms: int,
        max_retrying: int,
    ) -> None:
        self.redis = redis
        self.sub = subscription
        self.settings = settings
        self.http = http
        self.consumer = consumer
        self.max_in_flight = max_in_flight
        self.block_ms = block_ms
        self.max_retrying = max_retrying
        self.static_headers = encode_headers(subscription.headers)  # ValueError: refused at start
        self.stream = stream_key(subscription.topic)
        self.group = subscription.name
        self.attempts_key = attempts_key(subscription.topic, subscription.name)
        self.dead_letter_key = dead_letter_key(subscription.topic, subscription.name)
        self.ack_deadline_ms = settings.relay_ack_deadline_ms
        self.reclaim_interval_s = max(0.05, min(self.ack_deadline_ms / 2, 5_000) / 1000)
        self.owned: dict[str, _Owned] = {}
        self.retries: list[tuple[float, int, str]] = []  # heap of (due, sequence, message id)
        self.sequence = 0
        self.semaphore = asyncio.Semaphore(max_in_flight)
        self.deliveries: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Event()  # a delivery ended, a retry was scheduled, or stop
        self.stop = asyncio.Event()
        self.group_tasks: asyncio.TaskGroup | None = None
        # acks of finished deliveries, written together (see _ack)
        self.acks: list[tuple[str, asyncio.Future[None]]] = []
        self.acks_in_write: list[tuple[str, asyncio.Future[None]]] = []
        self.acking = False

    @property
    def name(self) -> str:
        return self.sub.name

    @property
    def capacity(self) -> int:
        return self.max_in_flight - len(self.deliveries)

    # -- lifecycle -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as deliveries:
            self.group_tasks = deliveries
            async with asyncio.TaskGroup() as loops:
                loops.create_task(self._watch(stop))
                if not await self._create_group_until_stopped():
                    return
                log.info(
                    "subscription %s: delivering %s to %s as consumer %s (max %d attempts, %d in flight)",
                    self.name,
                    self.sub.topic,
                    self.sub.push_url,
                    self.consumer,
                    self.sub.max_attempts,
                    self.max_in_flight,
                )
                loops.create_task(self._read_loop())
                loops.create_task(self._retry_loop())
                loops.create_task(self._reclaim_loop())
            if self.deliveries:
                log.info(
                    "subscription %s: finishing %d deliveries in flight", self.name, len(self.deliveries)
                )
        await self._release_retries()
        await self._forget_consumer()
        log.info("subscription %s: stopped", self.name)

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stop.set()
        self.changed.set()

    async def _pause(self, seconds: float | None) -> None:
        """Sleep until something changed (or stop), at most ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), seconds)

    async def _create_group_until_stopped(self) -> bool:
        while not self.stop.is_set():
            try:
                await self._create_group()
                return True
            except RedisError as exc:
                log.warning(
                    "subscription %s: cannot create the consumer group (%s); retrying", self.name, exc
                )
                await self._pause(ERROR_PAUSE_S)
                self.changed.clear()
        return False

    async def _create_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("subscription %s: created consumer group on %s", self.name, self.stream)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def _redis_error(self, where: str, exc: RedisError) -> None:
        """Log, recreate the group when it vanished (a stream deleted or flushed), pause."""
        if _is_nogroup(exc):
            log.warning("subscription %s: consumer group missing during %s; recreating it", self.name, where)
            with contextlib.suppress(RedisError):
                await self._create_group()
                return
        log.warning("subscription %s: Redis error during %s: %s", self.name, where, exc)
        await asyncio.sleep(0)  # let a stop be seen
        if not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), ERROR_PAUSE_S)

    # -- the three sources of deliveries --------------------------------------------

    async def _read_loop(self) -> None:
        """New messages (``XREADGROUP >``), as many as there are free delivery slots,
        and none while too many messages wait for a retry (the subscriber is down:
        there is no point pulling the whole stream into memory)."""
        while not self.stop.is_set():
            self.changed.clear()
            if self.capacity <= 0 or len(self.retries) >= self.max_retrying:
                await self._pause(None)
                continue
            asked = self.capacity
            try:
                reply = await self.redis.xreadgroup(
                    self.group,
                    self.consumer,
                    {self.stream: ">"},
                    count=asked,
                    block=self.block_ms,
                )
            except RedisError as exc:
                await self._redis_error("read", exc)
                continue
            now = time.monotonic()
            fresh = [
                decode_entry(entry_id, fields)
                for entry_id, fields in read_entries(reply)
                if fields is not None
            ]
            if not fresh:
                continue
            try:
                attempts = await self._count_attempts(fresh)
            except RedisError as exc:  # left pending: the reclaimer delivers them after the deadline
                await self._redis_error("read", exc)
                continue
            for message, attempt in zip(fresh, attempts, strict=True):
                self.owned[message.id] = _Owned(message, now)
                self._spawn(message, recheck=False, attempt=attempt)
            # fewer than asked: the stream is drained, let more come (a backlog
            # fills every read, and deliveries ending during one free more slots)
            if self.sub.read_window_ms > 0 and len(fresh) < asked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.sub.read_window_ms / 1000)

    async def _count_attempts(self, messages: list[Message]) -> list[int]:
        """Count a delivery attempt for each of ``messages`` in one round trip (a
        read returns up to ``max_in_flight`` of them at once)."""
        if len(messages) == 1:  # the usual read of a trickle: a pipeline costs its caller half as much again
            return [int(await self.redis.hincrby(self.attempts_key, messages[0].id, 1))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.hincrby(self.attempts_key, message.id, 1)
            return [int(n) for n in await pipe.execute()]

    async def _retry_loop(self) -> None:
        while not self.stop.is_set():
            self.changed.clear()
            if not self.retries or self.capacity <= 0:
                await self._pause(None)
                continue
            delay = self.retries[0][0] - time.monotonic()
            if delay > 0:
                await self._pause(delay)
                continue
            _, _, message_id = heapq.heappop(self.retries)
            owned = self.owned.get(message_id)
            if owned is not None:
                self._spawn(owned.message, recheck=True)

    async def _reclaim_loop(self) -> None:
        """Entries pending longer than the ack deadline, whoever holds them: the
        messages of a crashed (or hopelessly stalled) relay."""
        while not self.stop.is_set():
            try:
                await self._reclaim()
                await self._remove_idle_consumers()
            except RedisError as exc:
                await self._redis_error("reclaim", exc)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.reclaim_interval_s)

    async def _reclaim(self) -> None:
        cursor: bytes | str = "0-0"
        claimed = 0
        while not self.stop.is_set() and self.capacity > 0:
            reply = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.ack_deadline_ms,
                start_id=cursor,
                count=self.capacity,
            )
            cursor, entries = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            now = time.monotonic()
            for entry_id, fields in entries:
                if fields is None:  # deleted from the stream (trimmed) while pending
                    continue
                ident = _text(entry_id)
                if ident in self.owned:  # ours, in flight longer than the deadline: keep going
                    self.owned[ident].touched = now
                    continue
                message = decode_entry(ident, fields)
                self.owned[ident] = _Owned(message, now)
                self._spawn(message, recheck=False)
                claimed += 1
            if deleted:
                log.warning(
                    "subscription %s: %d pending messages were trimmed from %s before delivery",
                    self.name,
                    len(deleted),
                    self.stream,
                )
                await self.redis.hdel(self.attempts_key, *deleted)
            if _text(cursor) == "0-0":
                break
        if claimed:
            log.warning(
                "subscription %s: reclaimed %d messages pending over %d ms (a relay stopped mid-delivery)",
                self.name,
                claimed,
                self.ack_deadline_ms,
            )

    async def _remove_idle_consumers(self) -> None:
        """Forget consumers of relays long gone that hold nothing (each relay process
        is a new consumer; without this ``XINFO CONSUMERS`` only grows)."""
        threshold = max(IDLE_CONSUMER_MS, 10 * self.ack_deadline_ms)
        for info in await self.redis.xinfo_consumers(self.stream, self.group):
            name = _text(info["name"])
            if name != self.consumer and int(info["pending"]) == 0 and int(info["idle"]) > threshold:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)
                log.info("subscription %s: removed idle consumer %s", self.name, name)

    # -- one delivery -------------------------------------------------------------

    def _spawn(self, message: Message, *, recheck: bool, attempt: int | None = None) -> None:
        assert self.group_tasks is not None
        task = self.group_tasks.create_task(self._deliver(message, recheck=recheck, attempt=attempt))
        self.deliveries.add(task)
        task.add_done_callback(self._delivery_done)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self.deliveries.discard(task)
        self.changed.set()

    async def _deliver(self, message: Message, *, recheck: bool, attempt: int | None = None) -> None:
        """Deliver once; then ack, dead-letter or schedule the next attempt. Never
        raises: a Redis failure here leaves the entry pending, and the reclaimer
        delivers it again after the ack deadline. ``attempt``: counted already
        (by the read that fetched the message), else counted here."""
        keep = False
        try:
            async with self.semaphore:
                if recheck and not await self._still_ours(message):
                    log.info(
                        "subscription %s: %s was acked or taken over elsewhere; retry dropped",
                        self.name,
                        _describe(message),
                    )
                    return
                if attempt is None:
                    attempt = int(await self.redis.hincrby(self.attempts_key, message.id, 1))
                if attempt > self.sub.max_attempts:  # counted by a relay that stopped mid-delivery
                    await self._dead_letter(message, attempt - 1, "attempts exhausted before a relay restart")
                    return
                error = await self._post(message, attempt)
                if error is None:
                    await self._ack(message)
                    log.debug("subscription %s: %s delivered (attempt %d)", self.name, message.id, attempt)
                elif attempt >= self.sub.max_attempts:
                    await self._dead_letter(message, attempt, error)
                else:
                    delay = backoff_s(
                        attempt, self.settings.relay_backoff_initial_ms, self.settings.relay_backoff_max_ms
                    )
                    log.warning(
                        "subscription %s: %s attempt %d/%d failed: %s; retry in %.2f s",
                        self.name,
                        _describe(message),
                        attempt,
                        self.sub.max_attempts,
                        error,
                        delay,
                    )
                    self.sequence += 1
                    heapq.heappush(self.retries, (time.monotonic() + delay, self.sequence, message.id))
                    keep = True
        except RedisError as exc:
            log.warning(
                "subscription %s: %s left pending after a Redis error (%s); redelivered after %d ms",
                self.name,
                _describe(message),
                exc,
                self.ack_deadline_ms,
            )
        except Exception:
            log.exception("subscription %s: unexpected failure delivering %s", self.name, _describe(message))
        finally:
            if not keep:
                self.owned.pop(message.id, None)

    async def _still_ours(self, message: Message) -> bool:
        """Before a retry: restart the entry's idle clock (so no relay reclaims a
        message we are merely backing off on), but only if nobody touched it since
        we did: ``XCLAIM`` with a min-idle of the time since then fails when the entry
        was acked, trimmed or claimed by another relay in the meantime."""
        owned = self.owned.get(message.id)
        if owned is None:
            return False
        since_ms = int((time.monotonic() - owned.touched) * 1000) - 5
        claimed = await self.redis.xclaim(
            self.stream, self.group, self.consumer, max(0, since_ms), [message.id], justid=True
        )
        if not claimed:
            return False
        owned.touched = time.monotonic()
        return True

    async def _post(self, message: Message, attempt: int) -> str | None:
        """One push; None when acknowledged, else what went wrong."""
        if not tracing.enabled():
            return await self._post_once(message, attempt)
        # the push is a child of the publish; the subscriber's span hangs below it:
        # the delivered attributes and the request's headers carry the push's context
        with tracing.span(
            "relay.push",
            {"messaging.subscription": self.name, "messaging.message.id": message.id, "attempt": attempt},
            parent=tracing.extract(message.attributes),
        ) as span:
            attributes = tracing.inject(message.attributes)
            pushed = replace(message, attributes=attributes)
            error = await self._post_once(
                pushed, attempt, {k: attributes[k] for k in tracing.TRACE_HEADERS if k in attributes}
            )
            tracing.record(span, outcome="acked" if error is None else "nacked", error=error)
            return error

    async def _post_once(
        self, message: Message, attempt: int, trace_headers: dict[str, str] | None = None
    ) -> str | None:
        try:
            # the subscription's own headers are encoded once; a message's are checked
            # (no CR/LF from an attribute) and encoded per push
            headers = self.static_headers + (encode_headers(trace_headers) if trace_headers else b"")
            if self.sub.format == "cloudevent":
                ce_headers, body = cloudevent_request(message, self.sub.topic, self.sub.name)
                headers += encode_headers(ce_headers)
            else:
                body = orjson.dumps(push_envelope(message, self.sub.name, attempt))
                headers += b"content-type: application/json\r\n"
            response = await self.http.post(self.sub.push_url, body, headers)
        except Exception as exc:  # refused, reset, timed out, bad URL or header: all a nack
            detail = str(exc)
            return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        if response.status in PUSH_SUCCESS_STATUSES:
            return None
        return f"HTTP {response.status}: {response.text[:ERROR_BODY_CHARS]}"

    async def _ack(self, message: Message) -> None:
        """Acknowledge a delivered message; returns once the ack is written (a
        RedisError leaves it pending, to be delivered again after the deadline).

        Acks are written together: the first delivery to finish starts a writer,
        and the deliveries finishing while it writes share its next round trip
        (one ``XACK`` and one ``HDEL`` of many ids), so under load a message costs
        a fraction of a round trip to acknowledge instead of one."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append((message.id, done))
        if not self.acking:
            self.acking = True
            assert self.group_tasks is not None
            self.group_tasks.create_task(self._write_acks())
        await done

    async def _write_acks(self) -> None:
        try:
            while self.acks:
                batch, self.acks = self.acks, []
                self.acks_in_write = batch
                ids = [message_id for message_id, _ in batch]
                try:
                    # one round trip, not a transaction: both are sent in one write and
                    # Redis runs them in turn, each idempotent if the client retries
                    # them; MULTI/EXEC cost the relay a third more CPU per ack
                    async with self.redis.pipeline(transaction=False) as pipe:
                        pipe.xack(self.stream, self.group, *ids)
                        pipe.hdel(self.attempts_key, *ids)
                        await pipe.execute()
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self.acking = False
            for _, done in [*self.acks_in_write, *self.acks]:  # cancelled mid-write: nobody is left waiting
                if not done.done():
                    done.cancel()
            self.acks, self.acks_in_write = [], []

    async def _dead_letter(self, message: Message, attempts: int, error: str) -> None:
        if self.sub.on_dead_letter is not None:
            try:
                await self.sub.on_dead_letter(message, attempts, error)
            except RedisError:
                raise
            except Exception:
                log.exception(
                    "subscription %s: dead-letter hook failed for %s", self.name, _describe(message)
                )
        max_len = self.settings.stream_max_len
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.dead_letter_key,
                {
                    "data": message.data,
                    "attributes": json.dumps(message.attributes, sort_keys=True, separators=(",", ":")),
                    "publish_time": message.publish_time,
                    "original_id": message.id,
                    "subscription": self.sub.name,
                    "attempts": str(attempts),
                    "last_error": error,
                    "dead_lettered_at": utcnow(),
                },
                maxlen=max_len if max_len > 0 else None,
                approximate=True,
            )
            pipe.xack(self.stream, self.group, message.id)
            pipe.hdel(self.attempts_key, message.id)
            await pipe.execute()
        log.error(
            "subscription %s: %s dead-lettered to %s after %d attempts; last error: %s",
            self.name,
            _describe(message),
            self.dead_letter_key,
            attempts,
            error,
        )

    # -- stopping --------------------------------------------------------------------

    async def _release_retries(self) -> None:
        """Hand the messages still waiting for a retry to the next relay at once:
        mark them idle for the full ack deadline, so any relay's next ``XAUTOCLAIM``
        takes them (their attempt counts are in Redis)."""
        ids = [message_id for _, _, message_id in self.retries if message_id in self.owned]
        self.retries.clear()
        if not ids:
            return
        try:
            await self.redis.xclaim(
                self.stream,
                self.group,
                self.consumer,
                0,
                list[StreamIdT](ids),
                idle=self.ack_deadline_ms,
                justid=True,
            )
            log.info("subscription %s: released %d messages waiting for a retry", self.name, len(ids))
        except RedisError as exc:
            log.warning("subscription %s: could not release %d retries (%s)", self.name, len(ids), exc)
        finally:
            self.owned.clear()

    async def _forget_consumer(self) -> None:
        """Remove this relay's consumer from the group when it holds nothing."""
        try:
            for info in await self.redis.xinfo_consumers(self.stream, self.group):
                if _text(info["name"]) == self.consumer and int(info["pending"]) == 0:
                    await self.redis.xgroup_delconsumer(self.stream, self.group, self.consumer)
        except RedisError as exc:
            log.debug("subscription %s: consumer %s not removed (%s)", self.name, self.consumer, exc)


class Relay:
    """Delivers every subscription until ``stop`` is set.

    ``consumer`` names this relay in the consumer groups (unique per process by
    default; tests pass their own). ``max_in_flight`` bounds concurrent deliveries
    per subscription, ``block_ms`` the wait of one read for new messages (also the
    longest a stop waits for a reader), ``max_retrying`` the messages per
    subscription kept in memory waiting for a retry before reading stops.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        subscriptions: Sequence[Subscription],
        settings: Settings,
        *,
        consumer: str | None = None,
        max_in_flight: int = 16,
        block_ms: int = 1_000,
        max_retrying: int = 1_000,
    ) -> None:
        names = [s.name for s in subscriptions]
        if len(set(names)) != len(names):
            raise ValueError(f"subscription names must be unique: {names}")
        self.redis = redis
        self.subscriptions = list(subscriptions)
        self.settings = settings
        self.consumer = consumer or default_consumer()
        self.max_in_flight = max(1, max_in_flight)
        # a blocking read must return before the client's socket timeout fires
        self.block_ms = max(1, min(block_ms, settings.redis_socket_timeout_ms // 2))
        self.max_retrying = max(1, max_retrying)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish the deliveries in flight and
        return. Cancelling instead is a crash: nothing is acked or released, and
        the pending messages are reclaimed by a relay after the ack deadline."""
        # a kept-alive connection for every delivery that may be in flight to an
        # endpoint (subscriptions may share one); the whole exchange of one push
        # is bounded by the ack deadline, as Pub/Sub's is
        in_flight = self.max_in_flight * max(1, len(self.subscriptions))
        async with (
            PushClient(timeout_s=self.settings.relay_ack_deadline_ms / 1000, max_idle=in_flight) as http,
            asyncio.TaskGroup() as group,
        ):
            for subscription in self.subscriptions:
                runner = _SubscriptionRunner(
                    self.redis,
                    subscription,
                    self.settings,
                    http,
                    self.consumer,
                    max_in_flight=self.max_in_flight,
                    block_ms=self.block_ms,
                    max_retrying=self.max_retrying,
                )
                group.create_task(runner.run(stop))


def job_dead_letter_hook(decisions: DecisionStore, bus: Bus) -> DeadLetterHook:
    """The reasoning worker's dead-letter hook: the job's decision ends ``failed``
    with code ``delivery-failed`` and the last error (announced and published on
    ``decisions``; a no-op when it is final already)."""
    from .ending import fail_dead_letter

    async def hook(message: Message, attempts: int, error: str) -> None:
        await fail_dead_letter(decisions, bus, message, attempts, REASONING_WORKER_SUBSCRIPTION, error)

    return hook


def default_subscriptions(
    settings: Settings, *, on_job_dead_letter: DeadLetterHook | None = None
) -> list[Subscription]:
    """The local push subscriptions, all in one place: the reasoning worker
    (Pub/Sub push) and the audit sink function (CloudEvents, as functions-framework
    makes of a push)."""
    subscriptions = [
        Subscription(
            name=REASONING_WORKER_SUBSCRIPTION,
            topic=REASONING_JOBS,
            push_url=settings.worker_push_url,
            headers={PUSH_SECRET_HEADER: settings.push_secret},
            max_attempts=settings.relay_max_attempts,
            on_dead_letter=on_job_dead_letter,
        ),
        Subscription(
            name=AUDIT_SINK_SUBSCRIPTION,
            topic=DECISIONS,
            push_url=settings.audit_sink_url,
            headers={PUSH_SECRET_HEADER: settings.push_secret},  # the local sink requires it
            max_attempts=settings.relay_max_attempts,
            format="cloudevent",
            read_window_ms=AUDIT_READ_WINDOW_MS,
        ),
    ]
    if not settings.audit_sink_enabled:  # benchmarks only: production refuses it
        return [s for s in subscriptions if s.name != AUDIT_SINK_SUBSCRIPTION]
    return subscriptions


async def serve(
    settings: Settings,
    subscriptions: Sequence[Subscription] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Connect, relay until SIGINT/SIGTERM (or ``stop``), close."""
    from .bootstrap import bootstrap

    if settings.bus != "redis":
        raise SystemExit(
            "the relay delivers the local Redis Streams bus; with ENTAIL_BUS=pubsub, Pub/Sub pushes"
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no support
            pass
    services = await bootstrap(settings)
    decisions, bus = services.decisions, services.bus
    subs = (
        list(subscriptions)
        if subscriptions is not None
        else default_subscriptions(settings, on_job_dead_letter=job_dead_letter_hook(decisions, bus))
    )
    where = (
        f"Sentinels {settings.redis_sentinels} ({settings.redis_master_name})"
        if settings.redis_sentinels
        else _without_password(settings.redis_url)
    )
    log.info("relaying %d subscriptions from Redis %s", len(subs), where)
    try:
        async with asyncio.TaskGroup() as tasks:
            # the sweeper shares the relay's loop: each sweep is a few awaited Redis calls
            tasks.create_task(run_sweeper(decisions, bus, settings, stop))
            await Relay(services.redis, subs, settings).run(stop)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await services.aclose()
    log.info("relay stopped")


def run_relay(settings: Settings) -> None:
    """``entail relay``: run the default local subscriptions until SIGINT/SIGTERM."""
    from .logs import TIMED_TEXT_FORMAT, configure
    from .process_heap import freeze_startup_heap

    configure(settings, "relay", text_format=TIMED_TEXT_FORMAT)
    tracing.setup(settings, "relay")
    freeze_startup_heap()  # full collections skip the startup heap (entail.process_heap)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(settings))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (as for the services under uvicorn):
    the relay is all sockets and callbacks, which it runs at about half the CPU."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    run_relay(Settings())
