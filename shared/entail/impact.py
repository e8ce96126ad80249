"""Impact as a job: re-run the succeeded decisions of a window against another
version of their ruleset, in the background, one decision at a time in a compute
pool, and keep the job's state (progress, then result or error) where any
request can read it. The backend's ``POST /v1/rulesets/{name}/impact`` starts
one (:func:`start`) and answers 202 with the status URL at once.

Job state lives in Redis under ``entail:impact:{tenant}:{job_id}`` for
``impact_job_ttl_s``: a job is only found with a key of its own tenant. The state
is JSON encoded by the standard library: the changes carry proofs, which nest
deeper than pydantic's encoder goes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from . import dataset_eval
from .compute import (
    ComputePool,
    PoolBusy,
    PoolClosed,
    PoolError,
    TaskCrashed,
    TaskError,
    TaskKilled,
    TaskOutOfMemory,
    tasks,
)
from .dataset_binding import DatasetBindingError, resolve_bindings
from .decisions import service_limits
from .models import DatasetRef, DecisionRecord, utcnow
from .replay import Candidate
from .services import Services
from .state import keys

log = logging.getLogger("entail.impact")

PROGRESS_EVERY_S = 0.5  # progress is written at most this often (and at the end)
BUSY_RETRY_S = 0.25  # the pool's queue is full: the job waits its turn, it never fails for that
HEARTBEAT_S = 5.0  # a running job's state is rewritten at least this often, even mid-decision
LOST_AFTER_S = 30.0  # a "running" job not rewritten for this long lost its backend: it is failed


class TooManyJobs(Exception):
    """The tenant already runs ``impact_jobs_per_tenant`` impact jobs in this process."""

    def __init__(self, allowed: int) -> None:
        super().__init__(f"{allowed} impact job(s) of this tenant are running; wait for one to finish")
        self.allowed = allowed


def status_url(name: str, job_id: str) -> str:
    return f"/v1/rulesets/{name}/impact/{job_id}"


def new_job(name: str, candidate: dict[str, Any], total: int) -> dict[str, Any]:
    job_id = "imp_" + secrets.token_hex(12)
    now = utcnow()
    return {
        "job_id": job_id,
        "ruleset": name,
        "candidate": candidate,
        "status": "running",
        "progress": {"done": 0, "total": total},
        "status_url": status_url(name, job_id),
        "created_at": now,
        "updated_at": now,
        "result": None,
        "error": None,
    }


class ImpactJobs:
    """Job state in Redis, tenant-scoped, with a TTL."""

    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis, self.ttl_s = redis, ttl_s

    async def save(self, tenant: str, job: dict[str, Any]) -> None:
        job["updated_at"] = utcnow()
        await self.redis.set(keys.impact_job(tenant, job["job_id"]), json.dumps(job), ex=self.ttl_s)

    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        """The job; one whose backend stopped without a word (killed) reads as failed."""
        raw = await self.redis.get(keys.impact_job(tenant, job_id))
        if raw is None:
            return None
        job: dict[str, Any] = await asyncio.to_thread(json.loads, raw)  # a big result: not on the loop
        if job["status"] == "running" and _age_s(job["updated_at"]) > LOST_AFTER_S:
            job["status"] = "failed"
            job["error"] = {
                "type": "job-lost",
                "detail": f"the backend running the job stopped (no progress for {LOST_AFTER_S:g} s); "
                "start it again",
            }
        return job


def _age_s(timestamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds()


async def _heartbeat(store: ImpactJobs, tenant: str, job: dict[str, Any]) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        await store.save(tenant, job)


async def run(
    services: Services,
    pool: ComputePool,
    store: ImpactJobs,
    tenant: str,
    job: dict[str, Any],
    source: str,
    records: list[DecisionRecord],
    truncated: bool,
    limits: dict[str, int],
    datasets: list[DatasetRef] | None = None,
) -> None:
    """Re-run ``records`` with the candidate ``source``; the job's state says how far it got.
    ``datasets``: versions that replace the ones a decision recorded under the same
    binding ("same rules, new data"); the others are read as recorded."""
    name = job["ruleset"]
    budget_ms = 4 * limits["wall_time_ms"]  # two compiles and two evaluations at most
    originals: dict[int, str | None] = {}
    changes: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    masked = unchanged = 0
    last_saved = time.monotonic()
    heartbeat = asyncio.create_task(_heartbeat(store, tenant, job))
    try:
        for record in records:
            if record.masked_predicates:
                masked += 1
            else:
                original = None
                if not record.explain:  # no stored proofs: explain with the version that decided
                    original = await _original_source(services, tenant, record, originals)
                try:
                    if record.datasets or datasets:
                        out = await _run_with_datasets(
                            services, pool, tenant, name, source, original, record, datasets or [], limits
                        )
                    else:
                        out = await _run_waiting(
                            pool,
                            budget_ms,
                            tenant,
                            name,
                            source,
                            original,
                            record.facts or {},
                            record.query,
                            record.answers or [],
                            limits,
                        )
                except PoolClosed:
                    raise
                except PoolError as exc:
                    out = {"error": {"code": failure_code(exc), "message": str(exc)}}
                if "error" in out:
                    failures.append(
                        {
                            "decision_id": record.decision_id,
                            "code": out["error"]["code"],
                            "detail": out["error"]["message"],
                        }
                    )
                elif out["changed"]:
                    changes.append(
                        {
                            "decision_id": record.decision_id,
                            "version": record.ruleset.version,
                            "old_answers": record.answers or [],
                            "new_answers": out["new_answers"],
                            "rules_differ": out["rules_differ"],
                        }
                    )
                else:
                    unchanged += 1
            job["progress"]["done"] += 1
            if time.monotonic() - last_saved >= PROGRESS_EVERY_S:
                await store.save(tenant, job)
                last_saved = time.monotonic()
        job["result"] = {
            "ruleset": name,
            "candidate": job["candidate"],
            "decisions": len(records),
            "not_replayable": masked,
            "unchanged": unchanged,
            "changed": len(changes),
            "failed": len(failures),
            "truncated": truncated,
            "changes": changes,
            "failures": failures,
        }
        job["status"] = "succeeded"
    except asyncio.CancelledError:
        job["status"] = "failed"
        job["error"] = {
            "type": "interrupted",
            "detail": "the service stopped while the job ran; start it again",
        }
        await asyncio.shield(store.save(tenant, job))
        raise
    except Exception as exc:  # the job's state says what happened: it never stays running
        log.exception("impact job %s failed", job["job_id"])
        job["status"] = "failed"
        job["error"] = {"type": "internal-error", "detail": f"the job failed: {type(exc).__name__}: {exc}"}
    finally:
        heartbeat.cancel()
    await store.save(tenant, job)


def with_overrides(recorded: list[DatasetRef], overrides: list[DatasetRef]) -> list[DatasetRef]:
    """The versions a re-run reads: each recorded binding's override if there is one."""
    by_binding = {r.binding: r for r in recorded}
    for o in overrides:
        if o.binding in by_binding:
            by_binding[o.binding] = o
    return [by_binding[b] for b in sorted(by_binding)]


async def _run_with_datasets(
    services: Services,
    pool: ComputePool,
    tenant: str,
    name: str,
    source: str,
    original: str | None,
    record: DecisionRecord,
    overrides: list[DatasetRef],
    limits: dict[str, int],
) -> dict[str, Any]:
    """:func:`entail.compute.tasks.impact_one` for a decision over datasets: in the
    pool (entail/dataset_eval.py: each version materialised once per process), the
    candidate over the recorded versions with ``overrides``, the original (to
    explain old answers) over the recorded ones."""
    store = services.datasets
    # compile, read and materialise (the service's wall-time cap), then the case
    budget_ms = services.settings.limit_wall_time_ms + limits["wall_time_ms"]

    async def run(program: str, refs: list[DatasetRef]) -> dict[str, Any]:
        case = dataset_eval.DatasetCase(
            reader=services.dataset_reader,
            refs=tuple(refs),
            source=program,
            filename=f"{name}.lp",
            facts=record.facts or {},
            query=record.query,
            explain=True,
            limits=limits,
            cache_bytes=services.settings.reference_cache_bytes,
        )
        while True:  # while the queue is full the job waits instead of failing (_run_waiting)
            try:
                return await dataset_eval.evaluate_recorded(pool, store, tenant, case, budget_ms=budget_ms)
            except DatasetBindingError as exc:
                return {"error": {"code": exc.code, "message": str(exc)}}
            except PoolBusy:
                await asyncio.sleep(BUSY_RETRY_S)

    new = await run(source, with_overrides(record.datasets, overrides))
    if "error" in new:
        return new
    old_answers = record.answers or []
    if tasks.answer_sets(old_answers) == tasks.answer_sets(new["answers"]):
        return {"changed": False}
    old_rules = tasks.proof_rules(old_answers)
    if original is not None:
        replayed = await run(original, list(record.datasets))
        if "error" not in replayed:
            old_rules = tasks.proof_rules(replayed["answers"])
    return {
        "changed": True,
        "new_answers": new["answers"],
        "rules_differ": sorted(old_rules ^ tasks.proof_rules(new["answers"])),
    }


async def _run_waiting(pool: ComputePool, budget_ms: int, tenant: str, *args: Any) -> dict[str, Any]:
    """One task in the pool; while the queue is full the job waits instead of failing."""
    while True:
        try:
            out: dict[str, Any] = await pool.run(tasks.impact_one, *args, budget_ms=budget_ms, tenant=tenant)
            return out
        except PoolBusy:
            await asyncio.sleep(BUSY_RETRY_S)


async def _original_source(
    services: Services, tenant: str, record: DecisionRecord, cache: dict[int, str | None]
) -> str | None:
    version = record.ruleset.version
    if version not in cache:
        stored = await asyncio.to_thread(services.audit.get_ruleset, tenant, record.ruleset.name, version)
        cache[version] = stored.source if stored is not None else None
    return cache[version]


def running_for(jobs: set[asyncio.Task[Any]], tenant: str) -> int:
    return sum(1 for t in jobs if not t.done() and t.get_name().startswith(f"impact:{tenant}:"))


def failure_code(exc: PoolError) -> str:
    """The code a decision's re-run failed with when the pool stopped it (as the
    backend names the same failure of a request)."""
    if isinstance(exc, TaskKilled):
        return "limit-wall-time"
    if isinstance(exc, TaskOutOfMemory):
        return "limit-memory"
    if isinstance(exc, TaskError):
        return "too-deeply-nested" if exc.type_name == "RecursionError" else "internal-error"
    if isinstance(exc, TaskCrashed):
        return "compute-unavailable"  # the task's process died
    return "internal-error"


def ensure_room(services: Services, jobs: set[asyncio.Task[Any]], tenant: str) -> None:
    """:class:`TooManyJobs` when ``tenant`` runs ``impact_jobs_per_tenant`` jobs already."""
    allowed = services.settings.impact_jobs_per_tenant
    if running_for(jobs, tenant) >= allowed:
        raise TooManyJobs(allowed)


async def start(
    services: Services,
    pool: ComputePool,
    jobs: set[asyncio.Task[Any]],
    tenant: str,
    candidate: Candidate,
    records: list[DecisionRecord],
    truncated: bool,
    datasets: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start an impact job of ``candidate`` over ``records`` as a task added to
    ``jobs`` (the process's running jobs, cancelled when it stops); the job's
    first state. :class:`TooManyJobs` when the tenant runs its quota already.

    ``datasets``: binding -> selector, resolved now, replacing the versions the
    decisions recorded ("same rules, new data"); :class:`DatasetBindingError` when
    one names nothing."""
    ensure_room(services, jobs, tenant)
    overrides = await resolve_bindings(services.datasets, tenant, datasets) if datasets else []
    version = candidate.version
    described: dict[str, Any] = {"version": version.version, "hash": version.hash}
    if overrides:
        described["datasets"] = [o.model_dump() for o in overrides]
    job = new_job(version.name, described, len(records))
    store = ImpactJobs(services.redis, services.settings.impact_job_ttl_s)
    await store.save(tenant, job)
    limits = service_limits(services.settings, {})
    task = asyncio.create_task(
        run(services, pool, store, tenant, job, candidate.source, records, truncated, limits, overrides),
        name=f"impact:{tenant}:{job['job_id']}",
    )
    jobs.add(task)
    task.add_done_callback(jobs.discard)
    return dict(job)


async def status(services: Services, tenant: str, name: str, job_id: str) -> dict[str, Any] | None:
    """The state of ``tenant``'s impact job ``job_id`` of ruleset ``name``; None when
    there is none (or it expired)."""
    job = await ImpactJobs(services.redis, services.settings.impact_job_ttl_s).get(tenant, job_id)
    if job is None or job["ruleset"] != name:
        return None
    return job
