"""Where the worker evaluates decisions: a pool of processes (entail.compute),
the :class:`entail.jobs.Evaluator` the worker hands to :func:`entail.jobs.handle_job`.

The engine is pure Python. On the worker's threads, every evaluation of the
process shares one interpreter lock and one event loop: with one tenant's slow
cases running, another tenant's one-millisecond decision waited seconds for its
turn. In a process of its own each evaluation is scheduled by the operating
system, next to the others rather than behind them, the worker's event loop
keeps answering pushes, and a case that overruns twice its wall-time limit is
killed by the pool's supervisor (``limit-wall-time``) instead of holding a
thread forever. Per-tenant running quotas (:mod:`entail.fairness`) keep one tenant
from taking every process: ``ENTAIL_WORKER_PROCESSES`` should exceed
``ENTAIL_TENANT_MAX_RUNNING``.

Each process compiles a ruleset once and keeps it (by source hash and limits);
the worker sends the source with each job, from a small in-process cache. A
decision over datasets runs in the same pool: each process materialises a
version once and keeps it (entail/dataset_eval.py), and the pool sends the next
decision of that version to a process that holds it.
Evaluations can run at a lower CPU priority than the processes that route
requests (``ENTAIL_WORKER_NICENESS``, :mod:`.low_priority`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

from entail import dataset_eval, reasoning, tracing
from entail.compute.pool import (
    ComputePool,
    PoolBusy,
    PoolClosed,
    PoolError,
    TaskCrashed,
    TaskError,
    TaskKilled,
    TaskOutOfMemory,
)
from entail.dataset_binding import DatasetBindingError
from entail.jobs import Evaluated, EvaluationFailed, EvaluatorBusy
from entail.models import DecisionError, Job
from entail.services import Services
from entail.settings import Settings

from . import low_priority

SOURCES_KEPT = 64


WorkerBusy = EvaluatorBusy  # every process busy and the queue full: the job comes back

Outcome = Evaluated


class Evaluations:
    # every task checks the record caps in its process (low_priority.capped): an
    # answer over them never leaves it, and the job does not measure it again
    caps_checked = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ComputePool(
            settings.worker_processes,
            queue_max=settings.worker_queue_max,
            queue_max_per_tenant=settings.worker_queue_max,
            kill_factor=settings.compute_kill_factor,
            memory_mb=settings.compute_memory_mb,
        )
        self._sources: OrderedDict[str, str] = OrderedDict()
        # materialised reference data of decisions over datasets: a cache in each pool
        # process, as their tasks report it (the worker's /metrics)
        self.references = dataset_eval.ReferenceStats(self.pool.pids, settings.reference_cache_bytes)
        self._warming: asyncio.Task[None] | None = None

    def start_in_background(self) -> None:
        """Start the processes, and have each import the task module, without
        holding up the service's start (call from the event loop)."""
        self.pool.start_in_background()
        self._warming = asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        # one no-op task per process at once: the pool gives each to an idle process
        with contextlib.suppress(PoolError):
            await asyncio.gather(
                *(self.pool.run(low_priority.warm, budget_ms=60_000) for _ in range(self.pool.size))
            )

    def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        self.pool.close()

    async def _source(self, svc: Services, digest: str) -> str:
        source = self._sources.get(digest)
        if source is None:
            source = await svc.registry.source(digest)
            if source is None:
                missing = f"ruleset source {digest} is not in the registry"
                raise EvaluationFailed(DecisionError(code="entail-error", message=missing))
            self._sources[digest] = source
            if len(self._sources) > SOURCES_KEPT:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(digest)
        return source

    async def evaluate(self, svc: Services, job: Job) -> tuple[Outcome, float]:
        """Answers, result hash and stats, and the seconds the evaluation took;
        :class:`EvaluationFailed` for a failed decision, :class:`WorkerBusy` to retry."""
        source = await self._source(svc, job.ruleset.hash)
        limits = reasoning.Limits.from_mapping(job.limits) if job.limits else reasoning.Limits()
        t0 = time.perf_counter()
        if job.datasets:
            out = await self._evaluate_with_datasets(svc, job, source, limits)
        else:
            out = await self._evaluate_in_pool(job, source, limits)
        elapsed = time.perf_counter() - t0
        if "stages" in out:
            answers = sum(len(q.get("answers", [])) for q in out.get("answers") or [])
            trace_stages(out["stages"], out.get("stats") or {}, answers, job.explain)
        if "error" in out:
            error = out["error"]
            raise EvaluationFailed(
                DecisionError(
                    code=str(error.get("code", "entail-error")),
                    message=str(error.get("message", "")),
                    diagnostics=list(error.get("diagnostics", [])),
                ),
                stats=out.get("stats") or {},
            )
        return (out["answers"], out["result_hash"], out["stats"], out.get("why_not")), elapsed

    async def _evaluate_with_datasets(
        self, svc: Services, job: Job, source: str, limits: reasoning.Limits
    ) -> dict[str, Any]:
        """A decision over datasets: the recorded versions materialised once in a pool
        process and kept there (entail/dataset_eval.py), the case evaluated from them,
        in the pool as every decision (fairness, the supervisor's kill, the memory cap)."""
        case = dataset_eval.DatasetCase(
            reader=svc.dataset_reader,
            refs=tuple(job.datasets),
            source=source,
            filename=f"{job.ruleset.name}.lp",
            facts=job.facts,
            query=job.query,
            explain=job.explain,
            limits=limits.to_json(),
            timed=tracing.enabled(),
            locale=job.locale,
            explain_absent=job.explain_absent,
            masked=tuple(job.masked_predicates),
            mask_secret=self.settings.mask_secret,
            cache_bytes=self.settings.reference_cache_bytes,
        )
        try:
            return await self._mapped(
                dataset_eval.evaluate_recorded(
                    self.pool,
                    svc.datasets,
                    job.tenant,
                    case,
                    # reading and materialising the versions (under the service's wall-time
                    # cap), then the case (under the job's)
                    budget_ms=self.settings.limit_wall_time_ms + limits.wall_time_ms,
                    task=low_priority.evaluate_over_datasets,
                    args=(
                        self.settings.limit_answers,
                        self.settings.record_max_bytes,
                        self.settings.worker_niceness,
                    ),
                    stats=self.references,
                )
            )
        except DatasetBindingError as exc:
            raise EvaluationFailed(DecisionError(code=exc.code, message=str(exc))) from None

    async def _evaluate_in_pool(self, job: Job, source: str, limits: reasoning.Limits) -> dict[str, Any]:
        return await self._mapped(
            self.pool.run(
                low_priority.evaluate,
                source,
                f"{job.ruleset.name}.lp",
                job.facts,
                job.query,
                job.explain,
                limits.to_json(),
                self.settings.limit_answers,
                self.settings.record_max_bytes,
                self.settings.worker_niceness,
                tracing.enabled(),  # the stages' times, for the engine's spans
                job.locale,
                job.explain_absent,
                budget_ms=limits.wall_time_ms,
                tenant=job.tenant,
            )
        )

    @staticmethod
    async def _mapped(task: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        """A pool task's answer; the pool's failures as the job's outcome: busy or
        closing, the job comes back (redelivered); killed, out of memory or crashed,
        the decision fails with the code that names why."""
        try:
            return await task
        except (PoolBusy, PoolClosed) as exc:
            raise WorkerBusy(str(exc)) from None
        except TaskKilled as exc:
            raise EvaluationFailed(DecisionError(code="limit-wall-time", message=str(exc))) from None
        except TaskOutOfMemory as exc:
            raise EvaluationFailed(DecisionError(code="limit-memory", message=str(exc))) from None
        except TaskError as exc:
            code = "too-deeply-nested" if exc.type_name == "RecursionError" else "internal-error"
            raise EvaluationFailed(DecisionError(code=code, message=str(exc))) from None
        except TaskCrashed as exc:
            raise EvaluationFailed(DecisionError(code="internal-error", message=str(exc))) from None


def trace_stages(stages: dict[str, list[int]], stats: dict[str, Any], answers: int, explain: bool) -> None:
    """The engine's stages, timed in the evaluation process, as spans below the
    current one (``job.handle``): ``engine.compile`` (a ruleset the process
    already compiled takes microseconds), ``engine.evaluate`` (facts in, the
    fixpoint, the queries' answers; the engine's stats as attributes),
    ``engine.prove`` (answers and their proofs as JSON)."""
    extra: dict[str, dict[str, Any]] = {
        "engine.evaluate": {
            "entail.rounds": stats.get("rounds"),
            "entail.input_facts": stats.get("input_facts"),
            "entail.derived_facts": stats.get("derived_facts"),
            "entail.model_facts": stats.get("model_facts"),
            "entail.fixpoint_ms": stats.get("evaluation_ms"),
        },
        "engine.prove": {"entail.answers": answers, "entail.explain": explain},
    }
    for stage in ("compile", "evaluate", "prove"):
        if stage in stages:
            start, end, cpu = stages[stage]
            name = f"engine.{stage}"
            tracing.add_span(name, start, end, {"entail.cpu_ms": round(cpu / 1e6, 3), **extra.get(name, {})})
