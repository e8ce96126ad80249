"""Delivery through the bus: crashes, poison jobs, dead letters, several instances."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from support.records import store_pending
from support.waiting import wait_for

from entail.models import utcnow

from .stack import LocalStack, decide, free_port, local_stack

JOBS_STREAM = "entail:bus:reasoning-jobs"
DECISIONS_STREAM = "entail:bus:decisions"
# transitive closure of a 450-node chain: about 100k facts, a second or two of work
SLOW_SOURCE = "reach(X,Y) :- link(X,Y). reach(X,Z) :- reach(X,Y), link(Y,Z). #defined link/2."
SLOW_FACTS = {"link": [[i, i + 1] for i in range(450)]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # the retries (about 33 s) outlast a worker restart on a loaded machine (up
    # to 10 s seen) and its claim lease (1.5 s); a dead letter would now fail
    # the decision instead of leaving it running
    tmp = tmp_path_factory.mktemp("delivery")
    with local_stack(tmp, ENTAIL_RELAY_MAX_ATTEMPTS="24", ENTAIL_RELAY_BACKOFF_MAX_MS="1500") as s:
        yield s


@pytest.fixture
def r(stack: LocalStack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url)
    yield client
    client.close()


def published_records(r: redis.Redis, decision_id: str) -> list[dict[str, Any]]:
    out = []
    for _, fields in r.xrange(DECISIONS_STREAM):
        record = json.loads(fields[b"data"])
        if record["decision_id"] == decision_id:
            out.append(record)
    return out


def test_worker_killed_mid_job_redelivers_and_completes_once(stack: LocalStack, r: redis.Redis) -> None:
    with stack.client("acme") as acme:
        assert acme.post("/v1/rulesets", json={"name": "slow", "source": SLOW_SOURCE}).status_code == 201
        accepted = decide(acme, ruleset="slow", facts=SLOW_FACTS, query=["reach(0, X)"], wait_ms=0)
        decision_id = accepted.json()["decision_id"]

        def running() -> bool:
            return bool(acme.get(f"/v1/decisions/{decision_id}").json()["status"] == "running")

        wait_for(running, what="the worker to start the job")
        stack.stack.kill("worker")
        assert acme.get(f"/v1/decisions/{decision_id}").json()["status"] == "running"
        stack.stack.spawn("worker", "entail_worker")
        stack.stack.wait_ready(f"{stack.stack.worker_url}/readyz", "worker")

        def done() -> dict[str, Any] | None:
            record: dict[str, Any] = acme.get(f"/v1/decisions/{decision_id}").json()
            return record if record["status"] == "succeeded" else None

        record = wait_for(done, timeout_s=60, what="the redelivered job to complete")
    assert len(record["answers"][0]["answers"]) == 450
    assert len(published_records(r, decision_id)) == 1  # completed, and announced, exactly once


def _enqueue(r: redis.Redis, data: bytes, attributes: dict[str, str]) -> None:
    r.xadd(
        JOBS_STREAM,
        {"data": data, "attributes": json.dumps(attributes), "publish_time": utcnow()},
    )


def test_poison_job_is_recorded_failed_and_acked(stack: LocalStack, r: redis.Redis) -> None:
    decision_id = store_pending(stack.redis_url)
    _enqueue(r, b"{not a job", {"decision_id": decision_id, "tenant": "acme", "schema": "entail.job.v1"})
    with stack.client("acme") as acme:

        def failed() -> dict[str, Any] | None:
            record: dict[str, Any] = acme.get(f"/v1/decisions/{decision_id}").json()
            return record if record["status"] == "failed" else None

        record = wait_for(failed, what="the poison job to be recorded as failed")
    assert record["error"]["code"] == "invalid-job"
    assert len(published_records(r, decision_id)) == 1
    wait_for(lambda: not _dead_letters(r, decision_id), what="no dead letter")  # acked, not dead-lettered


def _dead_letters(r: redis.Redis, decision_id: str) -> list[dict[bytes, bytes]]:
    out = []
    for key in r.scan_iter(match=b"entail:bus:reasoning-jobs:*dead-letter*"):
        for _, fields in r.xrange(key):
            if decision_id.encode() in fields.get(b"attributes", b""):
                out.append(fields)
    return out


@pytest.fixture
def default_stack(shared_stack: LocalStack) -> LocalStack:
    """The worker's stack of default settings (5 delivery attempts): a message that
    is always refused reaches the dead letters in seconds, not after this module's
    24 attempts (about 30 s)."""
    return shared_stack.with_own_tenants("dead-letter")


def test_message_always_refused_ends_in_dead_letter(default_stack: LocalStack) -> None:
    # a ghost worker holds the claim for good: every delivery gets 503
    tenant = default_stack.tenant("acme")
    decision_id = store_pending(default_stack.redis_url, tenant)
    job = {
        "schema": "entail.job.v1",
        "decision_id": decision_id,
        "tenant": tenant,
        "ruleset": {"tenant": tenant, "name": "loan", "version": 1, "hash": "0" * 64},
        "facts": {},
        "query": [],
        "request_hash": "0" * 64,
        "submitted_at": utcnow(),
    }
    with redis.Redis.from_url(default_stack.redis_url) as r:
        r.set(f"entail:claim:{decision_id}", b"ghost-worker", px=600_000)
        _enqueue(r, json.dumps(job).encode(), {"decision_id": decision_id, "tenant": tenant})
        letters = wait_for(lambda: _dead_letters(r, decision_id), timeout_s=90, what="the dead letter")
    text = json.dumps({k.decode(): v.decode(errors="replace") for k, v in letters[0].items()})
    assert "503" in text and "another worker" in text


def test_two_backends_two_workers(stack: LocalStack) -> None:
    port_b, port_w = free_port(), free_port()
    stack.stack.spawn("backend2", "entail_backend", ENTAIL_BACKEND_PORT=str(port_b))
    stack.stack.spawn("worker2", "entail_worker", ENTAIL_WORKER_PORT=str(port_w))
    stack.stack.spawn(
        "relay2", "entail.relay", ENTAIL_WORKER_PUSH_URL=f"http://127.0.0.1:{port_w}/push/reasoning-jobs"
    )
    other = f"http://127.0.0.1:{port_b}"
    stack.stack.wait_ready(f"{other}/readyz", "backend2")
    stack.stack.wait_ready(f"http://127.0.0.1:{port_w}/readyz", "worker2")
    with stack.client("acme") as one, stack.client("acme", url=other) as two:
        ids = [
            decide(
                one,
                ruleset="loan",
                facts={"applicant": [[f"m{i}"]], "income": [[f"m{i}", 1000 * i, "salary"]]},
                query=["decision(A, D)"],
            ).json()["decision_id"]
            for i in range(20)
        ]

        def all_done() -> list[dict[str, Any]] | None:
            records = [two.get(f"/v1/decisions/{i}").json() for i in ids]
            return records if all(rec["status"] == "succeeded" for rec in records) else None

        records = wait_for(all_done, timeout_s=30, what="decisions readable through the other backend")
    workers = {rec["worker"] for rec in records}
    print(f"workers that served the 20 decisions: {sorted(workers)}")
    assert all(rec["answers"][0]["answers"] for rec in records)


def test_worker_refuses_pushes_without_the_secret_and_bad_envelopes(stack: LocalStack) -> None:
    push = f"{stack.stack.worker_url}/push/reasoning-jobs"
    secret = stack.stack.env["ENTAIL_PUSH_SECRET"]
    with httpx.Client(timeout=10) as client:
        anonymous = client.post(push, json={"message": {"data": ""}})
        assert anonymous.status_code == 401 and "x-entail-push-secret" in anonymous.json()["detail"]
        wrong = client.post(push, json={}, headers={"X-Entail-Push-Secret": "guess"})
        assert wrong.status_code == 401
        for body in ({}, {"message": {}}, {"message": {"data": "%%%not base64"}}):
            bad = client.post(push, json=body, headers={"X-Entail-Push-Secret": secret})
            assert bad.status_code == 400, body
            assert bad.headers["content-type"].startswith("application/problem+json")
