"""The SDK's pure parts: the event-stream parser, the retry policy, Retry-After,
problem+json to exceptions, and idempotency keys per logical call. (Its calls
against the service are tested on a real stack: tests/integration/client.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from entail_client import Conflict, EntailError, RateLimited, RetryPolicy, ServerError, Unprocessable
from entail_client._core import Call, EventParser, config, decide_call, poll_intervals, tag_call, timeout_for
from entail_client.errors import error_from_response, parse_retry_after


def test_events_are_parsed_across_comments_and_multi_line_data() -> None:
    parser = EventParser()
    lines = [": keep-alive", "", "event: status", 'data: {"a":', "data: 1}", "", "event: done", "data: x"]
    events = [e for line in lines if (e := parser.line(line)) is not None]
    assert events == [("status", '{"a":\n1}')]
    assert parser.flush() == ("done", "x")  # a stream cut after its last data line
    assert parser.line("data:no-space") is None and parser.flush() == ("message", "no-space")


def test_backoff_grows_with_full_jitter_and_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(backoff_s=0.1, backoff_max_s=1.0, retry_after_max_s=5.0)
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (3, 0.8), (10, 1.0)]:
        delays = [policy.delay(attempt, None) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays) and len(set(delays)) > 1
    assert all(2.0 <= policy.delay(4, 2.0) <= 2.1 for _ in range(50))
    assert policy.delay(0, 3600) <= 5.1  # a huge Retry-After is capped


def test_what_is_retried() -> None:
    policy = RetryPolicy()

    def answer(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    assert policy.should_retry(answer(429)) and policy.should_retry(answer(503))
    assert policy.should_retry(answer(409, **{"Retry-After": "1"}))  # "not audited yet; retry"
    assert not policy.should_retry(answer(409)) and not policy.should_retry(answer(422))
    assert not policy.should_retry(answer(500))


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after(later) or 0) <= 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # past: now


def test_problems_become_exceptions_with_every_member() -> None:
    body = {
        "type": "https://entail.dev/problems/invalid-program",
        "title": "Invalid program",
        "status": 422,
        "detail": "1 error",
        "instance": "/v1/rulesets",
        "diagnostics": [{"line": 1, "column": 3}],
    }
    error = error_from_response(httpx.Response(422, json=body))
    assert isinstance(error, Unprocessable) and isinstance(error, EntailError)
    assert (error.status, error.slug, error.title, error.detail) == (
        422,
        "invalid-program",
        "Invalid program",
        "1 error",
    )
    assert error.instance == "/v1/rulesets" and error.diagnostics == [{"line": 1, "column": 3}]
    with pytest.raises(AttributeError):
        _ = error.nothing_like_this
    limited = error_from_response(
        httpx.Response(429, json={**body, "status": 429}, headers={"Retry-After": "2"})
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 2.0
    assert isinstance(error_from_response(httpx.Response(409, json=body)), Conflict)
    # not a problem at all: the text is the detail
    bare = error_from_response(httpx.Response(502, text="bad gateway"))
    assert isinstance(bare, ServerError) and bare.detail == "bad gateway" and bare.type == "about:blank"


def test_one_idempotency_key_per_post_and_none_on_other_methods() -> None:
    one = decide_call("loan", {}, "p(X)", False, 0, None)
    two = decide_call("loan", {}, "p(X)", False, 0, None)
    assert one.headers["Idempotency-Key"] != two.headers["Idempotency-Key"]
    assert one.json["query"] == ["p(X)"]  # a single query is a list of one
    assert "Idempotency-Key" not in Call("GET", "/v1/rulesets").headers
    assert "Idempotency-Key" not in tag_call("loan", "prod", 3).headers
    assert tag_call("a/b", "x?y", 1).path == "/v1/rulesets/a%2Fb/tags/x%3Fy"  # names stay one segment


def test_url_and_key_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTAIL_URL", "http://env:1/")
    monkeypatch.setenv("ENTAIL_API_KEY", "ent_env")
    assert config(None, None) == ("http://env:1", "ent_env")
    assert config("http://arg:2", "ent_arg") == ("http://arg:2", "ent_arg")
    monkeypatch.delenv("ENTAIL_URL")
    monkeypatch.delenv("ENTAIL_API_KEY")
    assert config(None, None) == ("http://127.0.0.1:3005", None)


def test_polling_starts_quick_and_settles() -> None:
    intervals = poll_intervals(0.05, 1.0)
    first = [next(intervals) for _ in range(12)]
    assert first[0] == 0.05 and first == sorted(first) and first[-1] == 1.0


def test_a_held_request_gets_time_to_read_its_answer() -> None:
    base = httpx.Timeout(30.0)
    held = decide_call("loan", {}, "p(X)", False, 20_000, None)
    assert held.holds_s == 20.0 and timeout_for(held, base).read == 50.0
    assert timeout_for(held, base).connect == 30.0
    assert timeout_for(tag_call("loan", "prod", 1), base) is base
