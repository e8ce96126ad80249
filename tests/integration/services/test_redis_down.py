"""With Redis gone, both services answer 503 (retry later), never 500 or a hang."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from entail.models import Job, RulesetRef, new_decision_id, utcnow

from .stack import LocalStack, local_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("redis-down")) as s:
        s.stack.redis.stop()
        yield s


def test_backend_answers_503(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        r = acme.post("/v1/decisions", json={"ruleset": "loan", "facts": {}, "query": []})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["retry-after"] == "1"
        assert "state store unavailable" in r.json()["detail"]
        ready = acme.get("/readyz")
        assert ready.status_code == 503 and "Redis is unreachable" in ready.json()["detail"]
        assert acme.get("/healthz").status_code == 200  # alive, just not ready
        # no internal address (or the password in a Redis URL) in any answer
        for text in (r.text, ready.text):
            assert "127.0.0.1" not in text and f":{stack.stack.redis.port}" not in text


def test_worker_answers_503_so_the_job_is_redelivered(stack: LocalStack) -> None:
    job = Job(
        decision_id=new_decision_id(),
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="loan", version=1, hash="0" * 64),
        facts={},
        query=[],
        request_hash="0" * 64,
        submitted_at=utcnow(),
    )
    envelope = {
        "message": {
            "data": base64.b64encode(job.model_dump_json(by_alias=True).encode()).decode(),
            "attributes": {},
        },
        "subscription": "projects/local/subscriptions/reasoning-worker",
    }
    headers = {"X-Entail-Push-Secret": stack.stack.env["ENTAIL_PUSH_SECRET"]}
    r = httpx.post(
        f"{stack.stack.worker_url}/push/reasoning-jobs", json=envelope, headers=headers, timeout=30
    )
    assert r.status_code == 503, r.text
    assert r.json()["outcome"] == "transient-failure"
