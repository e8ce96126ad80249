"""entail.replay and entail.impact on a real Redis, a real DuckDB audit store and
the worker's evaluation pool, without HTTP: decisions are made by
:func:`entail.jobs.handle_job`, audited, then replayed and re-run against a new
version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from entail_worker.evaluation import Evaluations
from support.waiting import eventually

from entail import decisions, impact, jobs, replay
from entail.bootstrap import bootstrap
from entail.bus.port import REASONING_JOBS
from entail.bus.redis_streams import decode_entry, stream_key
from entail.models import DecisionRecord, RulesetRecord, RulesetVersion
from entail.services import Services
from entail.settings import Settings

V1 = "decision(A, approve) :- applicant(A), income(A, I), I >= 3000000.\n"
V2 = "decision(A, approve) :- applicant(A), income(A, I), I >= 100.\n"
QUERY = ["decision(A, D)"]


@pytest.fixture
async def services(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    svc = await bootstrap(settings, redis=redis)
    try:
        yield svc
    finally:
        await svc.aclose()


async def publish(services: Services, source: str) -> RulesetVersion:
    version, _ = await services.registry.publish("acme", "loan", source, "", [], "k1")
    return version


async def decide(
    services: Services, evaluator: Evaluations, version: RulesetVersion, facts: dict[str, Any]
) -> DecisionRecord:
    """A decision submitted and evaluated as the backend and the worker do; its final record."""
    limits = decisions.service_limits(services.settings, {})
    sub = await decisions.submit(services, "acme", version, facts, QUERY, False, limits)
    entries = await services.redis.xrange(stream_key(REASONING_JOBS))
    (message,) = [
        m
        for m in (decode_entry(i, f) for i, f in entries)
        if m.attributes["decision_id"] == sub.record.decision_id
    ]
    outcome = await jobs.handle_job(services, services.settings, evaluator, message)
    assert outcome.outcome in ("succeeded", "failed"), outcome
    record = await services.decisions.get("acme", sub.record.decision_id)
    assert record is not None and record.done
    return record


def audit(services: Services, version: RulesetVersion, source: str, *records: DecisionRecord) -> None:
    """What the audit sink writes for these decisions and their version."""
    services.audit.put_ruleset(RulesetRecord.from_version(version, source))
    services.audit.insert_decisions(records)


def applicant(name: str, income: int) -> dict[str, Any]:
    return {"applicant": [[name]], "income": [[name, income]]}


async def test_replay_of_an_audited_decision_is_identical(services: Services, evaluator: Evaluations) -> None:
    v1 = await publish(services, V1)
    record = await decide(services, evaluator, v1, applicant("ann", 5_200_000))
    assert record.status == "succeeded"
    audit(services, v1, V1, record)
    result = await replay.replay(services, evaluator.pool, "acme", record.decision_id)
    assert result.identical and result.diff == []
    assert result.original_result_hash == result.replay_result_hash == record.result_hash
    assert result.ruleset == record.ruleset


async def test_replay_reports_the_answers_that_differ_from_the_audited_ones(
    services: Services, evaluator: Evaluations
) -> None:
    v1 = await publish(services, V1)
    record = await decide(services, evaluator, v1, applicant("ann", 5_200_000))
    assert record.answers is not None
    (answered,) = record.answers
    forged = [{**answered, "answers": [{"atom": 'decision("ann",reject)'}]}]
    audit(services, v1, V1, record.model_copy(update={"answers": forged, "result_hash": "0" * 64}))
    result = await replay.replay(services, evaluator.pool, "acme", record.decision_id)
    assert not result.identical
    assert result.diff == [
        replay.AnswerDiff(
            answered["query"], added=['decision("ann",approve)'], removed=['decision("ann",reject)']
        )
    ]


async def test_what_cannot_be_replayed_says_why(services: Services, evaluator: Evaluations) -> None:
    with pytest.raises(replay.NotAudited):
        await replay.replay(services, evaluator.pool, "acme", "dec_nobody")
    v1 = await publish(services, V1)
    record = await decide(services, evaluator, v1, applicant("ann", 5_200_000))
    with pytest.raises(replay.NotReplayable) as not_yet:  # in Redis, not audited yet: retry
        await replay.replay(services, evaluator.pool, "acme", record.decision_id)
    assert not_yet.value.retry_after_s == replay.NOT_AUDITED_YET_RETRY_S
    with pytest.raises(replay.NotAudited):  # another tenant's decision is nobody's
        await replay.replay(services, evaluator.pool, "other", record.decision_id)
    services.audit.insert_decisions([record])
    with pytest.raises(replay.NotReplayable, match="not in the audit store") as no_version:
        await replay.replay(services, evaluator.pool, "acme", record.decision_id)
    assert no_version.value.retry_after_s is None
    failed = await decide(services, evaluator, v1, {"applicant": "not rows"})
    assert failed.status == "failed"
    audit(services, v1, V1, failed)
    with pytest.raises(replay.NotReplayable, match="nothing to compare"):
        await replay.replay(services, evaluator.pool, "acme", failed.decision_id)


async def test_impact_reruns_the_window_against_the_candidate(
    services: Services, evaluator: Evaluations
) -> None:
    v1 = await publish(services, V1)
    ann = await decide(services, evaluator, v1, applicant("ann", 5_200_000))
    bob = await decide(services, evaluator, v1, applicant("bob", 500))
    audit(services, v1, V1, ann, bob)
    await publish(services, V2)
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)

    candidate = await replay.impact_candidate(services, "acme", "loan", "2")
    assert (candidate.version.version, candidate.source) == (2, V2)
    records, truncated = await replay.impact_window(services, "acme", "loan", start, end, 10)
    assert {r.decision_id for r in records} == {ann.decision_id, bob.decision_id} and not truncated
    one, more = await replay.impact_window(services, "acme", "loan", start, end, 1)
    assert len(one) == 1 and more
    assert await replay.impact_window(services, "acme", "loan", end, start, 10) == ([], False)

    running: set[asyncio.Task[Any]] = set()
    job = await impact.start(services, evaluator.pool, running, "acme", candidate, records, truncated)
    assert job["status"] == "running" and job["progress"] == {"done": 0, "total": 2}

    async def finished() -> dict[str, Any] | None:
        state = await impact.status(services, "acme", "loan", job["job_id"])
        return state if state is not None and state["status"] != "running" else None

    final = await eventually(finished, what="the impact job ends")
    assert final["status"] == "succeeded", final
    result = final["result"]
    assert (result["decisions"], result["unchanged"], result["changed"], result["failed"]) == (2, 1, 1, 0)
    (change,) = result["changes"]
    assert change["decision_id"] == bob.decision_id and change["version"] == 1
    assert change["old_answers"][0]["answers"] == []
    assert change["new_answers"][0]["answers"][0]["atom"] == 'decision("bob",approve)'
    assert await impact.status(services, "other", "loan", job["job_id"]) is None  # tenant-scoped
    assert await impact.status(services, "acme", "another", job["job_id"]) is None


async def test_impact_refuses_an_unknown_candidate_and_a_tenant_over_its_jobs(
    services: Services, settings: Settings
) -> None:
    await publish(services, V1)
    with pytest.raises(replay.UnknownCandidate):
        await replay.impact_candidate(services, "acme", "loan", "9")
    with pytest.raises(replay.UnknownCandidate):
        await replay.impact_candidate(services, "other", "loan", "1")

    async def forever() -> None:
        await asyncio.Event().wait()

    running = {
        asyncio.create_task(forever(), name=f"impact:acme:imp_{i}")
        for i in range(settings.impact_jobs_per_tenant)
    }
    try:
        with pytest.raises(impact.TooManyJobs):
            impact.ensure_room(services, running, "acme")
        impact.ensure_room(services, running, "acme2")  # another tenant's jobs are not counted
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
