"""Every accepted decision ends (issue 12): deep proofs are stored and answered,
dead-lettered jobs and overdue decisions end ``failed`` (announced on SSE and
audited once), and the worker evaluates only jobs of decisions the backend created.

One stack for the module: the relay sweeps every 0.5 s and gives up after two
delivery attempts, so each path ends in seconds (the sweeper's test ages its
decision in the open index instead of waiting out the deadline)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from support.records import store_pending
from support.waiting import wait_for

from entail.models import new_decision_id, utcnow
from entail.record_json import MAX_JSON_DEPTH, json_depth

from .stack import LocalStack, decide, events, local_stack

JOBS_STREAM = "entail:bus:reasoning-jobs"
DECISIONS_STREAM = "entail:bus:decisions"
DEADLINE_S = 60
CHAIN = "r(X,Y) :- e(X,Y).\nr(X,Z) :- r(X,Y), e(Y,Z).\n"
CHAIN_FACTS = {"e": [[i, i + 1] for i in range(130)]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    tmp = tmp_path_factory.mktemp("never-stuck")
    with local_stack(
        tmp,
        ENTAIL_DECISION_DEADLINE_S=str(DEADLINE_S),
        ENTAIL_SWEEP_INTERVAL_S="0.5",
        ENTAIL_RELAY_MAX_ATTEMPTS="2",
    ) as s:
        with s.client("acme") as acme:
            assert acme.post("/v1/rulesets", json={"name": "chain", "source": CHAIN}).status_code == 201
        yield s


@pytest.fixture
def r(stack: LocalStack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url)
    yield client
    client.close()


def published(r: redis.Redis, decision_id: str) -> list[dict[str, Any]]:
    """The records of ``decision_id`` published on topic ``decisions``."""
    out = []
    for _, fields in r.xrange(DECISIONS_STREAM):
        if json.loads(fields[b"attributes"]).get("decision_id") == decision_id:
            out.append(json.loads(fields[b"data"]))
    return out


def audited(stack: LocalStack, decision_id: str) -> dict[str, Any]:
    with stack.client("acme_audit") as audit:

        def row() -> dict[str, Any] | None:
            response = audit.get(f"/v1/audit/decisions/{decision_id}")
            return response.json() if response.status_code == 200 else None

        return wait_for(row, timeout_s=30, what=f"the audit row of {decision_id}")


def enqueue_job(r: redis.Redis, job: dict[str, Any]) -> None:
    r.xadd(
        JOBS_STREAM,
        {
            "data": json.dumps(job).encode(),
            "attributes": json.dumps({"decision_id": job["decision_id"], "tenant": job["tenant"]}),
            "publish_time": utcnow(),
        },
    )


def job_for(
    decision_id: str, ruleset: dict[str, Any], facts: dict[str, Any], query: list[str]
) -> dict[str, Any]:
    return {
        "schema": "entail.job.v1",
        "decision_id": decision_id,
        "tenant": "acme",
        "ruleset": ruleset,
        "facts": facts,
        "query": query,
        "request_hash": "0" * 64,
        "submitted_at": utcnow(),
    }


def test_a_130_step_proof_is_stored_answered_streamed_and_audited(stack: LocalStack, r: redis.Redis) -> None:
    # before: PydanticSerializationError in the worker, 500 x attempts, dead letter,
    # the decision `running` for 7 days and its SSE stream open
    with stack.client("acme") as acme:
        response = decide(
            acme, ruleset="chain", facts=CHAIN_FACTS, query=["r(0, 130)"], explain=True, wait_ms=20_000
        )
        assert response.status_code == 200, response.text
        record = response.json()
        assert record["status"] == "succeeded", record
        proof = record["answers"][0]["answers"][0]["proof"]
        assert json_depth(proof) > 255  # deeper than pydantic's encoder goes
        again = acme.get(f"/v1/decisions/{record['decision_id']}")
        assert again.status_code == 200 and again.json()["answers"] == record["answers"]
        stream = events(acme, record["decision_id"])
    assert stream[-1][0] == "done"
    assert stream[-1][1]["status"] == "succeeded"
    row = audited(stack, record["decision_id"])
    assert row["answers"] == record["answers"]
    assert len(published(r, record["decision_id"])) == 1


def test_the_deepest_proof_the_service_allows_is_stored_and_audited(stack: LocalStack) -> None:
    # proof_depth is capped by the service (200): a request for more gets 200, and
    # the deepest record still fits the audit store's (BigQuery's) 500 levels
    facts = {"e": [[i, i + 1] for i in range(230)]}
    with stack.client("acme") as acme:
        response = decide(
            acme,
            ruleset="chain",
            facts=facts,
            query=["r(0, 230)"],
            explain=True,
            limits={"proof_depth": 1000},
            wait_ms=20_000,
        )
    record = response.json()
    assert record["status"] == "succeeded", record
    assert "truncated" in json.dumps(record["answers"])
    row = audited(stack, record["decision_id"])
    assert row["answers"] == record["answers"]
    assert json_depth(row["answers"]) < MAX_JSON_DEPTH


def test_draft_evaluation_of_a_deep_proof_answers_json(stack: LocalStack) -> None:
    # before: a plain-text 500 (the response model's encoder)
    with stack.client("acme") as acme:
        response = acme.post(
            "/v1/rulesets/evaluate",
            json={"source": CHAIN, "facts": CHAIN_FACTS, "query": ["r(0, 130)"], "explain": True},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert json_depth(response.json()["answers"][0]["answers"][0]["proof"]) > 255


def test_draft_failures_are_problem_json(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        for body in (
            {"source": "p(X) :- q(.", "facts": {}},
            {"source": CHAIN, "facts": {"e": [[1]]}, "query": ["r(0,"]},
            {"source": CHAIN, "facts": CHAIN_FACTS, "limits": {"derived_facts": 10}, "query": ["r(0, X)"]},
        ):
            response = acme.post("/v1/rulesets/evaluate", json=body)
            assert 400 <= response.status_code < 500, (body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json"), response.text


def test_dead_lettered_job_ends_failed_announced_and_audited_once(stack: LocalStack, r: redis.Redis) -> None:
    # before: the dead letter was kept and the decision stayed pending until its TTL
    decision_id = store_pending(stack.redis_url)
    r.set(f"entail:claim:{decision_id}", b"ghost-worker", px=600_000)  # every delivery: 503
    enqueue_job(
        r, job_for(decision_id, {"tenant": "acme", "name": "loan", "version": 1, "hash": "0" * 64}, {}, [])
    )
    with stack.client("acme") as acme:

        def failed() -> dict[str, Any] | None:
            record: dict[str, Any] = acme.get(f"/v1/decisions/{decision_id}").json()
            return record if record["status"] == "failed" else None

        record = wait_for(failed, timeout_s=30, what="the dead letter to fail the decision")
        stream = events(acme, decision_id)
    assert record["error"]["code"] == "delivery-failed"
    assert "after 2 attempt(s)" in record["error"]["message"]
    assert "HTTP 503" in record["error"]["message"] and "another worker" in record["error"]["message"]
    assert stream[-1][0] == "done" and stream[-1][1]["error"]["code"] == "delivery-failed"
    assert audited(stack, decision_id)["error"]["code"] == "delivery-failed"
    assert len(published(r, decision_id)) == 1

    # the cloud path for the same dead letter: a no-op on a final decision
    response = push_dead_letter(stack, decision_id, attempts=5)
    assert response.status_code == 200 and response.json()["outcome"] == "dead-letter-ignored"
    assert len(published(r, decision_id)) == 1


def push_dead_letter(stack: LocalStack, decision_id: str, attempts: int) -> httpx.Response:
    """What Pub/Sub pushes from the jobs' dead-letter topic (its attributes added)."""
    job = job_for(decision_id, {"tenant": "acme", "name": "loan", "version": 1, "hash": "0" * 64}, {}, [])
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(job).encode()).decode(),
            "attributes": {
                "decision_id": decision_id,
                "tenant": "acme",
                "CloudPubSubDeadLetterSourceDeliveryCount": str(attempts),
                "CloudPubSubDeadLetterSourceSubscription": "reasoning-worker-push",
            },
            "messageId": "dl-1",
        },
        "subscription": "projects/p/subscriptions/reasoning-worker-dead-letter-push",
    }
    headers = {"X-Entail-Push-Secret": stack.stack.env["ENTAIL_PUSH_SECRET"]}
    with httpx.Client(timeout=10) as client:
        return client.post(f"{stack.stack.worker_url}/push/dead-letters", json=envelope, headers=headers)


def test_dead_letter_push_endpoint_fails_the_decision_once(stack: LocalStack, r: redis.Redis) -> None:
    decision_id = store_pending(stack.redis_url)
    with httpx.Client(timeout=10) as client:
        anonymous = client.post(f"{stack.stack.worker_url}/push/dead-letters", json={})
    assert anonymous.status_code == 401
    first = push_dead_letter(stack, decision_id, attempts=5)
    assert first.status_code == 200 and first.json()["outcome"] == "delivery-failed", first.text
    second = push_dead_letter(stack, decision_id, attempts=5)
    assert second.json()["outcome"] == "dead-letter-ignored"
    with stack.client("acme") as acme:
        record = acme.get(f"/v1/decisions/{decision_id}").json()
    assert record["status"] == "failed" and record["error"]["code"] == "delivery-failed"
    assert "after 5 attempt(s) (subscription reasoning-worker-push)" in record["error"]["message"]
    assert len(published(r, decision_id)) == 1
    assert audited(stack, decision_id)["status"] == "failed"


def test_decision_open_past_the_deadline_is_swept(stack: LocalStack, r: redis.Redis) -> None:
    # before: nothing ended a decision whose job never came (lost before the bus)
    decision_id = store_pending(stack.redis_url)
    with stack.client("acme") as acme:
        first = acme.get(f"/v1/decisions/{decision_id}").json()
        assert first["status"] == "pending"
        r.zadd("entail:decisions:open", {decision_id: 0}, xx=True)  # accepted long ago

        def failed() -> dict[str, Any] | None:
            record: dict[str, Any] = acme.get(f"/v1/decisions/{decision_id}").json()
            return record if record["status"] == "failed" else None

        record = wait_for(failed, timeout_s=20, what="the sweeper")
        stream = events(acme, decision_id)
    assert record["error"]["code"] == "deadline-exceeded"
    assert stream[-1][0] == "done"
    assert audited(stack, decision_id)["error"]["code"] == "deadline-exceeded"
    assert len(published(r, decision_id)) == 1
    assert r.zscore("entail:decisions:open", decision_id) is None


def test_sweep_endpoint_needs_the_push_credentials_and_sweeps(stack: LocalStack, r: redis.Redis) -> None:
    decision_id = store_pending(stack.redis_url)
    r.zadd("entail:decisions:open", {decision_id: 0})  # accepted long ago
    url = f"{stack.stack.worker_url}/sweep"
    with httpx.Client(timeout=10) as client:
        assert client.post(url).status_code == 401
        swept = client.post(url, headers={"X-Entail-Push-Secret": stack.stack.env["ENTAIL_PUSH_SECRET"]})
    assert swept.status_code == 200 and swept.json()["outcome"] == "swept"
    with stack.client("acme") as acme:
        record = acme.get(f"/v1/decisions/{decision_id}").json()
    assert record["status"] == "failed" and record["error"]["code"] == "deadline-exceeded"
    assert len(published(r, decision_id)) == 1


def _delivered(r: redis.Redis) -> bool:
    """Every job on the stream delivered and acknowledged by the worker's subscription."""
    for group in r.xinfo_groups(JOBS_STREAM):
        if group["name"] == b"reasoning-worker":
            return bool(group["pending"] == 0 and group.get("lag", 1) == 0)
    return False


def test_worker_drops_a_job_for_a_decision_the_backend_never_created(
    stack: LocalStack, r: redis.Redis
) -> None:
    # before: the worker evaluated it and stored (and audited) a record for the forged id
    with stack.client("acme") as acme:
        ruleset = acme.get("/v1/rulesets/chain/versions/latest").json()
    ref = {"tenant": "acme", "name": "chain", "version": ruleset["version"], "hash": ruleset["hash"]}
    forged = new_decision_id()
    enqueue_job(r, job_for(forged, ref, {"e": [[1, 2]]}, ["r(1, X)"]))
    wait_for(lambda: _delivered(r), what="the forged job to be delivered")
    assert r.get(f"entail:decision:{forged}") is None
    assert published(r, forged) == []
    assert "job for unknown decision" in stack.log.read_text()

    # and one whose decision is final already is not evaluated again
    final_id = store_pending(stack.redis_url)
    assert push_dead_letter(stack, final_id, attempts=1).json()["outcome"] == "delivery-failed"
    stored = r.get(f"entail:decision:{final_id}")
    enqueue_job(r, job_for(final_id, ref, {"e": [[1, 2]]}, ["r(1, X)"]))
    wait_for(lambda: _delivered(r), what="the job of a final decision to be delivered")
    assert r.get(f"entail:decision:{final_id}") == stored
