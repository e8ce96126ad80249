"""entail.logs and entail.request_context: request ids, trace headers, the
Cloud Logging format, redaction, and the middleware's answers (a real Starlette
app served in process; nothing of Entail's is replaced)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from entail import logs
from entail.request_context import RequestContext
from entail.settings import Settings

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Lines of the root logger in production format, in a buffer."""
    settings = Settings(
        env="production",
        push_secret="push-secret-value-123",
        mask_secret="mask-secret-value-456",
        gcp_project="proj",
        redis_url="redis://:redis-password-789@127.0.0.1:6379/0",
    )
    handler = logs.configure(settings, "test")
    buffer = io.StringIO()
    handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)


def _entries(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_request_ids_are_accepted_only_when_short_tokens() -> None:
    assert logs.accept_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "has space", "new\nline", "x" * 129, "-leading", "ü"):
        fresh = logs.accept_request_id(bad)
        assert fresh != bad and len(fresh) == 32


def test_trace_headers() -> None:
    assert logs.trace_from_headers(f"00-{TRACE}-00f067aa0ba902b7-01", None) == (
        TRACE,
        "00f067aa0ba902b7",
        True,
    )
    assert logs.trace_from_headers(f"00-{TRACE}-00f067aa0ba902b7-00", None) == (
        TRACE,
        "00f067aa0ba902b7",
        False,
    )
    # an all-zero trace id is invalid: Google's header is used instead; its span id is decimal
    zero = f"00-{'0' * 32}-00f067aa0ba902b7-01"
    assert logs.trace_from_headers(zero, f"{TRACE}/255;o=1") == (TRACE, "00000000000000ff", True)
    assert logs.trace_from_headers("garbage", "also garbage") is None
    assert logs.trace_from_headers(None, TRACE) == (TRACE, None, False)


def test_production_lines_are_cloud_logging_json(captured: io.StringIO) -> None:
    ctx = logs.LogContext(request_id="req-1", trace_id=TRACE, span_id="00f067aa0ba902b7", sampled=True)
    with logs.scope(ctx):
        logs.bind(tenant="acme", ruleset="loan", version=3, decision_id="dec_1", nothing=None)
        logging.getLogger("entail.test").warning("hello %s", "world")
    logging.getLogger("entail.test").info("outside")
    inside, outside = _entries(captured)
    assert inside["severity"] == "WARNING" and inside["message"] == "hello world"
    assert inside["logging.googleapis.com/trace"] == f"projects/proj/traces/{TRACE}"
    assert inside["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert inside["logging.googleapis.com/labels"] == {
        "service": "test",
        "tenant": "acme",
        "ruleset": "loan",
        "version": "3",
        "decision_id": "dec_1",
        "request_id": "req-1",
    }
    assert str(inside["time"]).endswith("+00:00")
    assert outside["logging.googleapis.com/labels"] == {"service": "test"}
    assert "logging.googleapis.com/trace" not in outside


def test_an_active_opentelemetry_span_names_the_trace(captured: io.StringIO) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with (
        logs.scope(logs.LogContext(request_id="r", trace_id=TRACE, span_id="1" * 16)),
        tracer.start_as_current_span("work") as span,
    ):
        logging.getLogger("entail.test").info("in a span")
        context = span.get_span_context()
    (entry,) = _entries(captured)
    assert entry["logging.googleapis.com/trace"] == f"projects/proj/traces/{context.trace_id:032x}"
    assert entry["logging.googleapis.com/spanId"] == f"{context.span_id:016x}"


def test_secrets_are_redacted_whatever_the_logger_wrote(captured: io.StringIO) -> None:
    log = logging.getLogger("entail.test")
    with logs.scope(logs.LogContext(request_id="r")):
        logs.add_redactions(["987-65-4329", "zelda-quux", 30, "ab"])  # too short: kept
        log.info(
            "headers %s", {"Authorization": "Bearer ent_abcdefgh12345678", "X-Entail-Push-Secret": "zzz9"}
        )
        log.info("key ent_Q2lkCjZtSxyz-_ and Basic dXNlcjpwYXNz and token=abc.def")
        log.info("secrets push-secret-value-123 mask-secret-value-456 in redis://:redis-password-789@h:1/0")
        log.info('facts {"ssn": [["zelda-quux", "987-65-4329"]]} ab')
        try:
            raise ValueError("bad value 987-65-4329")
        except ValueError:
            log.exception("failed for zelda-quux")
    text = captured.getvalue()
    for secret in (
        "ent_abcdefgh12345678",
        "zzz9",
        "Q2lkCjZtSxyz",
        "dXNlcjpwYXNz",
        "abc.def",
        "push-secret-value-123",
        "mask-secret-value-456",
        "redis-password-789",
        "987-65-4329",
        "zelda-quux",
    ):
        assert secret not in text, secret
    assert text.count("[redacted]") >= 10
    entries = _entries(captured)
    assert len(entries) == 5  # every line still JSON
    assert "Traceback" in str(entries[-1]["message"]) and "ab" in str(entries[3]["message"])


def test_local_lines_are_readable_with_the_request_id() -> None:
    handler = logs.configure(Settings(), "test")
    buffer = io.StringIO()
    handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        with logs.scope(logs.LogContext(request_id="req-9")):
            logging.getLogger("entail.test").warning("hello")
        logging.getLogger("entail.access").info("not written locally")
    finally:
        logging.getLogger().removeHandler(handler)
    assert buffer.getvalue() == "WARNING entail.test: hello [request req-9]\n"


async def _ok(request: Request) -> PlainTextResponse:
    logging.getLogger("entail.test").info("serving")
    return PlainTextResponse("ok")


async def _boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("the secret is ent_abcdefgh12345678")


def _client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/ok", _ok), Route("/boom", _boom)])
    app.add_middleware(RequestContext)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_every_answer_has_a_request_id(captured: io.StringIO) -> None:
    logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.INFO)
    async with _client() as client:
        given = await client.get("/ok?api_key=x", headers={"X-Request-Id": "mine-1", "User-Agent": "t/1"})
        assert given.headers["X-Request-Id"] == "mine-1"
        fresh = await client.get("/ok", headers={"X-Request-Id": "not valid"})
        assert len(fresh.headers["X-Request-Id"]) == 32
        missing = await client.get("/nope")
        assert missing.status_code == 404 and missing.headers["X-Request-Id"]
        failed = await client.get("/boom", headers={"X-Request-Id": "boom-1"})
    # an unhandled error: a problem with the request id, not a plain-text 500
    assert failed.status_code == 500 and failed.headers["X-Request-Id"] == "boom-1"
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["request_id"] == "boom-1" and "secret" not in failed.text
    entries = _entries(captured)
    serving = [e for e in entries if e["message"] == "serving"]
    assert serving[0]["logging.googleapis.com/labels"]["request_id"] == "mine-1"  # type: ignore[index]
    access = [e for e in entries if "httpRequest" in e]
    assert [a["httpRequest"]["status"] for a in access] == [200, 200, 404, 500]  # type: ignore[index]
    first = access[0]["httpRequest"]
    assert first["requestUrl"] == "/ok" and first["userAgent"] == "t/1"  # type: ignore[index]
    errors = [e for e in entries if e["severity"] == "ERROR"]
    assert "RuntimeError" in str(errors[0]["message"]) and "ent_abcdefgh" not in str(errors[0]["message"])
    assert errors[0]["logging.googleapis.com/labels"]["request_id"] == "boom-1"  # type: ignore[index]


def test_a_line_may_carry_its_own_labels_and_fields(captured: io.StringIO) -> None:
    logging.getLogger("entail.test").info(
        "stored",
        extra={
            "labels": {"decision_id": "dec_2", "none": None},
            "json_fields": {"decision_ms": 12.5, "message": "x"},
        },
    )
    (entry,) = _entries(captured)
    assert entry["logging.googleapis.com/labels"] == {"service": "test", "decision_id": "dec_2"}
    assert (
        entry["decision_ms"] == 12.5 and entry["message"] == "stored"
    )  # a field never overrides the standard ones
