"""The worker's decisions over datasets, on a real Redis, the real local store and
the worker's own evaluator (entail_worker.evaluation, real pool processes) without
HTTP: a materialisation past the pool's memory cap ends its decision ``failed``
with ``limit-memory`` (never a hang, a crash or a lost job), and the same process
goes on deciding from the models it keeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from entail_worker.evaluation import Evaluations

from entail import decisions, jobs
from entail.bootstrap import bootstrap
from entail.bus.port import REASONING_JOBS
from entail.compute import ComputePool
from entail.models import DecisionRecord
from entail.services import Services
from entail.settings import Settings

from ..application.test_jobs import messages
from .test_dataset_eval import PROGRAM, case_of, chain, decide


@pytest.fixture
def roomy(settings: Settings) -> Settings:
    """Room for a model of millions of facts: the memory cap is what stops it."""
    return settings.model_copy(update={"limit_derived_facts": 50_000_000, "limit_wall_time_ms": 60_000})


@pytest.fixture
async def services(roomy: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    svc = await bootstrap(roomy, redis=redis)
    try:
        yield svc
    finally:
        await svc.aclose()


async def decided(services: Services, evaluator: Evaluations, ruleset: str, ask: list[str]) -> DecisionRecord:
    """A decision submitted as the backend does, handled as the worker does, as stored."""
    version = await services.registry.resolve("acme", ruleset)
    assert version is not None
    limits = decisions.service_limits(services.settings, {})
    sub = await decisions.submit(services, "acme", version, {"ask": [ask]}, ["ok(A, B)"], False, limits)
    (job,) = [
        m
        for m in await messages(services.redis, REASONING_JOBS)
        if m.attributes["decision_id"] == sub.record.decision_id
    ]
    outcome = await jobs.handle_job(services, services.settings, evaluator, job)
    assert not outcome.redeliver, outcome
    stored = await services.decisions.get("acme", sub.record.decision_id)
    assert stored is not None
    return stored


async def test_a_dataset_decision_over_the_memory_cap_fails_and_the_worker_keeps_deciding(
    services: Services, roomy: Settings
) -> None:
    store = services.datasets
    small, _ = await store.ingest("acme", "small", chain(10), created_by="k")
    big, _ = await store.ingest("acme", "big", chain(2500), created_by="k")  # 3M `above` facts
    for name, version in (("org", small), ("org_big", big)):
        await services.registry.publish(
            "acme", name, PROGRAM, "", [], "k", datasets={"org": f"{version.name}@{version.version}"}
        )
    # the cap: what a pool process takes once it has answered a decision over datasets,
    # plus 120 MB (the address space of the engine, DuckDB and its threads varies by machine)
    probe = ComputePool(1)
    await asyncio.to_thread(probe.start)
    try:
        await decide(probe, store, case_of(roomy, small, {"ask": [["p0", "p1"]]}), None)
        status = await probe.run(Path.read_text, Path("/proc/self/status"), budget_ms=5_000)
    finally:
        probe.close()
    cap_mb = int(status.split("VmSize:")[1].split()[0]) // 1024 + 120
    evaluator = Evaluations(roomy.model_copy(update={"worker_processes": 1, "compute_memory_mb": cap_mb}))
    evaluator.start_in_background()
    try:
        first = await decided(services, evaluator, "org", ["p0", "p3"])
        assert first.status == "succeeded" and first.answers is not None
        assert [a["atom"] for a in first.answers[0]["answers"]] == ["ok(p0,p3)"]

        failed = await decided(services, evaluator, "org_big", ["p0", "p3"])
        assert failed.status == "failed" and failed.error is not None
        assert failed.error.code == "limit-memory" and f"{cap_mb} MB" in failed.error.message

        again = await decided(services, evaluator, "org", ["p1", "p4"])
        assert again.status == "succeeded" and again.answers is not None
        assert [a["atom"] for a in again.answers[0]["answers"]] == ["ok(p1,p4)"]
        kept = evaluator.references.stats()  # the small version's model outlived the failure
        assert (kept.loads, kept.hits, kept.entries) == (1, 1, 1), kept
        assert evaluator.pool.stats()["crashed"] == 0
    finally:
        evaluator.close()
