"""A bounded pool of worker processes with a supervisor, for CPU-heavy work of the backend.

Why processes: the engine is pure Python. Run on the event loop (or on a thread,
which still holds the GIL) one spinning program stalls every other request of
every tenant. In a pool process it only occupies that process.

Guarantees:

- at most ``size`` tasks run at once; at most ``queue_max`` wait (and at most
  ``queue_max_per_tenant`` of one tenant); beyond that :class:`PoolBusy` (a 503
  with Retry-After), so a flood is refused instead of queued without bound;
- waiting tasks are served round-robin between tenants: one tenant's queue does
  not delay another's first task by more than the tasks already running;
- the supervisor SIGKILLs a process whose task runs longer than ``kill_factor``
  times its budget (the engine's own wall-time checks should stop it long
  before), starts a replacement and fails the task with :class:`TaskKilled`;
- a process that dies (out of memory, a crash) is replaced and its task fails
  with :class:`TaskCrashed`; the pool keeps serving;
- affinity (``run(..., affinity=key)``): a task that reads state a process keeps
  between tasks (a materialised dataset model, entail/dataset_eval.py) goes to an
  idle process that ran a task of the same key before, else to the idle process
  that served the fewest keys. While the processes that hold its key (or are
  loading it) are all busy, the task waits for one of them, at most
  ``affinity_wait_ms`` from when it was queued; meanwhile the round-robin serves
  the next tenant in line (the waiting task's tenant keeps its place), so the
  wait delays no other tenant's task, and a process is left idle only when no
  task waiting could use it. Past the wait the task takes any idle process.

Tasks are plain module-level functions (pickled by reference) taking and
returning picklable values; see :mod:`entail.compute.tasks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, NoReturn, TypeVar, cast

T = TypeVar("T")

# modules the fork server imports once, so each new pool process starts warm: the
# engine's tasks, and what a task over datasets needs on its first cache miss (the
# dataset evaluation, the local store and the Redis client it is built with: seconds
# of imports on a loaded machine, paid once here instead of by a decision). Named,
# not imported: a module that fails to import here is imported by its first task.
PRELOAD = [
    "entail.compute.tasks",
    "entail.dataset_eval",
    "entail.datasets.local_store",
    "entail.state.client",
    "entail.bootstrap",
]

# the affinity keys a process is remembered to have served (most recent last): a
# hint, the process's own cache decides what it still holds
HELD_KEYS = 64


class PoolError(Exception):
    """Base of the pool's own failures (not the task's)."""


class PoolBusy(PoolError):
    """Every process is busy and the queue (or this tenant's share of it) is full."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PoolClosed(PoolError):
    """The pool is shutting down."""


class TaskKilled(PoolError):
    """The supervisor killed the process: the task overran ``kill_factor`` x its budget."""

    def __init__(self, budget_ms: int, killed_after_ms: int) -> None:
        super().__init__(
            f"the work ran past {killed_after_ms} ms (twice its {budget_ms} ms limit) and was stopped"
        )
        self.budget_ms = budget_ms
        self.killed_after_ms = killed_after_ms


class TaskCrashed(PoolError):
    """The process died while running the task (e.g. killed by the OS)."""


class TaskOutOfMemory(PoolError):
    """The task hit the pool process's memory limit."""


class TaskError(PoolError):
    """The task raised an exception the task function did not turn into a result."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name


class _Watchdog:
    """The pool process's backstop when its parent (the supervisor) is gone: exits
    the process once a task runs past its deadline. One thread for the process's
    life, looking every ``period_s``: a task arms it with one assignment (a
    ``threading.Timer`` per task started a thread for every decision). It runs
    between bytecodes, so a spin in pure Python still yields to it."""

    def __init__(self, period_s: float = 1.0) -> None:
        self.deadline: float | None = None
        self._period_s = period_s
        threading.Thread(target=self._watch, name="entail-watchdog", daemon=True).start()

    def _watch(self) -> None:
        while True:
            deadline = self.deadline
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                os._exit(70)
            time.sleep(self._period_s if deadline is None else min(self._period_s, deadline - now))

    def arm(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        self.deadline = None


def _serve(conn: Connection, memory_mb: int) -> None:
    """A pool process: run tasks from ``conn`` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    watchdog = _Watchdog()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        fn, args, self_kill_s = message
        # the parent is the supervisor; the watchdog is the backstop when the parent is gone
        watchdog.arm(self_kill_s)
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except MemoryError:
            reply = ("memory", f"the work needed more than the pool's {memory_mb} MB of memory")
        except BaseException as exc:  # every failure goes back to the caller, named
            reply = ("error", (type(exc).__name__, str(exc)))
        finally:
            watchdog.disarm()
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", f"the result needed more than the pool's {memory_mb} MB of memory"))
        except Exception as exc:  # e.g. a result that does not pickle
            conn.send(("error", (type(exc).__name__, f"result not sendable: {exc}")))


class _Slot:
    """One pool process and the parent's end of its pipe; used by one thread at a time."""

    def __init__(self, ctx: Any, memory_mb: int) -> None:
        self._ctx = ctx
        self._memory_mb = memory_mb
        self.process: Any = None
        self.conn: Connection | None = None
        self.started = 0
        self.generation = 0
        self.closed = False  # the pool is closing: never start a replacement
        self.lock = threading.Lock()  # a warm-up and a task never race on one slot
        # affinity keys of tasks this process ran, and of the one it runs (touched on
        # the event loop only)
        self.held: OrderedDict[Hashable, None] = OrderedDict()
        self.running: Hashable | None = None

    def warm(self) -> None:
        with self.lock:
            if self.process is None and not self.closed:
                self.start()

    def start(self) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_serve, args=(child, self._memory_mb), name="entail-compute", daemon=True
        )
        process.start()
        child.close()
        self.process, self.conn = process, parent
        self.started += 1
        self.generation = self.started  # a new process holds nothing of the old one's

    def kill(self) -> None:
        # close() (shutting down) and the slot's own thread (seeing the pipe die)
        # may both get here for one process: take the handles first, and a second
        # close of the same pipe is harmless (EBADF)
        process, conn = self.process, self.conn
        self.process, self.conn = None, None
        if process is not None and process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        if process is not None:
            process.join(5)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def replace(self) -> None:
        self.kill()
        if not self.closed:
            self.start()

    def stop(self) -> None:
        self.closed = True
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        if self.process is not None:
            self.process.join(2)
        self.kill()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], budget_ms: int, kill_after_s: float) -> Any:
        """Run one task (on an executor thread); kill and replace the process on overrun."""
        with self.lock:
            return self._call(fn, args, budget_ms, kill_after_s)

    def _call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], budget_ms: int, kill_after_s: float
    ) -> Any:
        if self.conn is None or self.process is None or not self.process.is_alive():
            self.replace()
        if self.conn is None:
            raise PoolClosed("the service is shutting down")
        conn = self.conn
        try:
            conn.send((fn, args, kill_after_s + 5.0))
        except (BrokenPipeError, EOFError, OSError) as exc:
            self.replace()
            raise TaskCrashed(f"the pool process was gone ({exc}); retry") from None
        started = time.monotonic()
        try:
            answered = conn.poll(kill_after_s)
        except (EOFError, OSError):
            answered = True  # closed under us: recv below reports it
        if not answered:
            self.replace()
            raise TaskKilled(budget_ms, round((time.monotonic() - started) * 1000))
        try:
            reply = conn.recv()
        except (EOFError, OSError):
            self.crashed()
        return _outcome(reply)

    def crashed(self) -> NoReturn:
        """The pipe closed under a task: the process died. Replaced (blocking)."""
        code = self.process.exitcode if self.process is not None else None
        self.replace()
        raise TaskCrashed(f"the pool process died while working (exit code {code})") from None


def _outcome(reply: tuple[str, Any]) -> Any:
    """A task's result, or its failure raised, from the pool process's reply."""
    status, payload = reply
    if status == "ok":
        return payload
    if status == "memory":
        raise TaskOutOfMemory(payload)
    raise TaskError(*payload)


@dataclass
class _Item:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    budget_ms: int
    future: asyncio.Future[Any]
    tenant: str
    affinity: Hashable | None = None
    queued_at: float = field(default_factory=time.monotonic)


class ComputePool:
    """``size`` worker processes, a bounded per-tenant round-robin queue and a supervisor.

    Create, :meth:`start` (blocking: starts the processes), ``await run(...)`` from
    one event loop, :meth:`close`.
    """

    def __init__(
        self,
        size: int,
        *,
        queue_max: int = 16,
        queue_max_per_tenant: int = 8,
        kill_factor: float = 2.0,
        memory_mb: int = 0,
        start_method: str = "forkserver",
        affinity_wait_ms: int = 250,
    ) -> None:
        if size < 1:
            raise ValueError("a compute pool needs at least one process")
        self.size = size
        self.queue_max = queue_max
        self.queue_max_per_tenant = queue_max_per_tenant
        self.kill_factor = kill_factor
        self.affinity_wait_s = affinity_wait_ms / 1000
        ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            ctx.set_forkserver_preload(PRELOAD)
        self._slots = [_Slot(ctx, memory_mb) for _ in range(size)]
        self._idle: list[_Slot] = list(self._slots)  # a slot's process starts on warm-up or first use
        self._waiting: OrderedDict[str, deque[_Item]] = OrderedDict()
        self._queued = 0
        self._running = 0
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="entail-compute")
        self._closed = False
        self._wake: asyncio.TimerHandle | None = None  # a task waiting for its process gives up
        # tasks whose reply the event loop waits for: id(slot) -> (the loop, the pipe's fd,
        # the task, the supervisor's timer)
        self._on_loop: dict[int, tuple[asyncio.AbstractEventLoop, int, _Item, asyncio.TimerHandle]] = {}
        self.killed = 0  # tasks stopped by the supervisor since start
        self.crashed = 0

    # lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start every process now (blocking)."""
        for slot in self._slots:
            slot.warm()

    def start_in_background(self) -> None:
        """Start the processes on the pool's threads: the service answers at once;
        a task that comes first waits for its process (a slot starts on first use)."""
        for slot in self._slots:
            self._threads.submit(slot.warm)

    def close(self) -> None:
        self._closed = True
        if self._wake is not None:
            self._wake.cancel()
        for queue in self._waiting.values():
            for item in queue:
                if not item.future.done():
                    item.future.set_exception(PoolClosed("the service is shutting down"))
        self._waiting.clear()
        self._queued = 0
        for key, (loop, fd, item, overrun) in list(self._on_loop.items()):
            # replies the loop waits for: nobody reads them now (the processes die below)
            overrun.cancel()
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
            del self._on_loop[key]
            self._running -= 1
            if not item.future.done():
                item.future.set_exception(PoolClosed("the service is shutting down"))
        for slot in self._slots:
            if slot in self._idle:
                slot.closed = True
                with slot.lock:  # waits for a warm-up in progress, so no process is left behind
                    slot.stop()
            else:  # busy: its thread is waiting on the pipe; killing it ends the wait
                slot.closed = True
                slot.kill()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> dict[str, int]:
        return {
            "size": self.size,
            "running": self._running,
            "queued": self._queued,
            "killed": self.killed,
            "crashed": self.crashed,
        }

    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process is not None]

    # work -----------------------------------------------------------------------
    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        budget_ms: int,
        tenant: str = "",
        affinity: Hashable | None = None,
    ) -> T:
        """``fn(*args)`` in a pool process. Raises :class:`PoolBusy` at once when the
        queue is full; the task's own exceptions come back as :class:`TaskError`.
        ``affinity``: a key of the state the task reads and the process keeps (see
        the module's doc); a string's choice is stable across runs."""
        if self._closed:
            raise PoolClosed("the service is shutting down")
        waiting = self._waiting.get(tenant)
        if self._queued >= self.queue_max or (
            waiting is not None and len(waiting) >= self.queue_max_per_tenant
        ):
            raise PoolBusy(
                f"all {self.size} compute processes are busy and {self._queued} task(s) wait; retry shortly"
            )
        loop = asyncio.get_running_loop()
        item = _Item(fn, args, budget_ms, loop.create_future(), tenant, affinity)
        self._waiting.setdefault(tenant, deque()).append(item)
        self._queued += 1
        self._dispatch(loop)
        try:
            return cast(T, await item.future)
        except asyncio.CancelledError:
            self._forget(item)  # still waiting: drop it; running: it finishes unobserved
            raise

    def _forget(self, item: _Item) -> None:
        queue = self._waiting.get(item.tenant)
        if queue is not None and item in queue:
            queue.remove(item)
            self._queued -= 1
            if not queue:
                del self._waiting[item.tenant]

    def _next(self, now: float) -> _Item | None:
        """Round-robin: the first tenant in line whose first task can start now gives
        it and goes to the back; a tenant whose first task waits for its process
        (:meth:`_waits`) keeps its place. None: every first task waits."""
        for tenant, queue in list(self._waiting.items()):
            while queue and queue[0].future.done():  # cancelled while waiting
                queue.popleft()
                self._queued -= 1
            if not queue:
                del self._waiting[tenant]
                continue
            if self._waits(queue[0], now):
                continue
            item = queue.popleft()
            if queue:
                self._waiting.move_to_end(tenant)
            else:
                del self._waiting[tenant]
            self._queued -= 1
            return item
        return None

    def _waits(self, item: _Item, now: float) -> bool:
        """Whether ``item`` waits for a busy process that holds (or is loading) its
        key: none of the idle ones holds it, and it has waited less than the bound."""
        key = item.affinity
        if key is None or now - item.queued_at >= self.affinity_wait_s:
            return False
        if any(key in slot.held for slot in self._idle):
            return False
        return any(
            slot not in self._idle and (key in slot.held or slot.running == key) for slot in self._slots
        )

    def _wake_at(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        """Dispatch again when the first waiting task's wait ends (a process may
        have stayed idle for it)."""
        ends = [
            q[0].queued_at + self.affinity_wait_s
            for q in self._waiting.values()
            if q and q[0].affinity is not None
        ]
        if not ends:
            return
        when = loop.time() + max(0.0, min(ends) - now)
        if self._wake is not None and self._wake.when() <= when:
            return
        if self._wake is not None:
            self._wake.cancel()
        self._wake = loop.call_at(when, self._woken, loop)

    def _woken(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake = None
        self._dispatch(loop)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._idle and self._queued and not self._closed:
            now = time.monotonic()
            item = self._next(now)
            if item is None:
                self._wake_at(loop, now)
                return
            slot = self._idle.pop(self._choose(item.affinity))
            slot.running = item.affinity
            self._running += 1
            kill_after_s = self.kill_factor * item.budget_ms / 1000
            if self._send_on_loop(loop, slot, item, kill_after_s):
                continue
            done = self._threads.submit(slot.call, item.fn, item.args, item.budget_ms, kill_after_s)
            done.add_done_callback(partial(self._on_thread_done, loop, slot, item, slot.generation))

    # the round trip on the event loop ---------------------------------------------
    # A task for a live, idle process is sent from the loop and its reply read when
    # the pipe turns readable (add_reader), the supervisor's kill a loop timer: no
    # executor thread woken, no GIL hand-offs, no call_soon_threadsafe per task (it
    # halved the pool's CPU per task). Only what blocks goes to the pool's threads:
    # starting a process (first use, after a death) and replacing one that was
    # killed or died, with the task's failure reported when it is replaced.
    def _send_on_loop(
        self, loop: asyncio.AbstractEventLoop, slot: _Slot, item: _Item, kill_after_s: float
    ) -> bool:
        conn, process = slot.conn, slot.process
        if conn is None or process is None or not slot.lock.acquire(blocking=False):
            return False  # not started yet, or a warm-up holds it: the thread path starts it
        try:
            conn.send((item.fn, item.args, kill_after_s + 5.0))
        except (BrokenPipeError, EOFError, OSError):
            slot.lock.release()  # died while idle: the thread path replaces it and runs the task
            return False
        except Exception as exc:  # e.g. arguments that do not pickle (nothing was sent): the task's failure
            slot.lock.release()
            self._finished(slot, item, slot.generation, None, exc)
            return True
        fd = conn.fileno()
        generation = slot.generation
        # libuv's timers count whole milliseconds from a truncated clock and can fire up
        # to 1 ms before the delay has passed: a kill at "twice the budget" reported
        # 1999 ms for 1000 (a flaky test); 1 ms more is never early
        started = time.monotonic()
        overrun = loop.call_later(
            kill_after_s + 0.001, self._overran, loop, slot, item, generation, fd, item.budget_ms, started
        )
        self._on_loop[id(slot)] = (loop, fd, item, overrun)
        loop.add_reader(fd, self._replied, loop, slot, item, generation, fd, conn, overrun)
        return True

    def _unwatch(self, loop: asyncio.AbstractEventLoop, slot: _Slot, fd: int) -> None:
        if self._on_loop.pop(id(slot), None) is not None:
            loop.remove_reader(fd)

    def _replied(
        self,
        loop: asyncio.AbstractEventLoop,
        slot: _Slot,
        item: _Item,
        generation: int,
        fd: int,
        conn: Connection,
        overrun: asyncio.TimerHandle,
    ) -> None:
        overrun.cancel()
        self._unwatch(loop, slot, fd)
        try:
            # uvloop (libuv) leaves a watched fd non-blocking: a reply larger than the
            # pipe's buffer would fail half read, and the next task's send half written
            os.set_blocking(fd, True)
            reply = conn.recv()
        except (EOFError, OSError):  # the process died (or close() killed it)
            self._in_thread(loop, slot, item, generation, slot.crashed)
            return
        slot.lock.release()
        try:
            result, error = _outcome(reply), None
        except PoolError as exc:
            result, error = None, exc
        self._finished(slot, item, generation, result, error)

    def _overran(
        self,
        loop: asyncio.AbstractEventLoop,
        slot: _Slot,
        item: _Item,
        generation: int,
        fd: int,
        budget_ms: int,
        started: float,
    ) -> None:
        self._unwatch(loop, slot, fd)
        killed_after_ms = round((time.monotonic() - started) * 1000)

        def kill() -> NoReturn:
            slot.replace()
            raise TaskKilled(budget_ms, killed_after_ms)

        self._in_thread(loop, slot, item, generation, kill)

    def _in_thread(
        self,
        loop: asyncio.AbstractEventLoop,
        slot: _Slot,
        item: _Item,
        generation: int,
        work: Callable[[], Any],
    ) -> None:
        """Replace the slot's process on a pool thread (blocking), then finish the task
        with the failure ``work`` raises; the slot's lock is held until then."""
        if self._closed:
            slot.lock.release()
            self._finished(slot, item, generation, None, PoolClosed("the service is shutting down"))
            return

        def locked() -> Any:
            try:
                return work()
            finally:
                slot.lock.release()

        done = self._threads.submit(locked)
        done.add_done_callback(partial(self._on_thread_done, loop, slot, item, generation))

    def _choose(self, key: Hashable | None) -> int:
        """The index in ``_idle`` of the process for a task of affinity ``key``: one
        that served the key, else the idle process that served the fewest keys (so
        distinct keys spread over the processes; on a tie, the first in an order
        the key's hash chooses). A task without a key also takes the idle process
        that served the fewest keys (the last one on a tie), leaving the others
        free for theirs."""
        if key is None:
            return min(range(len(self._idle)), key=lambda i: (len(self._idle[i].held), -i))
        for index, slot in enumerate(self._idle):
            if key in slot.held:
                return index
        start = zlib.crc32(repr(key).encode())
        order = {id(slot): (start + n) % self.size for n, slot in enumerate(self._slots)}
        return min(range(len(self._idle)), key=lambda i: (len(self._idle[i].held), order[id(self._idle[i])]))

    def holders(self, key: Hashable) -> list[int]:
        """The pids of the processes that served a task of affinity ``key`` (a hint)."""
        return [s.process.pid for s in self._slots if key in s.held and s.process is not None]

    def _on_thread_done(
        self,
        loop: asyncio.AbstractEventLoop,
        slot: _Slot,
        item: _Item,
        generation: int,
        done: Future[Any],
    ) -> None:
        """On the executor thread (or the closing one): hand the outcome back to the loop."""
        if done.cancelled():  # still queued when close() shut the threads down
            error: BaseException | None = PoolClosed("the service is shutting down")
            result = None
        else:
            error = done.exception()
            result = None if error is not None else done.result()
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(self._finished, slot, item, generation, result, error)

    def _finished(
        self, slot: _Slot, item: _Item, generation: int, result: Any, error: BaseException | None
    ) -> None:
        self._running -= 1
        if self._closed:
            if not item.future.done():
                item.future.set_exception(PoolClosed("the service is shutting down"))
            return
        slot.running = None
        self._idle.append(slot)
        if slot.generation != generation:  # replaced (killed, crashed): its state is gone
            slot.held.clear()
        if item.affinity is not None and error is None:
            slot.held[item.affinity] = None
            slot.held.move_to_end(item.affinity)
            if len(slot.held) > HELD_KEYS:
                slot.held.popitem(last=False)
        if isinstance(error, TaskKilled):
            self.killed += 1
        elif isinstance(error, TaskCrashed):
            self.crashed += 1
        if not item.future.done():
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)
        self._dispatch(asyncio.get_running_loop())
