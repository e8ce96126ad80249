"""Cloud mode end to end, on Google's Pub/Sub emulator instead of the relay.

backend (ENTAIL_BUS=pubsub) → topic reasoning-jobs → push subscription → worker
→ topic decisions → push subscription → audit sink function → BigQuery (bqemulator),
which the backend's audit API then reads.

Every part is a real process on 127.0.0.1: the embedded Redis, the emulator
(which makes the push requests itself), the backend and the worker
(``python -m``), and the audit sink under functions-framework. The emulator
pushes the Pub/Sub push envelope, not a CloudEvent: functions-framework turns a
raw Pub/Sub push into the same ``messagePublished`` CloudEvent Eventarc
delivers, so the sink runs unchanged (its push endpoint carries the topic path,
which becomes the event's source). The emulator signs nothing, so the worker
runs with ENTAIL_PUSH_AUTH=none, the explicit emulator setting.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from support.waiting import wait_for

from entail.audit.bigquery_store import BigQueryAuditStore
from entail.auth import key_entry
from entail.bus.port import DECISIONS, REASONING_JOBS
from entail.net import free_port
from entail.state.embedded import EmbeddedRedis

from .pubsub_emulator import PubSubEmulator, require_emulator

pytestmark = pytest.mark.slow

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
JOBS_COPY = "jobs-copy"
API_KEY = "ent_cloud_e2e_key"
AUDITOR_KEY = "ent_cloud_e2e_audit_key"
SOURCE = """
eligible(P) :- applicant(P, Age, Income), Age >= 18, Income >= 30000.
decision(P, approve) :- eligible(P).
decision(P, refuse) :- applicant(P, _, _), not eligible(P).
"""


class Processes:
    """Child processes with their output in one log; stopped in reverse order."""

    def __init__(self, log: IO[str], env: dict[str, str]) -> None:
        self.log = log
        self.env = env
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        self.log.write(f"--- starting {name}\n")
        self.log.flush()
        process = subprocess.Popen(
            argv, env={**self.env, **env}, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO
        )
        self.children.append((name, process))
        return process

    def wait_http(self, url: str, name: str) -> None:
        def answers() -> bool:
            self._alive(name)
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        # a service's first start imports the whole stack: on a loaded 2-core
        # machine that has taken over 30 s
        wait_for(answers, 120, f"{name} at {url}")

    def wait_port(self, port: int, name: str) -> None:
        def listens() -> bool:
            self._alive(name)
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listens, 120, f"{name} on port {port}")

    def _alive(self, name: str) -> None:
        for child, process in self.children:
            if child == name and process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}; see its output above")

    def states(self) -> str:
        def state(process: subprocess.Popen[bytes]) -> str:
            return "running" if process.poll() is None else f"exited {process.returncode}"

        return ", ".join(f"{name}: {state(process)}" for name, process in self.children)

    def stop(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.children):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class CloudStack:
    backend_url: str
    emulator: PubSubEmulator
    bigquery: BigQueryEmulator
    audit_path: Path
    log: Path
    processes: Processes

    def client(self, key: str = API_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.backend_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def diagnose(self) -> str:
        """The processes' states and the tails of every log, minus access-log lines."""
        lines = [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if not (line.startswith("INFO:") and '" 20' in line)
        ]
        return "\n".join(
            [
                f"processes: {self.processes.states()}",
                "--- stack log (backend, worker, sink), last 80 lines:",
                *lines[-80:],
                "--- Pub/Sub emulator:",
                self.emulator.output()[-2000:],
                "--- BigQuery emulator:",
                self.bigquery.log()[-2000:],
            ]
        )

    def wait_for(self, check: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
        return wait_for(check, timeout_s, what, explain=self.diagnose)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStack]:
    require_emulator()
    tmp = tmp_path_factory.mktemp("cloud")
    backend_port, worker_port, sink_port = free_port(), free_port(), free_port()
    worker_push = f"http://127.0.0.1:{worker_port}/push/reasoning-jobs"
    sink_push = f"http://127.0.0.1:{sink_port}/projects/entail-test/topics/{DECISIONS}"
    audit_path = tmp / "audit" / "audit.duckdb"
    audit_path.parent.mkdir()
    log_path = tmp / "stack.log"
    with ExitStack() as stack, log_path.open("w") as log:
        redis = stack.enter_context(EmbeddedRedis(tmp / "redis"))
        bigquery = stack.enter_context(BigQueryEmulator(project="entail-test"))
        BigQueryAuditStore(bigquery.client(), retry=None).ensure_tables()  # Terraform's job in the cloud
        emulator = PubSubEmulator(tmp / "emulator.log")
        keys = [
            key_entry(API_KEY, "cloud-e2e", "acme", ["author", "decide"]),
            key_entry(AUDITOR_KEY, "cloud-e2e-audit", "acme", ["audit"]),
        ]
        env = {
            **{k: v for k, v in os.environ.items() if k != "PORT" and not k.startswith("ENTAIL_")},
            **emulator.env(),  # its port is chosen already: the services start while it does
            "PYTHONUNBUFFERED": "1",
            "ENTAIL_REDIS_URL": redis.url,
            "ENTAIL_DATA_DIR": str(tmp),
            "ENTAIL_API_KEYS_JSON": json.dumps(keys),
            "ENTAIL_BACKEND_PORT": str(backend_port),
            "ENTAIL_WORKER_PORT": str(worker_port),
            "ENTAIL_WORKER_PUSH_URL": worker_push,
            "ENTAIL_PUSH_AUTH": "none",
            "ENTAIL_AUDIT_DUCKDB_PATH": str(audit_path),
            # a BigQuery request that hangs fails after this and is delivered again,
            # well inside the tests' 60 s wait for an audit row
            "ENTAIL_BIGQUERY_TIMEOUT_S": "10",
            "ENTAIL_TENANT_MAX_RUNNING": "4",  # behaviour, not fairness (as services/stack.py)
            **bigquery.env(),  # the backend reads and the sink writes the audit trail in BigQuery
        }
        processes = Processes(log, env)
        stack.callback(processes.stop)
        try:
            processes.start("backend", [sys.executable, "-m", "entail_backend"])
            processes.start("worker", [sys.executable, "-m", "entail_worker"])
            processes.start(
                "sink",
                [
                    sys.executable, "-m", "functions_framework",
                    "--source", str(REPO / "functions" / "audit_sink" / "main.py"),
                    "--target", "audit_sink", "--signature-type", "cloudevent",
                    "--host", "127.0.0.1", "--port", str(sink_port),
                ],
            )  # fmt: skip
            stack.enter_context(emulator)  # the JVM starts in the meantime
            for topic in (REASONING_JOBS, DECISIONS):
                emulator.create_topic(topic)
            emulator.create_subscription("reasoning-worker", REASONING_JOBS, push_endpoint=worker_push)
            emulator.create_subscription("audit-sink", DECISIONS, push_endpoint=sink_push)
            emulator.create_subscription(JOBS_COPY, REASONING_JOBS)  # what the backend published
            processes.wait_http(f"http://127.0.0.1:{backend_port}/readyz", "backend")
            processes.wait_http(f"http://127.0.0.1:{worker_port}/readyz", "worker")
            processes.wait_port(sink_port, "sink")
            yield CloudStack(
                f"http://127.0.0.1:{backend_port}", emulator, bigquery, audit_path, log_path, processes
            )
        except BaseException:
            log.flush()
            print(log_path.read_text()[-6000:])
            print(emulator.output())
            raise


def _audited(client: httpx.Client, decision_id: str) -> dict[str, Any] | None:
    response = client.get(f"/v1/audit/decisions/{decision_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def test_a_decision_over_http_is_answered_through_pubsub_and_audited(cloud: CloudStack) -> None:
    with cloud.client() as acme, cloud.client(AUDITOR_KEY) as auditor:
        published = acme.post("/v1/rulesets", json={"name": "loan", "source": SOURCE})
        assert published.status_code == 201, published.text
        facts = {"applicant": [["ann", 31, 45000], ["bob", 17, 80000]]}
        response = acme.post(
            "/v1/decisions",
            json={"ruleset": "loan", "facts": facts, "query": ["decision(P, D)"], "wait_ms": 20_000},
        )
        assert response.status_code == 200, response.text
        decision = response.json()
        assert decision["status"] == "succeeded"
        atoms = [a["atom"] for a in decision["answers"][0]["answers"]]
        assert atoms == ['decision("ann",approve)', 'decision("bob",refuse)']

        # the worker published the record on `decisions`; the emulator pushed it to the sink
        audited = cloud.wait_for(lambda: _audited(auditor, decision["decision_id"]), "the audit row")
    assert audited["status"] == "succeeded"
    assert audited["answers"] == decision["answers"]
    assert audited["ruleset"]["version"] == published.json()["version"]
    # and the row is in the BigQuery emulator itself, where an analyst would query it
    client = cloud.bigquery.client()
    rows = list(
        client.query(
            "SELECT decision_id, status, ruleset_version FROM `entail-test.entail_audit.decisions`"
            f" WHERE completed_at >= TIMESTAMP '2020-01-01' AND decision_id = '{decision['decision_id']}'",
            retry=None,
        ).result(retry=None)
    )
    assert [(r["status"], r["ruleset_version"]) for r in rows] == [("succeeded", published.json()["version"])]
    client.close()


def test_with_pubsub_unreachable_the_backend_answers_503(cloud: CloudStack) -> None:
    """The adapter's errors are the Redis bus's: the API answers 503 problem+json
    with Retry-After, as when Redis is down, and the decision is not lost silently."""
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"
    cloud.processes.start(
        "backend-no-bus",
        [sys.executable, "-m", "entail_backend"],
        ENTAIL_BACKEND_PORT=str(port),
        ENTAIL_PUBSUB_EMULATOR_HOST=dead,
        ENTAIL_PUBSUB_PUBLISH_TIMEOUT_MS="1500",
    )
    cloud.processes.wait_http(f"http://127.0.0.1:{port}/readyz", "backend-no-bus")
    with cloud.client() as acme:
        assert acme.post("/v1/rulesets", json={"name": "loan", "source": SOURCE}).status_code in (200, 201)
    body = {"ruleset": "loan", "facts": {"applicant": [["cy", 40, 1]]}, "query": ["decision(P, D)"]}
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as client:
        response = client.post(f"http://127.0.0.1:{port}/v1/decisions", json=body)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "1"
    assert "Pub/Sub" in response.json()["detail"]


async def test_a_job_delivered_twice_makes_one_decision_and_one_audit_row(cloud: CloudStack) -> None:
    """At least once: the backend's job published again (as a publisher retry
    after a lost reply would) is pushed to the worker again; the worker answers
    it as a duplicate and re-publishes the record, and the sink stores it once."""
    from entail.bus.pubsub import PubSubBus

    subscription = f"projects/{cloud.emulator.project}/subscriptions/{JOBS_COPY}"
    await asyncio.to_thread(cloud.emulator.pull, subscription, 100, 0.5)  # earlier tests' jobs
    with cloud.client() as acme, cloud.client(AUDITOR_KEY) as auditor:
        assert acme.post("/v1/rulesets", json={"name": "loan", "source": SOURCE}).status_code in (200, 201)
        body = {"ruleset": "loan", "facts": {"applicant": [["dee", 52, 61000]]}, "query": ["decision(P, D)"]}
        decision = acme.post("/v1/decisions", json={**body, "wait_ms": 20_000}).json()
        decision_id = decision["decision_id"]
        assert decision["status"] == "succeeded"
        cloud.wait_for(lambda: _audited(auditor, decision_id), "the audit row")

        (job,) = [
            m
            for m in await asyncio.to_thread(cloud.emulator.pull, subscription)
            if m.attributes["decision_id"] == decision_id
        ]
        bus = PubSubBus.from_settings(cloud.emulator.settings())
        try:
            await bus.publish(REASONING_JOBS, job.data, dict(job.attributes))
        finally:
            await bus.close()

        def sink_lines() -> int:
            return sum(
                f"decision {decision_id}: stored" in line for line in cloud.log.read_text().splitlines()
            )

        cloud.wait_for(lambda: sink_lines() >= 2, "the re-published record at the sink")
        now = datetime.now(UTC)
        search = {
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
        }
        rows = auditor.get("/v1/audit/decisions", params={**search, "ruleset": "loan", "page_size": 1000})
        assert rows.status_code == 200, rows.text
        assert [r["decision_id"] for r in rows.json()["items"]].count(decision_id) == 1
        assert acme.get(f"/v1/decisions/{decision_id}").json()["answers"] == decision["answers"]


async def test_a_dead_lettered_job_fails_its_decision_through_pubsub(cloud: CloudStack) -> None:
    """Every accepted decision ends in the cloud too: what Pub/Sub forwards to the
    jobs' dead-letter topic is pushed to the worker's /push/dead-letters (the
    subscription of terraform's pubsub.tf), which fails the decision with
    delivery-failed; the record reaches BigQuery through the sink like any other."""
    import redis.asyncio as aioredis

    from entail.bus.pubsub import PubSubBus
    from entail.models import DecisionRecord, RulesetRef, new_decision_id, utcnow
    from entail.state.decisions import DecisionStore

    dead_letter_topic = f"{REASONING_JOBS}-dead-letter"
    worker = cloud.processes.env["ENTAIL_WORKER_PUSH_URL"].removesuffix("/push/reasoning-jobs")
    cloud.emulator.create_topic(dead_letter_topic)
    cloud.emulator.create_subscription(
        "reasoning-worker-dead-letter-push", dead_letter_topic, push_endpoint=f"{worker}/push/dead-letters"
    )
    record = DecisionRecord(
        decision_id=new_decision_id(),
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="loan", version=1, hash="0" * 64),
        request_hash="0" * 64,
        status="pending",
        submitted_at=utcnow(),
    )
    redis = aioredis.Redis.from_url(cloud.processes.env["ENTAIL_REDIS_URL"])
    try:
        assert await DecisionStore(redis, 3600).create(record)
    finally:
        await redis.aclose()
    job = {"decision_id": record.decision_id, "tenant": "acme"}  # the data is the job as published
    attributes = {  # what Pub/Sub adds when it dead-letters a message
        "decision_id": record.decision_id,
        "tenant": "acme",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": "reasoning-worker-push",
    }
    bus = PubSubBus.from_settings(cloud.emulator.settings())
    try:
        await bus.publish(dead_letter_topic, json.dumps(job).encode(), attributes)
    finally:
        await bus.close()

    with cloud.client() as acme, cloud.client(AUDITOR_KEY) as auditor:

        def failed() -> dict[str, Any] | None:
            body: dict[str, Any] = acme.get(f"/v1/decisions/{record.decision_id}").json()
            return body if body["status"] == "failed" else None

        body = await asyncio.to_thread(cloud.wait_for, failed, "the dead letter to fail the decision")
        assert body["error"]["code"] == "delivery-failed"
        assert "after 5 attempt(s) (subscription reasoning-worker-push)" in body["error"]["message"]
        row = await asyncio.to_thread(
            cloud.wait_for, lambda: _audited(auditor, record.decision_id), "the row"
        )
        assert row["status"] == "failed" and row["error"]["code"] == "delivery-failed"
