"""The compute pool: bounded, supervised worker processes (entail.compute.pool).

Real processes throughout; task functions are standard-library callables (they
pickle by reference) or the pool's own tasks."""

from __future__ import annotations

import asyncio
import multiprocessing
import operator
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from entail.compute import (
    ComputePool,
    PoolBusy,
    PoolClosed,
    TaskCrashed,
    TaskError,
    TaskKilled,
    TaskOutOfMemory,
    tasks,
)
from entail.compute.pool import _Watchdog

LIMITS = {"derived_facts": 100_000, "wall_time_ms": 1_000, "input_facts": 10_000, "program_bytes": 100_000}


@pytest.fixture
async def pool() -> AsyncIterator[ComputePool]:
    p = ComputePool(1, queue_max=2, queue_max_per_tenant=2, memory_mb=512)
    await asyncio.to_thread(p.start)
    try:
        yield p
    finally:
        await asyncio.to_thread(p.close)


async def test_a_task_runs_in_another_process(pool: ComputePool) -> None:
    assert await pool.run(os.getpid, budget_ms=1000) not in (os.getpid(), None)
    out = await pool.run(
        tasks.evaluate, "p(X) :- q(X).", "t.lp", {"q": [[1]]}, ["p(X)"], False, LIMITS, budget_ms=1000
    )
    assert [a["atom"] for a in out["answers"][0]["answers"]] == ["p(1)"]


async def test_engine_errors_come_back_as_data(pool: ComputePool) -> None:
    out = await pool.run(tasks.evaluate, "p(X) :- q(X", "t.lp", {}, [], False, LIMITS, budget_ms=1000)
    assert out["error"]["kind"] == "program" and out["error"]["diagnostics"][0]["line"] == 1
    out = await pool.run(
        tasks.evaluate, "p(X) :- q(X).", "t.lp", {"q": [[1], [2]]}, [], False,
        {**LIMITS, "input_facts": 1}, budget_ms=1000,
    )  # fmt: skip
    error = out["error"]
    assert (error["code"], error["kind"]) == ("limit-input-facts", "limit")
    assert (error["limit"], error["value"]) == (1, 2)


async def test_an_overrunning_task_is_killed_at_twice_its_budget_and_replaced(pool: ComputePool) -> None:
    before = pool.pids()
    started = time.monotonic()
    with pytest.raises(TaskKilled) as caught:
        await pool.run(time.sleep, 30, budget_ms=300)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 3.0, elapsed
    assert caught.value.budget_ms == 300 and caught.value.killed_after_ms >= 600
    assert pool.pids() != before and pool.stats()["killed"] == 1
    assert await pool.run(operator.add, 2, 3, budget_ms=1000) == 5  # the replacement serves


async def test_a_dying_process_fails_its_task_and_is_replaced(pool: ComputePool) -> None:
    with pytest.raises(TaskCrashed):
        await pool.run(os._exit, 3, budget_ms=1000)
    assert await pool.run(operator.add, 1, 1, budget_ms=1000) == 2


async def test_an_exception_in_the_task_is_a_task_error(pool: ComputePool) -> None:
    with pytest.raises(TaskError) as caught:
        await pool.run(operator.truediv, 1, 0, budget_ms=1000)
    assert caught.value.type_name == "ZeroDivisionError"


async def test_memory_is_capped_per_process(pool: ComputePool) -> None:
    with pytest.raises(TaskOutOfMemory):
        await pool.run(bytearray, 2 * 1024**3, budget_ms=5000)
    assert await pool.run(operator.add, 1, 2, budget_ms=1000) == 3


async def test_a_full_queue_refuses_at_once(pool: ComputePool) -> None:
    running = asyncio.create_task(pool.run(time.sleep, 0.5, budget_ms=2000, tenant="a"))
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(pool.run(time.sleep, 0, budget_ms=2000, tenant=t)) for t in ("a", "b")]
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(PoolBusy):
        await pool.run(time.sleep, 0, budget_ms=2000, tenant="c")
    assert time.monotonic() - started < 0.1
    await asyncio.gather(running, *waiting)


async def test_one_tenant_may_not_fill_the_whole_queue() -> None:
    p = ComputePool(1, queue_max=10, queue_max_per_tenant=1)
    await asyncio.to_thread(p.start)
    try:
        running = asyncio.create_task(p.run(time.sleep, 0.3, budget_ms=2000, tenant="a"))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(p.run(time.sleep, 0, budget_ms=2000, tenant="a"))
        await asyncio.sleep(0.05)
        with pytest.raises(PoolBusy):
            await p.run(time.sleep, 0, budget_ms=2000, tenant="a")
        other = asyncio.create_task(p.run(operator.add, 1, 1, budget_ms=2000, tenant="b"))
        assert await other == 2  # another tenant still gets in line
        await asyncio.gather(running, queued)
    finally:
        await asyncio.to_thread(p.close)


async def test_waiting_tasks_are_served_round_robin_between_tenants() -> None:
    p = ComputePool(1, queue_max=10, queue_max_per_tenant=10)
    await asyncio.to_thread(p.start)
    order: list[str] = []

    async def one(tenant: str, n: int) -> None:
        await p.run(time.sleep, 0.02, budget_ms=2000, tenant=tenant)
        order.append(f"{tenant}{n}")

    try:
        blocker = asyncio.create_task(p.run(time.sleep, 0.2, budget_ms=2000, tenant="x"))
        await asyncio.sleep(0.05)
        jobs = [asyncio.create_task(one("a", i)) for i in range(3)]
        await asyncio.sleep(0.01)
        jobs.append(asyncio.create_task(one("b", 0)))
        await asyncio.gather(blocker, *jobs)
        # b's one task does not wait behind all of a's queue
        assert order.index("b0") <= 1, order
    finally:
        await asyncio.to_thread(p.close)


async def test_a_cancelled_waiting_task_leaves_the_queue(pool: ComputePool) -> None:
    running = asyncio.create_task(pool.run(time.sleep, 0.3, budget_ms=2000))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(pool.run(time.sleep, 0, budget_ms=2000))
    await asyncio.sleep(0.02)
    assert pool.stats()["queued"] == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.stats()["queued"] == 0
    await running


async def test_processes_start_in_the_background_and_on_first_use() -> None:
    p = ComputePool(2, queue_max=2)
    started = time.monotonic()
    p.start_in_background()
    assert time.monotonic() - started < 0.2  # the service does not wait for its pool
    try:
        results = await asyncio.gather(*(p.run(operator.mul, i, 2, budget_ms=10_000) for i in range(4)))
        assert results == [0, 2, 4, 6] and len(p.pids()) == 2
    finally:
        await asyncio.to_thread(p.close)
    assert p.pids() == []


async def test_closing_ends_running_and_waiting_tasks() -> None:
    p = ComputePool(1, queue_max=2)
    await asyncio.to_thread(p.start)
    running = asyncio.create_task(p.run(time.sleep, 30, budget_ms=60_000))
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(p.run(time.sleep, 0, budget_ms=60_000))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await asyncio.to_thread(p.close)
    for task in (running, waiting):
        with pytest.raises(PoolClosed):
            await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 5 and p.pids() == []
    with pytest.raises(PoolClosed):
        await p.run(operator.add, 1, 1, budget_ms=1000)


async def test_a_task_goes_to_the_idle_process_that_served_its_affinity_key() -> None:
    """Each round the keyed task is dispatched first and a slower plain task second.
    Without affinity the keyed task would take the process the plain task left
    last (the other one every round); with it, always the process that served the
    key first. A plain task takes the process that served fewer keys, and a
    replaced process holds none of its predecessor's."""
    p = ComputePool(2, queue_max=8, queue_max_per_tenant=8)
    await asyncio.to_thread(p.start)
    try:
        pids = []
        for _ in range(4):
            keyed = asyncio.create_task(p.run(os.getpid, budget_ms=1000, affinity="graph@1"))
            await asyncio.sleep(0)  # dispatched before the plain task is submitted
            plain = p.run(time.sleep, 0.05, budget_ms=1000)
            pid, _ = await asyncio.gather(keyed, plain)
            pids.append(pid)
        assert len(set(pids)) == 1 and p.holders("graph@1") == pids[:1]
        # a plain task leaves the holder free: the keyed one still finds it idle
        plain_pid = await p.run(os.getpid, budget_ms=1000)
        assert plain_pid != pids[0]
        # the holder's process dies: its replacement holds nothing
        with pytest.raises(TaskCrashed):
            await p.run(os._exit, 3, budget_ms=1000, affinity="graph@1")
        assert p.holders("graph@1") == []
    finally:
        p.close()


async def test_a_keyed_task_waits_a_bounded_time_for_its_busy_process() -> None:
    """The process that holds a key is busy: a task of that key waits for it rather
    than load the key again in the idle process, up to ``affinity_wait_ms``; past
    that it takes the idle process. Another tenant's task meanwhile takes the idle
    process at once."""
    p = ComputePool(2, queue_max=8, queue_max_per_tenant=8, affinity_wait_ms=3_000)
    await asyncio.to_thread(p.start)
    try:
        holder = await p.run(os.getpid, budget_ms=1000, affinity="graph@1")
        # the holder busy for a moment (the plain task takes the other process first:
        # a task without a key prefers the process that served none)
        plain = asyncio.create_task(p.run(os.getpid, budget_ms=1000))
        assert await plain != holder
        busy = asyncio.create_task(p.run(time.sleep, 0.3, budget_ms=2000, affinity="graph@1"))
        await asyncio.sleep(0)
        keyed = asyncio.create_task(p.run(os.getpid, budget_ms=1000, affinity="graph@1", tenant="a"))
        other = await p.run(os.getpid, budget_ms=1000, tenant="b")  # not held back by the wait
        assert other != holder and not keyed.done()
        assert await keyed == holder
        await busy
    finally:
        p.close()
    p = ComputePool(2, queue_max=8, queue_max_per_tenant=8, affinity_wait_ms=100)
    await asyncio.to_thread(p.start)
    try:
        holder = await p.run(os.getpid, budget_ms=1000, affinity="graph@1")
        busy = asyncio.create_task(p.run(time.sleep, 1, budget_ms=5000, affinity="graph@1"))
        await asyncio.sleep(0)
        assert await p.run(os.getpid, budget_ms=1000, affinity="graph@1") != holder  # waited 100 ms
        await busy
    finally:
        p.close()


def _spin_under_watchdog(disarm: bool) -> None:
    watchdog = _Watchdog(period_s=0.05)
    watchdog.arm(0.2)
    if disarm:
        watchdog.disarm()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # a spin in pure Python: the watchdog still gets its turn
        pass


@pytest.mark.parametrize(("disarm", "exit_code"), [(False, 70), (True, 0)])
def test_the_pool_process_watchdog_exits_past_the_deadline_unless_disarmed(
    disarm: bool, exit_code: int
) -> None:
    """The backstop when the supervisor is gone: one thread per process (no thread
    started per task), armed and disarmed by each task."""
    # spawn, not fork: the test process has threads (pytest-xdist, earlier pools)
    process = multiprocessing.get_context("spawn").Process(target=_spin_under_watchdog, args=(disarm,))
    process.start()
    process.join(10)
    assert process.exitcode == exit_code


async def test_arguments_that_do_not_pickle_fail_their_task_and_leave_the_process_serving(
    pool: ComputePool,
) -> None:
    """Sent from the event loop, a task whose arguments cannot cross the pipe fails
    alone: its process goes back to the idle ones, unharmed."""
    with pytest.raises(Exception, match="pickle"):
        await pool.run(operator.add, lambda: 1, 2, budget_ms=1_000)
    assert pool.stats()["running"] == 0
    assert await pool.run(operator.add, 1, 2, budget_ms=1_000) == 3


async def test_replies_are_read_on_the_event_loop_without_a_pool_thread(pool: ComputePool) -> None:
    """A live process's round trip needs no executor thread (the pool's threads only
    start and replace processes): many tasks leave the thread count where it was."""
    await pool.run(operator.add, 1, 2, budget_ms=1_000)
    submitted = []
    submit = pool._threads.submit

    def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        submitted.append(fn)
        return submit(fn, *args, **kwargs)

    pool._threads.submit = counted  # type: ignore[method-assign,assignment]
    for _ in range(20):
        assert await pool.run(operator.add, 1, 2, budget_ms=1_000) == 3
    assert submitted == []
    assert not pool._on_loop


def test_a_reply_larger_than_the_pipe_buffer_comes_back_whole_under_uvloop() -> None:
    """The worker serves on uvloop, which makes a watched fd non-blocking: a large
    answer (and the next task's large arguments) still cross the pipe whole."""
    import uvloop

    async def main() -> None:
        pool = ComputePool(1, queue_max=2, queue_max_per_tenant=2)
        await asyncio.to_thread(pool.start)
        try:
            big = "x" * 3_000_000
            for _ in range(3):
                assert await pool.run(operator.add, big, "y", budget_ms=10_000) == big + "y"
        finally:
            pool.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def test_closing_while_a_first_task_waits_for_its_process_ends_it() -> None:
    """A task for a process not started yet waits on the pool's thread queue behind
    the warm-up; close() cancels it there, and the caller gets PoolClosed (it waited
    forever, and the cancelled future's callback raised on the closing thread)."""
    p = ComputePool(1, queue_max=2)
    p.start_in_background()  # the pool's one thread is busy starting the process
    task = asyncio.create_task(p.run(operator.add, 1, 1, budget_ms=10_000))
    await asyncio.sleep(0)  # dispatched: queued on the thread behind the warm-up
    await asyncio.to_thread(p.close)
    with pytest.raises(PoolClosed):
        await asyncio.wait_for(task, 5)
