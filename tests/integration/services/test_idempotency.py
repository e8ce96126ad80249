"""Idempotency-Key against the real local stack: a retry returns the first
response and decides nothing twice; another body is a 409; keys are per tenant;
an expired key runs the request again (a second backend with a tiny TTL)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.waiting import wait_for

from entail.net import free_port

from .stack import LocalStack

SOURCE = "ok(X) :- item(X). #defined item/1."
SLOW_SOURCE = "n(0). n(X+1) :- n(X), X < 100000. done :- n(100000)."  # about 1.5 s


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("idempotency")
    with s.client("acme") as acme:
        for name, source in (("idem", SOURCE), ("idem_slow", SLOW_SOURCE)):
            assert acme.post("/v1/rulesets", json={"name": name, "source": source}).status_code in (
                200,
                201,
            )
    with s.client("globex") as globex:
        assert globex.post("/v1/rulesets", json={"name": "idem", "source": SOURCE}).status_code == 201
    return s


def _key() -> str:
    return f"test-{uuid.uuid4()}"


def _case(item: str, **extra: Any) -> dict[str, Any]:
    return {"ruleset": "idem", "facts": {"item": [[item]]}, "query": ["ok(X)"], "wait_ms": 10_000, **extra}


def _audited(stack: LocalStack, item: str) -> list[dict[str, Any]]:
    """The audited decisions of ruleset idem whose facts hold ``item``."""
    now = datetime.now(UTC)
    params = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "ruleset": "idem",
        "page_size": 1000,
    }
    with stack.client("acme_audit") as audit:
        response = audit.get("/v1/audit/decisions", params=params)
        assert response.status_code == 200, response.text
        found = []
        for summary in response.json()["items"]:
            full = audit.get(f"/v1/audit/decisions/{summary['decision_id']}").json()
            if full["facts"] == {"item": [[item]]}:
                found.append(full)
        return found


def test_a_retry_returns_the_first_response_and_decides_once(stack: LocalStack) -> None:
    key, item = _key(), f"a-{uuid.uuid4().hex[:8]}"
    with stack.client("acme") as acme:
        first = acme.post("/v1/decisions", json=_case(item), headers={"Idempotency-Key": key})
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "succeeded"
        assert "Idempotent-Replayed" not in first.headers
        again = acme.post("/v1/decisions", json=_case(item), headers={"Idempotency-Key": key})
        assert again.status_code == 200, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content == first.content  # the same body, byte for byte
        assert again.json()["decision_id"] == first.json()["decision_id"]
        # member order and spelled-out defaults make the same request
        reordered = {"wait_ms": 10_000, "query": ["ok(X)"], "facts": {"item": [[item]]}, "ruleset": "idem"}
        third = acme.post(
            "/v1/decisions", json={**reordered, "explain": False}, headers={"Idempotency-Key": key}
        )
        assert third.json()["decision_id"] == first.json()["decision_id"]
    # exactly one decision reached the audit trail
    wait_for(lambda: _audited(stack, item), what="the audited decision")
    time.sleep(1.0)  # a second decision would have arrived by now (the first took less)
    audited = _audited(stack, item)
    assert [d["decision_id"] for d in audited] == [first.json()["decision_id"]]


def test_a_202_is_replayed_as_the_same_202(stack: LocalStack) -> None:
    key = _key()
    body = {"ruleset": "idem_slow", "facts": {}, "query": ["done"], "wait_ms": 0}
    with stack.client("acme") as acme:
        first = acme.post("/v1/decisions", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 202, first.text
        again = acme.post("/v1/decisions", json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 202
        assert again.json()["decision_id"] == first.json()["decision_id"]
        assert again.headers["Location"] == first.headers["Location"]


def test_the_same_key_with_another_body_is_a_409(stack: LocalStack) -> None:
    key = _key()
    with stack.client("acme") as acme:
        assert (
            acme.post("/v1/decisions", json=_case("x1"), headers={"Idempotency-Key": key}).status_code == 200
        )
        other = acme.post("/v1/decisions", json=_case("x2"), headers={"Idempotency-Key": key})
        assert other.status_code == 409, other.text
        assert other.headers["content-type"].startswith("application/problem+json")
        problem = other.json()
        assert problem["type"].endswith("/idempotency-key-reused")
        assert problem["request_id"] == other.headers["X-Request-Id"]
        # the same key on another operation is another request too
        batch = {"ruleset": "idem", "query": ["ok(X)"], "cases": [{"facts": {"item": [["x1"]]}}]}
        assert (
            acme.post("/v1/decisions/batch", json=batch, headers={"Idempotency-Key": key}).status_code == 409
        )


def test_keys_are_per_tenant(stack: LocalStack) -> None:
    key = _key()
    with stack.client("acme") as acme, stack.client("globex") as globex:
        mine = acme.post("/v1/decisions", json=_case("t1"), headers={"Idempotency-Key": key})
        theirs = globex.post("/v1/decisions", json=_case("t1"), headers={"Idempotency-Key": key})
        assert mine.status_code == theirs.status_code == 200, (mine.text, theirs.text)
        assert "Idempotent-Replayed" not in theirs.headers
        assert mine.json()["decision_id"] != theirs.json()["decision_id"]
        # and another body under globex's use of the key is globex's business alone
        assert (
            globex.post("/v1/decisions", json=_case("t2"), headers={"Idempotency-Key": key}).status_code
            == 409
        )
        assert (
            acme.post("/v1/decisions", json=_case("t1"), headers={"Idempotency-Key": key}).status_code == 200
        )


def test_batch_and_publish_replay(stack: LocalStack) -> None:
    batch = {"ruleset": "idem", "query": ["ok(X)"], "cases": [{"facts": {"item": [["b1"]]}}, {"facts": {}}]}
    with stack.client("acme") as acme:
        key = _key()
        first = acme.post("/v1/decisions/batch", json=batch, headers={"Idempotency-Key": key})
        assert first.status_code in (200, 202), first.text
        again = acme.post("/v1/decisions/batch", json=batch, headers={"Idempotency-Key": key})
        assert again.content == first.content and again.status_code == first.status_code
        ids = [d["decision_id"] for d in first.json()["decisions"]]
        assert [d["decision_id"] for d in again.json()["decisions"]] == ids

        key = _key()
        rules = {"name": f"idem_pub_{uuid.uuid4().hex[:6]}", "source": SOURCE}
        published = acme.post("/v1/rulesets", json=rules, headers={"Idempotency-Key": key})
        assert published.status_code == 201, published.text
        replayed = acme.post("/v1/rulesets", json=rules, headers={"Idempotency-Key": key})
        assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.json() == published.json()
        assert replayed.headers["Location"] == published.headers["Location"]
        # without the key, the same source is the existing version (200), not a replay
        plain = acme.post("/v1/rulesets", json=rules)
        assert plain.status_code == 200 and "Idempotent-Replayed" not in plain.headers


def test_bad_keys_are_a_400_and_errors_are_not_kept(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        for bad in ("has space", "x" * 256, "é"):
            response = acme.post("/v1/decisions", json=_case("k"), headers={"Idempotency-Key": bad.encode()})
            assert response.status_code == 400, (bad, response.text)
            assert response.json()["type"].endswith("/invalid-idempotency-key")
        key = _key()
        missing = {**_case("k"), "ruleset": "no_such_ruleset"}
        assert acme.post("/v1/decisions", json=missing, headers={"Idempotency-Key": key}).status_code == 404
        # the 404 freed the key: the same request runs again (another 404, not a replay)
        again = acme.post("/v1/decisions", json=missing, headers={"Idempotency-Key": key})
        assert again.status_code == 404 and "Idempotent-Replayed" not in again.headers


def test_a_duplicate_in_flight_is_a_409(stack: LocalStack) -> None:
    key = _key()
    body = {"ruleset": "idem", "facts": {"item": [["in-flight"]]}, "query": ["ok(X)"], "wait_ms": 5_000}
    headers = {"Idempotency-Key": key}
    relay = stack.stack.child("relay").process
    assert relay is not None
    # the relay frozen, no job reaches the worker: the first request holds its key for
    # as long as it waits, however fast the machine (a slow program raced the clock)
    os.kill(relay.pid, signal.SIGSTOP)
    try:
        with stack.client("acme") as acme, ThreadPoolExecutor(1) as pool:
            first = pool.submit(acme.post, "/v1/decisions", json=body, headers=headers)
            time.sleep(0.3)
            # whichever of the two came first, the other is refused
            second = acme.post("/v1/decisions", json=body, headers=headers)
            os.kill(relay.pid, signal.SIGCONT)
            answers = sorted([first.result(timeout=30), second], key=lambda r: r.status_code)
    finally:
        os.kill(relay.pid, signal.SIGCONT)
    done, refused = answers
    assert done.status_code in (200, 202), done.text
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/idempotency-key-in-flight")
    assert refused.headers["Retry-After"] == "1"
    with stack.client("acme") as acme:
        replay = acme.post("/v1/decisions", json=body, headers=headers)
        assert replay.json()["decision_id"] == done.json()["decision_id"]


def test_an_expired_key_runs_the_request_again(stack: LocalStack) -> None:
    port = free_port()
    stack.stack.spawn(
        "backend2",
        "entail_backend",
        ENTAIL_BACKEND_PORT=str(port),
        ENTAIL_IDEMPOTENCY_TTL_S="0.5",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        stack.stack.wait_ready(f"{url}/readyz", "backend2", 60)
        key = _key()
        with stack.client("acme", url=url) as acme:
            first = acme.post("/v1/decisions", json=_case("ttl"), headers={"Idempotency-Key": key})
            assert first.status_code == 200, first.text
            soon = acme.post("/v1/decisions", json=_case("ttl"), headers={"Idempotency-Key": key})
            assert soon.headers.get("Idempotent-Replayed") == "true"
            time.sleep(0.8)
            later = acme.post("/v1/decisions", json=_case("ttl"), headers={"Idempotency-Key": key})
            assert later.status_code == 200 and "Idempotent-Replayed" not in later.headers
            # a new decision (served from the result cache: the same case, a new id)
            assert later.json()["decision_id"] != first.json()["decision_id"]
    finally:
        stack.stack.kill("backend2")  # the stack is shared: it goes on with its own processes only
