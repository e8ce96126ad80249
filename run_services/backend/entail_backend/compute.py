"""The backend's side of the compute pool: open it with the app, run a task from a
route, and turn what can go wrong into problem+json.

Every CPU-heavy step of a request (compile, validate, example cases, draft
evaluation, replay, impact) goes through :func:`run`, so the event loop only
awaits and one tenant's heavy program cannot stall another tenant's requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from prometheus_client import Gauge

from entail.compute import (
    ComputePool,
    PoolBusy,
    PoolClosed,
    TaskCrashed,
    TaskError,
    TaskKilled,
    TaskOutOfMemory,
)
from entail.settings import Settings

from .metrics import REGISTRY
from .problems import Problem

T = TypeVar("T")

POOL_TASKS = Gauge(
    "entail_compute_tasks",
    "Compute pool tasks: running or waiting for a process",
    ["state"],
    registry=REGISTRY,
)
POOL_STOPPED = Gauge(
    "entail_compute_stopped_total",
    "Compute pool tasks stopped since start: killed by the supervisor, or their process died",
    ["reason"],
    registry=REGISTRY,
)


def open_pool(settings: Settings) -> ComputePool:
    return ComputePool(
        settings.compute_pool_size,
        queue_max=settings.compute_queue_max,
        queue_max_per_tenant=settings.compute_queue_max_per_tenant,
        kill_factor=settings.compute_kill_factor,
        memory_mb=settings.compute_memory_mb,
    )


async def get_pool(request: Request) -> ComputePool:  # async: a def would run in the thread pool
    pool: ComputePool = request.app.state.compute
    return pool


PoolDep = Annotated[ComputePool, Depends(get_pool)]


def pool_problem(exc: Exception) -> Problem:
    """What a pool failure means to the client."""
    if isinstance(exc, PoolBusy):
        return Problem(
            503,
            "compute-busy",
            "Compute pool busy",
            str(exc),
            headers={"Retry-After": str(exc.retry_after_s)},
        )
    if isinstance(exc, TaskKilled):
        return Problem(
            422,
            "limit-wall-time",
            "Limit exceeded",
            str(exc),
            limit=exc.budget_ms,
            value=exc.killed_after_ms,
        )
    if isinstance(exc, TaskOutOfMemory):
        return Problem(422, "limit-memory", "Limit exceeded", str(exc))
    if isinstance(exc, TaskError) and exc.type_name == "RecursionError":
        return Problem(422, "too-deeply-nested", "Input too deeply nested", str(exc))
    if isinstance(exc, TaskCrashed | PoolClosed):
        return Problem(
            503, "compute-unavailable", "Compute unavailable", str(exc), headers={"Retry-After": "1"}
        )
    return Problem(500, "internal-error", "Internal error", f"the computation failed: {exc}")


async def run(pool: ComputePool, fn: Callable[..., T], *args: Any, budget_ms: int, tenant: str) -> T:
    """``fn(*args)`` in the pool; a pool failure is raised as its problem."""
    try:
        return await pool.run(fn, *args, budget_ms=budget_ms, tenant=tenant)
    except (PoolBusy, PoolClosed, TaskKilled, TaskCrashed, TaskOutOfMemory, TaskError) as exc:
        raise pool_problem(exc) from None


def engine_problem(error: dict[str, Any], *, facts_prefix: str = "/facts") -> Problem:
    """An engine error returned by a task (:func:`entail.compute.tasks.error_json`)."""
    kind, code, message = error["kind"], error["code"], error["message"]
    if kind == "program":
        first = next((d for d in error["diagnostics"] if d["severity"] == "error"), error["diagnostics"][0])
        count = sum(1 for d in error["diagnostics"] if d["severity"] == "error")
        return Problem(
            422,
            "invalid-program",
            "Invalid program",
            f"the program has {count} error(s); first: {first['line']}:{first['column']}: {first['message']}",
            diagnostics=error["diagnostics"],
        )
    if kind == "limit":
        status = 413 if code == "limit-program-size" else 422
        return Problem(status, code, "Limit exceeded", message, limit=error["limit"], value=error["value"])
    if kind == "facts":
        return Problem(
            422,
            "invalid-facts",
            "Invalid facts",
            f"{facts_prefix}{error['path']}: {message}",
            path=error["path"],
        )
    if kind == "query":
        return Problem(422, "invalid-query", "Invalid query", message)
    return Problem(422, code, "Evaluation failed", message)


def _stat(pool: ComputePool, name: str) -> float:
    return float(pool.stats()[name])


@asynccontextmanager
async def running(app_state: Any, settings: Settings) -> AsyncIterator[ComputePool]:
    """The app's pool (``app.state.compute``) and its background jobs
    (``app.state.jobs``, e.g. impact) for the lifetime of the app."""
    pool = open_pool(settings)
    pool.start_in_background()  # ready to answer at once; processes start on the pool's threads
    for gauge, names in ((POOL_TASKS, ("running", "queued")), (POOL_STOPPED, ("killed", "crashed"))):
        for name in names:
            gauge.labels(name).set_function(partial(_stat, pool, name))
    app_state.compute = pool
    app_state.jobs = set()
    try:
        yield pool
    finally:
        jobs: set[asyncio.Task[Any]] = app_state.jobs
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.to_thread(pool.close)
