"""The SDK's retries and fallbacks against a real stack whose keys get 6 requests
at once and 1 a second after that: a 429 is retried after its Retry-After, with
the same Idempotency-Key, and answered; past the attempts it is a RateLimited;
a decision whose event stream is refused (the waiters' bound) is polled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from entail_client import Client, RateLimited, RetryPolicy
from support.waiting import wait_for

from entail.state.quotas import running_key

from ..services.stack import KEYS, LocalStack, local_stack
from .recording import RecordingTransport


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    env = {
        "ENTAIL_RATE_LIMIT_PER_S": "1",
        "ENTAIL_RATE_LIMIT_BURST": "6",
        # one waiting client at a time, one running decision per tenant: the
        # fallback test takes the only waiter slot and parks decisions behind a held run
        "ENTAIL_WAITERS_MAX": "1",
        "ENTAIL_TENANT_MAX_RUNNING": "1",
    }
    with local_stack(tmp_path_factory.mktemp("sdk-retries"), **env) as s:
        yield s


def drain(stack: LocalStack) -> None:
    """Spend the acme_rate key's bucket until the service answers 429."""
    with stack.client("acme_rate") as raw:
        for _ in range(10):
            if raw.get("/v1/rulesets").status_code == 429:
                return
    raise AssertionError("never limited")


def test_a_429_is_retried_after_retry_after_with_the_same_idempotency_key(stack: LocalStack) -> None:
    transport = RecordingTransport()
    with Client(stack.url, api_key=KEYS["acme_rate"][0], transport=transport) as entail:
        entail.publish("sdk-rate", "ok(X) :- amount(X, _). #defined amount/2.")
        drain(stack)
        decision = entail.decide("sdk-rate", {"amount": [["a", 1]]}, "ok(X)")
    assert decision["status"] == "succeeded"
    posts = [e for e in transport.log if e.path == "/v1/decisions"]
    assert posts[0].status == 429 and posts[-1].status == 200
    told = float(posts[0].answer_headers["retry-after"])
    assert told >= 1
    assert posts[1].at - posts[0].at >= told  # waited as told, not just backed off
    assert len({e.headers["idempotency-key"] for e in posts}) == 1  # one logical call, one key


def test_past_its_attempts_a_429_is_rate_limited_with_its_fields(stack: LocalStack) -> None:
    policy = RetryPolicy(attempts=1)
    with Client(stack.url, api_key=KEYS["acme_rate"][0], retry=policy) as entail:
        time.sleep(3)  # refill, then spend it all
        drain(stack)
        with pytest.raises(RateLimited) as caught:
            entail.rulesets()
    error = caught.value
    assert error.status == 429 and error.retry_after is not None and error.retry_after >= 1
    assert "acme-rate" in error.detail and error.type.startswith("https://")


def test_connection_errors_are_retried_then_raised() -> None:
    # nothing listens on port 9 of 127.0.0.1: every attempt is refused
    policy = RetryPolicy(attempts=3, backoff_s=0.01)
    started = time.monotonic()
    with Client("http://127.0.0.1:9", api_key="x", retry=policy) as entail, pytest.raises(httpx.ConnectError):
        entail.whoami()
    assert time.monotonic() - started < 5


def test_a_refused_event_stream_falls_back_to_polling(stack: LocalStack) -> None:
    # The stack's start-up publishes the examples with acme's key, and this test makes five
    # requests with it: wait for a full bucket (6 at 1/s), or the stream is refused by the rate
    # limit (429) instead of the waiters' bound (503) when this test runs first on its worker.
    time.sleep(6.5)
    r = redis.Redis.from_url(stack.redis_url)
    # acme's only running slot is held: its decisions stay parked until released
    seconds, micros = r.time()
    held = "dec_held_by_the_sdk_test"
    r.zadd(running_key("acme"), {held: seconds * 1000 + micros // 1000 + 600_000})
    transport = RecordingTransport()
    try:
        with Client(stack.url, api_key=KEYS["acme"][0], transport=transport) as entail:
            entail.publish("sdk-fallback", "ok(X) :- amount(X, _). #defined amount/2.")
            with stack.client("acme") as raw:
                parked = raw.post(
                    "/v1/decisions", json={"ruleset": "sdk-fallback", "facts": {"amount": [["h", 1]]}}
                )
                assert parked.status_code == 202, parked.text
                # the backend's only waiter slot, taken by a stream on the parked decision
                with raw.stream("GET", f"/v1/decisions/{parked.json()['decision_id']}/events") as holder:
                    assert holder.status_code == 200
                    with ThreadPoolExecutor(1) as pool:
                        future = pool.submit(
                            entail.decide,
                            "sdk-fallback",
                            {"amount": [["f", 2]]},
                            "ok(X)",
                            wait_ms=0,
                            timeout=60,
                        )
                        wait_for(
                            lambda: any(
                                e.path.endswith("/events") and e.status == 503 for e in transport.log
                            ),
                            what="the refused event stream",
                        )
                        r.zrem(running_key("acme"), held)  # now the parked decisions run
                        decision = future.result(timeout=90)
    finally:
        r.zrem(running_key("acme"), held)
        r.close()
    assert decision["status"] == "succeeded"
    assert [a["atom"] for a in (decision["answers"] or [])[0]["answers"]] == ['ok("f")']
    path = f"/v1/decisions/{decision['decision_id']}"
    refused = next(i for i, e in enumerate(transport.log) if e.path == path + "/events")
    assert transport.log[refused].status == 503
    polls = [e for e in transport.log[refused + 1 :] if e.path == path]
    assert polls and polls[-1].status == 200  # polled until final (429s on the way are retried)
