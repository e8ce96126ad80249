"""What the sync and async clients share: configuration, the retry policy, the
requests of each operation, and the server-sent-events parser. The two clients
differ only in how they send (and sleep)."""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from .errors import parse_retry_after

__version__ = "0.1.0"

DEFAULT_URL = "http://127.0.0.1:3005"  # `entail up` / `make run`
USER_AGENT = f"entail-client/{__version__}"
FINAL_STATUSES = frozenset({"succeeded", "failed"})
#: retried whatever the method: the request was not (or not yet) acted on
RETRY_STATUSES = frozenset({429, 503})
#: retried when the answer carries Retry-After: the service says "later", e.g. a
#: replay of a decision whose audit row is not written yet
RETRY_WHEN_TOLD = frozenset({409})


def config(url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """Base URL and API key: the arguments, else ``ENTAIL_URL`` / ``ENTAIL_API_KEY``."""
    base = url or os.environ.get("ENTAIL_URL") or DEFAULT_URL
    key = api_key if api_key is not None else os.environ.get("ENTAIL_API_KEY")
    return base.rstrip("/"), key or None


def headers(api_key: str | None) -> dict[str, str]:
    out = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; ``Retry-After``
    is honoured (waited at least, up to ``retry_after_max_s``)."""

    attempts: int = 5
    backoff_s: float = 0.2
    backoff_max_s: float = 10.0
    retry_after_max_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to sleep before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        ceiling = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        jitter = random.uniform(0, ceiling)  # full jitter: clients that failed together spread out
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s) + min(jitter, self.backoff_s)
        return jitter

    def should_retry(self, response: httpx.Response) -> bool:
        if response.status_code in RETRY_STATUSES:
            return True
        return response.status_code in RETRY_WHEN_TOLD and "retry-after" in response.headers


def retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


@dataclass
class Call:
    """One logical API call. A POST carries one ``Idempotency-Key``, made here and
    sent unchanged on each of its retries, so a retried POST whose first attempt did
    reach the service is answered with the first result, not run twice."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: the service holds this request up to this long before answering (``wait_ms``)
    holds_s: float = 0.0

    def __post_init__(self) -> None:
        if self.method == "POST" and "Idempotency-Key" not in self.headers:
            self.headers["Idempotency-Key"] = str(uuid.uuid4())


def timeout_for(call: Call, base: httpx.Timeout) -> httpx.Timeout:
    """``base``, with time to read an answer the service holds back (``wait_ms``)."""
    if not call.holds_s or base.read is None:
        return base
    return httpx.Timeout(
        connect=base.connect, read=base.read + call.holds_s, write=base.write, pool=base.pool
    )


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _time(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def _segment(value: str) -> str:
    # a path segment: a name or id with a '/' or '?' must not change the route
    return quote(value, safe="@")


# --- the requests of each operation ------------------------------------------------------


def decide_call(
    ruleset: str,
    facts: Mapping[str, Any] | None,
    query: list[str] | str | None,
    explain: bool,
    wait_ms: int,
    limits: Mapping[str, int] | None,
    locale: str | None = None,
) -> Call:
    body: dict[str, Any] = {
        "ruleset": ruleset,
        "facts": dict(facts or {}),
        "query": [query] if isinstance(query, str) else list(query or []),
        "explain": explain,
        "wait_ms": wait_ms,
    }
    if limits:
        body["limits"] = dict(limits)
    if locale is not None:  # the language of the answers' reason messages (BCP 47)
        body["locale"] = locale
    return Call("POST", "/v1/decisions", json=body, holds_s=wait_ms / 1000)


def batch_call(
    ruleset: str,
    cases: list[Mapping[str, Any]],
    query: list[str] | str | None,
    explain: bool,
    wait_ms: int,
    limits: Mapping[str, int] | None,
) -> Call:
    body: dict[str, Any] = {
        "ruleset": ruleset,
        "cases": [dict(case) for case in cases],
        "query": [query] if isinstance(query, str) else list(query or []),
        "explain": explain,
        "wait_ms": wait_ms,
    }
    if limits:
        body["limits"] = dict(limits)
    return Call("POST", "/v1/decisions/batch", json=body, holds_s=wait_ms / 1000)


def publish_call(
    name: str,
    source: str,
    description: str,
    tests: list[Mapping[str, Any]] | None,
    masked_predicates: list[str] | None,
    datasets: Mapping[str, str] | None = None,
) -> Call:
    body: dict[str, Any] = {"name": name, "source": source, "description": description}
    if tests:
        body["tests"] = [dict(t) for t in tests]
    if masked_predicates:
        body["masked_predicates"] = list(masked_predicates)
    if datasets:
        body["datasets"] = dict(datasets)
    return Call("POST", "/v1/rulesets", json=body)


def tag_call(name: str, tag: str, version: int) -> Call:
    return Call("PUT", f"/v1/rulesets/{_segment(name)}/tags/{_segment(tag)}", json={"version": version})


def replay_call(decision_id: str) -> Call:
    return Call("POST", f"/v1/decisions/{_segment(decision_id)}/replay")


def impact_call(
    name: str,
    version: int | str,
    start: datetime | str,
    end: datetime | str,
    limit: int,
    datasets: Mapping[str, str] | None = None,
) -> Call:
    body: dict[str, Any] = {"version": version, "start": _time(start), "end": _time(end), "limit": limit}
    if datasets:
        body["datasets"] = dict(datasets)
    return Call("POST", f"/v1/rulesets/{_segment(name)}/impact", json=body)


def search_call(
    start: datetime | str,
    end: datetime | str,
    ruleset: str | None,
    version: int | None,
    status: str | None,
    predicate: str | None,
    page_size: int,
    page_token: str | None,
) -> Call:
    params = _drop_none(
        {
            "start": _time(start),
            "end": _time(end),
            "ruleset": ruleset,
            "version": version,
            "status": status,
            "predicate": predicate,
            "page_size": page_size,
            "page_token": page_token,
        }
    )
    return Call("GET", "/v1/audit/decisions", params=params)


def get_call(path: str, **params: Any) -> Call:
    return Call("GET", path, params=_drop_none(params) or None)


def decision_path(decision_id: str) -> str:
    return f"/v1/decisions/{_segment(decision_id)}"


def audited_path(decision_id: str) -> str:
    return f"/v1/audit/decisions/{_segment(decision_id)}"


@dataclass(frozen=True)
class DecisionReport:
    """A decision report (``GET /v1/decisions/{id}/report``): the HTML document and
    its SHA-256, checked against the bytes received; ``source`` is ``audit`` or
    ``live`` (not yet in the audit trail)."""

    html: bytes
    sha256: str
    source: str
    generated_at: str | None


def report_call(decision_id: str) -> Call:
    return Call("GET", decision_path(decision_id) + "/report")


def report_from(response: httpx.Response) -> DecisionReport:
    """The report of an answer; ValueError when the body is not the bytes its hash names."""
    claimed = response.headers.get("x-entail-report-sha256", "")
    actual = hashlib.sha256(response.content).hexdigest()
    if claimed != actual:
        raise ValueError(f"the report's SHA-256 is {actual}, its header says {claimed!r}")
    return DecisionReport(
        response.content,
        actual,
        response.headers.get("x-entail-report-source", ""),
        response.headers.get("x-entail-report-generated-at"),
    )


def ruleset_path(name: str) -> str:
    return f"/v1/rulesets/{_segment(name)}"


def is_final(record: Mapping[str, Any]) -> bool:
    return record.get("status") in FINAL_STATUSES


# --- server-sent events ----------------------------------------------------------------------


class EventParser:
    """Server-sent events, line by line (the WHATWG format: ``event:``, ``data:``,
    comments, a blank line ends an event)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def line(self, line: str) -> tuple[str, str] | None:
        """Feed one line (without its newline); an event when this line ends one."""
        if line == "":
            return self.flush()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def flush(self) -> tuple[str, str] | None:
        event = (self._event or "message", "\n".join(self._data)) if self._data else None
        self._event, self._data = "", []
        return event


def poll_intervals(first_s: float = 0.05, most_s: float = 1.0) -> Iterator[float]:
    """Polling intervals: quick at first (most decisions take milliseconds), then at most ``most_s``."""
    interval = first_s
    while True:
        yield interval
        interval = min(most_s, interval * 1.5)
