"""Logging for every process: one setup, a context per request, no secrets.

:func:`configure` is called once by each entry point (backend, worker, relay,
audit sink). With ``ENTAIL_ENV=production`` every line on stderr is one JSON
object in Cloud Logging's structured format (``severity``, ``message``,
``time``, ``logging.googleapis.com/trace`` and ``spanId``, ``httpRequest`` for
access lines, ``logging.googleapis.com/labels``); otherwise the readable lines
of old, with the request id appended when there is one.

A :class:`LogContext` lives in a context variable for the length of one
request (the HTTP middleware in :mod:`entail.request_context` opens it) or one
job: its request id, the trace it belongs to, the labels the routes learn on the
way (:func:`bind`: tenant, ruleset, version, decision id) and the clear values
that must never be written (:func:`add_redactions`: a masked predicate's
values). It is a mutable object rather than separate variables so that what a
route binds deep inside the app is seen by the middleware's access line too
(Starlette runs each ``BaseHTTPMiddleware`` layer in a task of its own, and a
task's changes to a context variable do not flow back out).

Every line passes :class:`Redactor` last: API keys, bearer tokens, the push and
mask secrets, passwords in URLs, secret-bearing headers and the context's
masked values are replaced by ``[redacted]`` whatever the logger wrote.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .settings import Settings

__all__ = [
    "REQUEST_ID_HEADER",
    "LogContext",
    "Redactor",
    "accept_request_id",
    "add_redactions",
    "bind",
    "configure",
    "current",
    "request_id",
    "scope",
    "trace_from_headers",
]

REQUEST_ID_HEADER = "X-Request-Id"
# what a client may send as its own request id; anything else is replaced by a fresh one
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
REDACTED = "[redacted]"
# a masked value shorter than this is not searched for in log lines: it would
# garble every line ("30" in every latency) and says little on its own
MIN_REDACTED_VALUE = 4

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
TIMED_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class LogContext:
    """What the lines of one request (or one job) share."""

    request_id: str | None = None
    trace_id: str | None = None  # 32 hex digits
    span_id: str | None = None  # 16 hex digits
    sampled: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    redactions: set[str] = field(default_factory=set)
    # (traceparent, X-Cloud-Trace-Context) as received, parsed on first use by trace()
    trace_headers: tuple[str | None, str | None] | None = None

    def trace(self) -> tuple[str, str | None, bool] | None:
        """(trace id, span id, sampled) of the request, if it named a trace."""
        if self.trace_headers is not None:
            found = trace_from_headers(*self.trace_headers)
            self.trace_headers = None
            if found is not None:
                self.trace_id, self.span_id, self.sampled = found
        if self.trace_id is None:
            return None
        return self.trace_id, self.span_id, self.sampled


_context: ContextVar[LogContext | None] = ContextVar("entail_log_context", default=None)


def current() -> LogContext | None:
    return _context.get()


def request_id() -> str | None:
    """The id of the request being served, if any."""
    ctx = _context.get()
    return ctx.request_id if ctx is not None else None


@contextmanager
def scope(ctx: LogContext) -> Iterator[LogContext]:
    """``ctx`` is the context of every line logged inside the block."""
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


def enter(ctx: LogContext) -> Token[LogContext | None]:
    """:func:`scope` without a generator, for the per-request middleware: ``leave(token)`` ends it."""
    return _context.set(ctx)


def leave(token: Token[LogContext | None]) -> None:
    _context.reset(token)


def _ensure() -> LogContext:
    ctx = _context.get()
    if ctx is None:  # outside a request (a job's own task): a context of its own
        ctx = LogContext()
        _context.set(ctx)
    return ctx


def bind(**labels: object) -> None:
    """Label the current request's (or task's) lines; None values are skipped."""
    ctx = _ensure()
    for name, value in labels.items():
        if value is not None:
            ctx.labels[name] = str(value)


def add_redactions(values: Iterable[object]) -> None:
    """Clear values (a masked predicate's) that no line of this request may carry."""
    texts = {str(v) for v in values if not isinstance(v, bool | type(None))}
    texts = {t for t in texts if len(t) >= MIN_REDACTED_VALUE}
    if texts:
        _ensure().redactions.update(texts)


def accept_request_id(header: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a short token, else a fresh id:
    a caller must not write arbitrary text (newlines, megabytes) into our logs."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()


def trace_from_headers(
    traceparent: str | None, cloud_trace: str | None
) -> tuple[str, str | None, bool] | None:
    """(trace id, parent span id, sampled) from a W3C ``traceparent`` or, failing
    that, Google's ``X-Cloud-Trace-Context: TRACE/SPAN;o=1`` (span in decimal)."""
    if traceparent:
        m = _TRACEPARENT.fullmatch(traceparent.strip().lower())
        if m and m.group(1) != "ff" and set(m.group(2)) != {"0"} and set(m.group(3)) != {"0"}:
            return m.group(2), m.group(3), bool(int(m.group(4), 16) & 1)
    if cloud_trace:
        m = _CLOUD_TRACE.fullmatch(cloud_trace.strip())
        if m and set(m.group(1)) != {"0"}:
            span = f"{int(m.group(2)):016x}" if m.group(2) and 0 < int(m.group(2)) < 2**64 else None
            return m.group(1).lower(), span, m.group(3) == "1"
    return None


def _active_span() -> tuple[str, str, bool] | None:
    """The current OpenTelemetry span's ids, when tracing is on and a span is active."""
    try:
        from opentelemetry import trace
    except ImportError:  # a function deployed without OpenTelemetry
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}", bool(context.trace_flags.sampled)


# --- redaction ---------------------------------------------------------------

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Entail API keys (entail.auth.new_key: ent_ + url-safe base64)
    (re.compile(r"\bent_[A-Za-z0-9_-]{6,}"), "ent_" + REDACTED),
    # a bearer or basic credential wherever it appears
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[^\s\"',;]+"), r"\1\2" + REDACTED),
    # headers and settings that carry a secret, as "Name: value", name=value or JSON
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|x-entail-push-secret|x-api-key|api[_-]?key|cookie|"
            r"push[_-]secret|mask[_-]secret|password|passwd|secret|token)"
            r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)(?!\[redacted\])[^\s\"',;\\]+"
        ),
        r"\1\2" + REDACTED,
    ),
    # the password of a URL (redis://:password@host)
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^/\s:@\"]*:)[^@\s/\"]+@"), r"\1" + REDACTED + "@"),
]


class Redactor(logging.Filter):
    """Rewrites each record's message (arguments merged in, traceback included)
    without secrets; :meth:`redact` also cleans a finished line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_REDACTED_VALUE}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        ctx = _context.get()
        exact = [*self.secrets, *(sorted(ctx.redactions, key=len, reverse=True) if ctx else [])]
        for value in exact:
            if value in text:
                text = text.replace(value, REDACTED)
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            if escaped != value and escaped in text:  # as it appears inside a JSON line
                text = text.replace(escaped, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what there is
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def settings_secrets(settings: Settings) -> list[str]:
    """The configured secrets no line may carry."""
    found = [settings.push_secret, settings.mask_secret, settings.dev_api_key]
    for url in (settings.redis_url, settings.redis_read_url):
        m = re.search(r"://[^/\s:@]*:([^@\s/]+)@", url)
        if m:
            found.append(m.group(1))
    return [s for s in found if s]


# --- formats -----------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """The readable local lines, with ``[request <id>]`` inside a request."""

    def __init__(self, fmt: str, redactor: Redactor) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = _context.get()
        if ctx is not None and ctx.request_id:
            first, nl, rest = line.partition("\n")
            line = f"{first} [request {ctx.request_id}]{nl}{rest}"
        return self.redactor.redact(line)


class CloudFormatter(logging.Formatter):
    """One JSON object per line, in the shape Cloud Logging reads from a
    container's output (https://cloud.google.com/logging/docs/structured-logging)."""

    def __init__(self, project: str, service: str, redactor: Redactor) -> None:
        super().__init__()
        self.project, self.service, self.redactor = project, service, redactor

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{record.stack_info}"
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": message,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "logger": record.name,
        }
        ctx = _context.get()
        ids: tuple[str, str | None, bool] | None = _active_span()
        if ids is None and ctx is not None:
            ids = ctx.trace()
        if ids is not None:
            trace_id, span_id, sampled = ids
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            )
            if span_id:
                entry["logging.googleapis.com/spanId"] = span_id
            entry["logging.googleapis.com/trace_sampled"] = sampled
        http_request = getattr(record, "http_request", None)
        if isinstance(http_request, dict):
            entry["httpRequest"] = http_request
        labels = {"service": self.service}
        if ctx is not None:
            labels.update(ctx.labels)
            if ctx.request_id:
                labels["request_id"] = ctx.request_id
        # a line's own labels and fields (extra={"labels": ..., "json_fields": ...}): for code
        # that serves many requests on one thread (the audit sink), where a context would leak
        own_labels = getattr(record, "labels", None)
        if isinstance(own_labels, dict):
            labels.update({str(k): str(v) for k, v in own_labels.items() if v is not None})
        entry["logging.googleapis.com/labels"] = labels
        fields = getattr(record, "json_fields", None)
        if isinstance(fields, dict):  # jsonPayload members log-based metrics read
            for name, value in fields.items():
                entry.setdefault(str(name), value)
        entry["logging.googleapis.com/sourceLocation"] = {
            "file": record.pathname,
            "line": str(record.lineno),
            "function": record.funcName,
        }
        return self.redactor.redact(json.dumps(entry, ensure_ascii=False, default=str))


_HANDLER_MARK = "_entail_handler"


def configure(settings: Settings, service: str, *, text_format: str = TEXT_FORMAT) -> logging.Handler:
    """Route every logger of this process to one stderr handler in the format
    ``settings`` ask for; calling it again replaces that handler."""
    redactor = Redactor(settings_secrets(settings))
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redactor)
    if settings.env == "production":
        project = settings.gcp_project or os.environ.get("GOOGLE_CLOUD_PROJECT", "")
        handler.setFormatter(CloudFormatter(project, service, redactor))
    else:
        handler.setFormatter(TextFormatter(text_format, redactor))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.captureWarnings(True)  # a warning is a line like any other (JSON in production)
    # uvicorn's and the functions framework's loggers write through this handler too
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "werkzeug", "gunicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.INFO if access_log_enabled(settings) else logging.WARNING)
    return handler


ACCESS_LOGGER = "entail.access"


def access_log_enabled(settings: Settings) -> bool:
    """One line per HTTP request: on in production (Cloud Logging's request view), off locally."""
    return settings.log_access if settings.log_access is not None else settings.env == "production"
