"""OpenTelemetry traces across every tier: one :func:`setup` per process, spans,
and the W3C trace context carried in bus message attributes.

Every process (backend, worker, relay, audit sink, batch function) calls
:func:`setup` once with its service name. The exporter comes from settings
(:func:`exporter_kind`): ``ENTAIL_TRACE_FILE`` (JSON lines, one span a line,
for tests and local debugging), an OTLP/HTTP endpoint
(``ENTAIL_TRACE_OTLP_ENDPOINT`` or OpenTelemetry's own
``OTEL_EXPORTER_OTLP_ENDPOINT``), Cloud Trace on Google Cloud, or none.

With no exporter nothing is installed and every helper here returns at once
(:func:`span` hands out one shared null context, :func:`inject` returns the
attributes it was given): a process that traces nothing pays a global lookup
per call, not a span. OpenTelemetry itself is imported only when tracing is
on, so a function deployed without it still imports this module.

Propagation: :func:`inject` writes ``traceparent`` (and ``tracestate``) into a
message's attributes when it is published — Pub/Sub message attributes in the
cloud, the stream entry's attributes locally — and :func:`extract` reads them
back on the subscriber's side, where the handling span is started as a child of
the publish (:func:`message_span`). docs/operations.md follows one decision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from .settings import Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("entail.tracing")

ExporterKind = Literal["none", "file", "otlp", "gcp"]

TRACE_HEADERS = ("traceparent", "tracestate")
"""The W3C trace context keys, as message attributes and HTTP headers."""

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_service: str | None = None
_NULL = contextlib.nullcontext(None)


def enabled() -> bool:
    """True once :func:`setup` installed a provider in this process."""
    return _tracer is not None


def otlp_endpoint(settings: Settings) -> str:
    """The OTLP/HTTP endpoint: ENTAIL_TRACE_OTLP_ENDPOINT, else OpenTelemetry's variables."""
    return (
        settings.trace_otlp_endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    )


def on_google_cloud(settings: Settings) -> bool:
    """A production process on Cloud Run or Cloud Functions (gen2 runs on Cloud
    Run: both set ``K_SERVICE``), with no emulator configured: only there does
    ``auto`` pick Cloud Trace, so no test or laptop ever sends spans to Google."""
    emulated = (
        settings.pubsub_emulator_host or os.environ.get("PUBSUB_EMULATOR_HOST") or settings.bigquery_endpoint
    )
    return settings.env == "production" and bool(os.environ.get("K_SERVICE")) and not emulated


def exporter_kind(settings: Settings) -> ExporterKind:
    """Which exporter ``settings`` ask for: ``ENTAIL_TRACE_EXPORTER`` when not
    ``auto``; else a trace file, an OTLP endpoint, Cloud Trace on Google Cloud,
    or none, in that order."""
    chosen = settings.trace_exporter
    if chosen != "auto":
        return chosen
    if settings.trace_file is not None:
        return "file"
    if otlp_endpoint(settings):
        return "otlp"
    if on_google_cloud(settings):
        return "gcp"
    return "none"


def trace_file_path(template: Path, service: str) -> Path:
    """``ENTAIL_TRACE_FILE`` with ``{service}`` and ``{pid}`` filled in: one file
    per process when the stack's processes share one environment."""
    return Path(str(template).replace("{service}", service).replace("{pid}", str(os.getpid())))


def setup(settings: Settings, service: str) -> bool:
    """Install this process's tracer provider (service name ``entail-<service>``)
    with the exporter ``settings`` ask for; True when tracing is on. Once per
    process: a second call keeps the first provider."""
    global _tracer, _provider, _service
    if _tracer is not None:
        return True
    kind = exporter_kind(settings)
    if kind == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({"service.name": f"entail-{service}", "service.namespace": "entail"})
    sampler = ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))
    provider = TracerProvider(resource=resource, sampler=sampler)
    exporter = _exporter(kind, settings, service)
    # the file is for tests and debugging: each span on disk when it ends; the
    # network exporters send batches from a thread, off the request's path
    processor = SimpleSpanProcessor(exporter) if kind == "file" else BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _provider, _service = provider, service
    _tracer = provider.get_tracer("entail")
    # the global provider too: the FastAPI instrumentation and logs.py's span lookup use it
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    if settings.trace_redis:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument(tracer_provider=provider)
    log.info("tracing on: exporter %s, service entail-%s", kind, service)
    return True


def _exporter(kind: ExporterKind, settings: Settings, service: str) -> SpanExporter:
    if kind == "file":
        if settings.trace_file is None:
            raise ValueError("ENTAIL_TRACE_EXPORTER=file needs ENTAIL_TRACE_FILE")
        # duck-typed (SimpleSpanProcessor calls export/shutdown/force_flush), so
        # that this module imports no OpenTelemetry until tracing is on
        return cast("SpanExporter", JsonLinesExporter(trace_file_path(settings.trace_file, service)))
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint(settings)
        if endpoint and not endpoint.rstrip("/").endswith("/v1/traces"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"  # the base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is
        return OTLPSpanExporter(endpoint=endpoint or None)
    from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter  # the gcp extra

    project = settings.gcp_project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
    return CloudTraceSpanExporter(project_id=project)  # type: ignore[no-untyped-call]


def shutdown() -> None:
    """Flush and stop the exporter (end of a process; tests)."""
    global _tracer, _provider, _service
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = _service = None


def instrument_app(app: Any) -> None:
    """A server span per HTTP request of a FastAPI app (when tracing is on)."""
    if _tracer is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # no span per ASGI message (a dozen per request), none for probes and scrapes
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )


def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    parent: Context | None = None,
    links: Sequence[Any] = (),
) -> contextlib.AbstractContextManager[Span | None]:
    """A span of ``name`` made current for the ``with`` block (None, at no cost,
    when tracing is off). ``parent``: a context from :func:`extract` instead of
    the current one."""
    if _tracer is None:
        return _NULL
    from opentelemetry.trace import Link

    return _tracer.start_as_current_span(
        name,
        context=parent,
        attributes=_clean(attributes),
        links=[Link(c) for c in links] if links else None,
    )


def record(span_: Span | None, **attributes: Any) -> None:
    """Set attributes on ``span_`` (from :func:`span`; None is a no-op)."""
    if span_ is not None:
        span_.set_attributes(_clean(attributes) or {})


def add_span(name: str, start_ns: int, end_ns: int, attributes: Mapping[str, Any] | None = None) -> None:
    """A finished span measured elsewhere (the engine's stages, timed in the
    evaluation process), as a child of the current span."""
    if _tracer is None:
        return
    started = _tracer.start_span(name, start_time=start_ns, attributes=_clean(attributes))
    started.end(end_time=max(start_ns, end_ns))


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Attribute values OpenTelemetry accepts: None dropped, others as they are
    when primitive, else text."""
    if not attributes:
        return None
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, str | bool | int | float) else str(value)
    return out


# --- propagation ----------------------------------------------------------------


def inject(attributes: dict[str, str]) -> dict[str, str]:
    """``attributes`` with the current span's ``traceparent`` (and ``tracestate``)
    added, a copy; the same dict when tracing is off or no span is active."""
    if _tracer is None:
        return attributes
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = dict(attributes)
    for key in TRACE_HEADERS:  # the current context replaces one an earlier hop left
        carrier.pop(key, None)
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


def extract(attributes: Mapping[str, str]) -> Context | None:
    """The trace context a message's attributes carry (None: none, or tracing off)."""
    if _tracer is None or "traceparent" not in attributes:
        return None
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract(
        {k: attributes[k] for k in TRACE_HEADERS if k in attributes}
    )
    return context if get_current_span(context).get_span_context().is_valid else None


@contextlib.contextmanager
def message_span(
    name: str, attributes: Mapping[str, str], span_attributes: Mapping[str, Any] | None = None
) -> Iterator[Span | None]:
    """The span of handling one bus message, a child of the span that published
    it (its attributes' ``traceparent``). When the current span (the push's HTTP
    request) is in the same trace — a local push, whose relay sent the context —
    it nests under that request instead; from another trace (Cloud Run's own
    trace of the push request), it is linked."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace import get_current_span

    parent = extract(attributes)
    current = get_current_span().get_span_context()
    links: list[Any] = []
    if parent is not None:
        published = get_current_span(parent).get_span_context()
        if current.is_valid and current.trace_id == published.trace_id:
            parent = None  # the current request is already below the publish
        elif current.is_valid:
            links.append(current)
    with span(name, span_attributes, parent=parent, links=links) as started:
        yield started


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, hex, or None (tests, logs)."""
    if _tracer is None:
        return None
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


# --- the JSON-lines file exporter ----------------------------------------------------


class JsonLinesExporter:
    """Appends one JSON object per finished span to a file, flushed per batch:
    ``name``, ``service``, ``trace_id``, ``span_id``, ``parent_span_id``,
    ``kind``, ``start_ns``, ``end_ns``, ``status``, ``attributes``, ``links``.
    Several processes may append to one file (each line is one write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(json.dumps(span_json(s), separators=(",", ":")) + "\n" for s in spans)
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(lines)
                out.flush()
        except OSError as exc:
            log.warning("trace file %s: %s", self.path, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def span_json(s: ReadableSpan) -> dict[str, Any]:
    """One finished span as the trace file writes it."""
    context = s.get_span_context()
    assert context is not None
    return {
        "name": s.name,
        "service": str(s.resource.attributes.get("service.name", "")),
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{s.parent.span_id:016x}" if s.parent is not None else None,
        "kind": s.kind.name,
        "start_ns": s.start_time,
        "end_ns": s.end_time,
        "status": s.status.status_code.name,
        "attributes": dict(s.attributes or {}),
        "links": [
            {"trace_id": f"{link.context.trace_id:032x}", "span_id": f"{link.context.span_id:016x}"}
            for link in s.links
        ],
    }


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Every span of a trace file (tests, debugging)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
