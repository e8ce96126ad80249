"""Waiting for decisions to finish: one Redis subscription per process, many waiters.

``POST /v1/decisions`` with ``wait_ms`` and ``GET /v1/decisions/{id}/events`` wait
for a decision's done signal (``PUBLISH entail:done:{id}``). A subscription per
waiter holds a Redis connection for as long as the client waits, so a few
hundred waiting clients exhausted the connection pool (``MaxConnectionsError``)
and cut off streams of everyone else. Here one pattern subscription
(``PSUBSCRIBE entail:done:*``) per process feeds every waiter of that process:

* a waiter holds no connection; it reads the record (a short GET, at most
  ``READS_AT_ONCE`` at a time per process) when its signal arrives, and at
  least every ``POLL_S`` (``POLL_UNSUBSCRIBED_S`` while the subscription is
  down), so a lost signal delays a waiter but never strands it;
* at most ``max_waiters`` wait at once per process; one more gets
  :class:`TooManyWaiters`, which the API answers with a 503 and ``Retry-After``.

A waiter registers before it reads the record, and the subscription is
confirmed before the first read: a completion between the read and the wait
sets the waiter's event, it is not missed.

A process that creates a decision and then waits for it (``POST /v1/decisions``
with ``wait_ms``) registers with :meth:`DoneWaiters.watch` before the decision
is created: its first read is then skipped when the subscription was up at
registration (the record is the pending one it just wrote; any signal since has
set the event). One record read per waited decision instead of two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ..record_text import is_final
from . import keys
from .decisions import DecisionStore

log = logging.getLogger("entail.waiters")

DONE_PATTERN = keys.done_channel("*")
_DONE_PREFIX = keys.done_channel("")
POLL_S = 5.0  # a subscribed waiter re-reads its record at least this often
POLL_UNSUBSCRIBED_S = 1.0  # ... and this often while the subscription is being re-established
READS_AT_ONCE = 16  # record reads by waiters in flight per process (well below the pool size)
RECONNECT_PAUSE_S = 0.5


class TooManyWaiters(Exception):
    """Every waiting slot of this process is taken."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} clients are already waiting for decisions on this instance")
        self.limit = limit


class Slot:
    """One waiting slot; released once, however often :meth:`release` is called."""

    def __init__(self, owner: DoneWaiters) -> None:
        self._owner: DoneWaiters | None = owner

    def release(self) -> None:
        if self._owner is not None:
            self._owner.active -= 1
            self._owner = None


class Watch:
    """Interest in one decision registered before it was created (:meth:`DoneWaiters.watch`)."""

    __slots__ = ("decision_id", "event", "subscribed")

    def __init__(self, decision_id: str, event: asyncio.Event, subscribed: bool) -> None:
        self.decision_id, self.event, self.subscribed = decision_id, event, subscribed


class DoneWaiters:
    """The waiters of one process and the subscription that wakes them."""

    def __init__(self, decisions: DecisionStore, max_waiters: int) -> None:
        self.decisions = decisions
        self.max_waiters = max(1, max_waiters)
        self.active = 0
        self._events: dict[str, set[asyncio.Event]] = {}
        self._reads = asyncio.Semaphore(READS_AT_ONCE)
        self._subscribed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def acquire(self) -> Slot:
        """Take one waiting slot (release it with :meth:`Slot.release`);
        :class:`TooManyWaiters` when none is free."""
        if self.active >= self.max_waiters:
            raise TooManyWaiters(self.max_waiters)
        self.active += 1
        return Slot(self)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one waiting slot for the body; :class:`TooManyWaiters` when none is free."""
        held = self.acquire()
        try:
            yield
        finally:
            held.release()

    def watch(self, decision_id: str) -> Watch:
        """Register for the done signal of a decision about to be created, before it
        is (its job published): pass the watch to :meth:`wait_final`, and to
        :meth:`forget` in any case once done with it."""
        self._ensure_reader()
        event = asyncio.Event()
        self._events.setdefault(decision_id, set()).add(event)
        return Watch(decision_id, event, self._subscribed.is_set())

    def forget(self, watch: Watch) -> None:
        """Unregister a watch (idempotent)."""
        waiting = self._events.get(watch.decision_id)
        if waiting is not None:
            waiting.discard(watch.event)
            if not waiting:
                del self._events[watch.decision_id]

    async def wait_final(
        self, tenant: str, decision_id: str, timeout_s: float, *, watch: Watch | None = None
    ) -> bytes | None:
        """The final record's stored JSON, unparsed (:mod:`entail.record_text`), as
        soon as it exists; None after ``timeout_s``, and at once when the decision
        does not exist or is another tenant's. The caller holds a :meth:`slot`.

        With a ``watch`` made before the decision was created while the
        subscription was up, the first read is skipped until a signal (or the
        subscription's return, or the poll) says to read."""
        deadline = time.monotonic() + timeout_s
        if watch is None:
            watch = self.watch(decision_id)
            skip_read = False
        else:
            skip_read = watch.subscribed
        event = watch.event
        try:
            # the first read must follow the subscription, or a signal can be missed;
            # a subscription that does not come up leaves the waiter polling
            if not skip_read:
                with contextlib.suppress(TimeoutError):
                    subscribe_s = min(POLL_UNSUBSCRIBED_S, max(0.0, deadline - time.monotonic()))
                    await asyncio.wait_for(self._subscribed.wait(), subscribe_s)
            while True:
                if skip_read and not event.is_set():
                    text = None  # pending, as its creator wrote it: nothing signalled yet
                else:
                    event.clear()
                    async with self._reads:
                        text = await self.decisions.get_text(tenant, decision_id)
                    if text is None:
                        return None
                    if is_final(text):
                        return text
                skip_read = False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                poll = POLL_S if self._subscribed.is_set() else POLL_UNSUBSCRIBED_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, poll))
        finally:
            self.forget(watch)

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            if self._closed:
                raise RuntimeError("waiters closed")
            self._reader = asyncio.get_running_loop().create_task(self._read_signals())

    async def _read_signals(self) -> None:
        """Keep one pattern subscription up and wake the waiters of each signal."""
        while not self._closed:
            pubsub: PubSub = self.decisions.redis.pubsub()
            try:
                await pubsub.psubscribe(DONE_PATTERN)
                while not self._closed:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self._subscribed.set()
                        self._wake_all()  # anything signalled while we were away is re-read now
                    elif message["type"] == "pmessage":
                        self._wake(message["channel"])
            except (RedisError, OSError) as exc:
                log.warning("done-signal subscription lost (%s); waiters poll until it is back", exc)
                self._subscribed.clear()
                await asyncio.sleep(RECONNECT_PAUSE_S)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]

    def _wake(self, channel: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        for event in self._events.get(name.removeprefix(_DONE_PREFIX), ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()

    async def aclose(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._reader
