"""entail.tracing in one process: which exporter the settings choose (never
Cloud Trace in a test), nothing at all when tracing is off, the trace context
through a bus message's attributes as the relay encodes them (a Pub/Sub push
envelope, a CloudEvent, a stream entry) and back, and a log line written in a
span carrying that span's trace."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from entail import tracing
from entail.bus.port import Message
from entail.bus.push import cloudevent_request, decode_push, push_envelope
from entail.bus.redis_streams import decode_entry
from entail.logs import CloudFormatter, Redactor
from entail.settings import Settings

TRACE_ENV = (
    "K_SERVICE",
    "PUBSUB_EMULATOR_HOST",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TRACE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Path]:
    """Tracing on in this process, spans to a file; off again afterwards."""
    path = tmp_path / "spans-{service}.jsonl"
    assert tracing.setup(Settings(trace_file=path), "unit")
    try:
        yield tmp_path / "spans-unit.jsonl"
    finally:
        tracing.shutdown()


def test_the_exporter_follows_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert tracing.exporter_kind(Settings()) == "none"
    assert tracing.exporter_kind(Settings(trace_file=tmp_path / "t.jsonl")) == "file"
    assert tracing.exporter_kind(Settings(trace_otlp_endpoint="http://127.0.0.1:4318")) == "otlp"
    assert tracing.exporter_kind(Settings(trace_exporter="none", trace_file=tmp_path / "t")) == "none"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.exporter_kind(Settings()) == "otlp"
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    # Cloud Trace by default only in production on Cloud Run / Cloud Functions
    production = {"env": "production", "push_secret": "s" * 32, "mask_secret": "m" * 32}
    assert tracing.exporter_kind(Settings(**production)) == "none"  # type: ignore[arg-type]
    monkeypatch.setenv("K_SERVICE", "entail-worker")
    assert tracing.exporter_kind(Settings(**production)) == "gcp"  # type: ignore[arg-type]
    assert tracing.exporter_kind(Settings()) == "none"  # development, even on Cloud Run
    # an emulator means a test: never Google
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    assert tracing.exporter_kind(Settings(**production)) == "none"  # type: ignore[arg-type]
    assert tracing.trace_file_path(Path("/x/s-{service}-{pid}.jsonl"), "relay").name.startswith("s-relay-")


def test_off_costs_nothing_and_changes_nothing() -> None:
    assert not tracing.setup(Settings(), "unit") and not tracing.enabled()
    attributes = {"decision_id": "d1"}
    assert tracing.inject(attributes) is attributes
    assert tracing.extract({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) is None
    with tracing.span("x") as span, tracing.message_span("y", attributes) as other:
        assert span is None and other is None
        assert tracing.current_ids() is None


def test_the_trace_context_crosses_a_push_envelope(traced: Path) -> None:
    with tracing.span("bus.publish"):
        published = tracing.current_ids()
        attributes = tracing.inject({"decision_id": "d1", "tenant": "acme"})
    assert published is not None
    assert attributes["traceparent"].startswith(f"00-{published[0]}-{published[1]}-")
    assert attributes["decision_id"] == "d1"
    # the relay's envelope, decoded as the worker decodes a push
    message = Message(id="1-0", data=b"{}", attributes=attributes, publish_time="2026-01-01T00:00:00.000Z")
    body = json.dumps(push_envelope(message, "reasoning-worker", 1)).encode()
    received = decode_push(body)
    assert received.attributes == attributes
    with tracing.message_span("job.handle", received.attributes):
        handled = tracing.current_ids()
    spans = {s["name"]: s for s in tracing.read_spans(traced)}
    assert handled is not None and handled[0] == published[0]
    assert spans["job.handle"]["parent_span_id"] == published[1]
    assert spans["job.handle"]["service"] == "entail-unit"


def test_the_trace_context_crosses_a_cloudevent_and_a_stream_entry(traced: Path) -> None:
    with tracing.span("decision.publish"):
        attributes = tracing.inject({"decision_id": "d2"})
    message = Message(id="2-0", data=b"{}", attributes=attributes)
    _, body = cloudevent_request(message, "decisions", "audit-sink")
    assert json.loads(body)["message"]["attributes"]["traceparent"] == attributes["traceparent"]
    # a stream entry as the Redis Streams bus writes it
    entry = {"data": b"{}", "attributes": json.dumps(attributes).encode(), "publish_time": b"2026"}
    assert decode_entry("3-0", entry).attributes == attributes
    # the relay's push: a child of the publish, its own context in the delivered copy
    with tracing.span("relay.push", parent=tracing.extract(attributes)):
        delivered = tracing.inject(attributes)
    assert delivered["traceparent"] != attributes["traceparent"]
    spans = {s["name"]: s for s in tracing.read_spans(traced)}
    assert spans["relay.push"]["parent_span_id"] == spans["decision.publish"]["span_id"]
    assert spans["relay.push"]["trace_id"] == spans["decision.publish"]["trace_id"]
    assert base64.b64decode(json.loads(body)["message"]["data"]) == b"{}"


def test_a_span_from_another_trace_is_linked_not_the_parent(traced: Path) -> None:
    with tracing.span("publish"):
        attributes = tracing.inject({})
    with tracing.span("cloud run request"), tracing.message_span("job.handle", attributes):
        pass
    spans = {s["name"]: s for s in tracing.read_spans(traced)}
    handle = spans["job.handle"]
    assert handle["parent_span_id"] == spans["publish"]["span_id"]
    assert handle["links"] == [
        {"trace_id": spans["cloud run request"]["trace_id"], "span_id": spans["cloud run request"]["span_id"]}
    ]


def test_a_log_line_in_a_span_carries_its_trace(traced: Path) -> None:
    formatter = CloudFormatter("proj", "worker", Redactor())
    with tracing.span("job.handle"):
        ids = tracing.current_ids()
        record = logging.LogRecord("entail.jobs", logging.INFO, __file__, 1, "evaluated", None, None)
        entry = json.loads(formatter.format(record))
    assert ids is not None
    assert entry["logging.googleapis.com/trace"] == f"projects/proj/traces/{ids[0]}"
    assert entry["logging.googleapis.com/spanId"] == ids[1]
