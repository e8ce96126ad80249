"""Group commit: many threads each hand over one decision, one store call writes them all.

The audit sink receives one decision per request, on many threads at once (the
functions framework serves with a thread pool, and Pub/Sub push or the local
relay keeps several deliveries in flight). A store call has a fixed cost that
dwarfs the per-row cost — locally DuckDB opens the shared file and checkpoints
on close (about 30 ms), in BigQuery it is a round trip — so writing one row per
call caps the sink at a few dozen rows a second.

:class:`GroupCommitter` removes that cap without adding latency or weakening
the acknowledgement: the first thread to arrive while no write is running
becomes the leader and writes every decision queued at that moment (up to
``max_batch``) in one ``insert_decisions`` call; threads arriving during that
write queue up and form the next batch. Each caller returns only once its own
decision is stored (or raises), so the HTTP answer — and with it the Pub/Sub
ack — still means "durable". Under no concurrency it degenerates to one row per
call, as before.

A store call's cost is nearly all fixed (DuckDB: some 4 ms of CPU for any
INSERT of the decisions table, however many rows), so the audit sink also
*gathers*: with ``gather_ms`` set, the leader waits until ``gather_rows``
decisions are queued or the oldest queued one has waited ``gather_ms``, then
writes them all. Under load the queue fills before the deadline and nobody
waits; a lone decision waits ``gather_ms`` more before its ack, which no client
sees (the audit trail is written behind the answer). ``gather_rows`` defaults to
the most requests the functions framework serves at once (its ``THREADS``), so
a full house is never kept waiting for a caller that cannot arrive.

A batch that fails as a whole is retried row by row, so one row that the store
refuses with an error (rather than rejecting it) fails alone, is redelivered
alone, and does not hold back the rows that were queued with it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .port import AuditStore, InsertResult, Rejection


@dataclass(frozen=True)
class Outcome:
    """What became of one caller's decision: ``stored`` (inserted, or already
    there: inserts are idempotent), or ``rejected`` with the reason."""

    stored: bool
    rejection: Rejection | None
    batch_size: int


def server_threads() -> int:
    """How many requests functions-framework serves at once: its gunicorn threads
    (``THREADS``, else 4 per CPU, as the framework itself reckons)."""
    try:
        return max(1, int(os.environ.get("THREADS", "")))
    except ValueError:
        return (os.cpu_count() or 1) * 4


@dataclass
class _Entry:
    payload: Any
    arrived: float = 0.0
    done: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None


@dataclass
class GroupCommitStats:
    """Counters for logs and tests: store calls made and rows handed over."""

    calls: int = 0
    rows: int = 0
    largest_batch: int = 0
    fallbacks: int = 0  # batches that failed as a whole and were retried row by row
    wakeups: int = 0  # times a waiting caller woke up (for a batch's end or to lead)


class GroupCommitter:
    def __init__(
        self,
        store: Callable[[], AuditStore],
        *,
        max_batch: int = 500,
        gather_ms: float = 0.0,
        gather_rows: int | None = None,
    ) -> None:
        """``store`` returns the store to write to; it is called by the leader for
        each batch, so opening it lazily (and retrying a failed open) works.
        ``gather_ms`` > 0: wait up to that long for ``gather_rows`` decisions
        (default :func:`server_threads`) before writing (see the module doc)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if gather_ms < 0:
            raise ValueError("gather_ms must not be negative")
        self._store = store
        self.max_batch = max_batch
        self.gather_s = gather_ms / 1000
        self.gather_rows = max(
            1, min(max_batch, gather_rows if gather_rows is not None else server_threads())
        )
        # one lock, two conditions: an arrival wakes only the gathering leader
        # (``_arrived``), the end of a write wakes the waiting callers once
        # (``_finished``); waking every waiting thread on every arrival cost the
        # sink a fifth of its CPU in futex round trips and lock handovers
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._finished = threading.Condition(self._lock)
        self._queue: list[_Entry] = []
        self._writing = False
        self.stats = GroupCommitStats()

    @property
    def queued(self) -> int:
        """Decisions waiting for the next store call (not counting one being written)."""
        with self._lock:
            return len(self._queue)

    def insert(self, payload: Any) -> Outcome:
        """Store one decision (a DecisionRecord or its dict); block until it is
        stored or rejected. Raises what the store raised when a retry may help."""
        entry = _Entry(payload, time.monotonic())
        with self._lock:
            self._queue.append(entry)
            self._arrived.notify()  # a leader gathering counts this one
            while not entry.done:
                if self._writing:
                    self._finished.wait()
                    self.stats.wakeups += 1
                    continue
                self._writing = True
                self._gather()
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self._lock.release()
                try:
                    self._write(batch)
                finally:
                    self._lock.acquire()
                    self._writing = False
                    for done in batch:
                        done.done = True
                    self._finished.notify_all()
        if entry.error is not None:
            raise entry.error
        assert entry.outcome is not None
        return entry.outcome

    def _gather(self) -> None:
        """As the leader (holding the lock): wait for ``gather_rows`` queued
        decisions, at most until the oldest has waited ``gather_s``."""
        if self.gather_s <= 0:
            return
        deadline = self._queue[0].arrived + self.gather_s
        while len(self._queue) < self.gather_rows:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.wait(remaining)

    def _write(self, batch: list[_Entry]) -> None:
        self.stats.calls += 1
        self.stats.rows += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        try:
            result = self._store().insert_decisions([e.payload for e in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            self.stats.fallbacks += 1
            for entry in batch:  # one bad row must not hold back the others
                try:
                    self._settle([entry], self._store().insert_decisions([entry.payload]))
                except Exception as single:
                    entry.error = single
            return
        self._settle(batch, result)

    @staticmethod
    def _settle(batch: list[_Entry], result: InsertResult) -> None:
        # A payload rejected before it became a row comes back as it was handed
        # over (match by identity); one rejected as a row (its id taken by
        # another tenant) comes back as that row (match by decision_id).
        by_payload = {id(r.payload): r for r in result.rejected}
        handed = {id(e.payload) for e in batch}
        by_id = {r.decision_id: r for r in result.rejected if id(r.payload) not in handed and r.decision_id}
        for entry in batch:
            rejection = by_payload.get(id(entry.payload)) or by_id.get(_decision_id(entry.payload) or "")
            entry.outcome = Outcome(stored=rejection is None, rejection=rejection, batch_size=len(batch))


def _decision_id(payload: Any) -> str | None:
    value = payload.get("decision_id") if isinstance(payload, dict) else getattr(payload, "decision_id", None)
    return value if isinstance(value, str) else None
