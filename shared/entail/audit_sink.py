"""The audit sink's logic: one Pub/Sub message of topic ``decisions`` in, one
audit row (or one ``rejected`` row) out.

The deployables only adapt a framework to :class:`AuditSink`: the Cloud Function
``functions/audit_sink/main.py`` and the local stack's ``entail_dev.sink`` (the
same code under functions-framework, from an installed package). Their sink is
built by :func:`entail.bootstrap.open_audit_sink`, which chooses the store.

What a delivery becomes (Pub/Sub redelivers anything but 2xx):

* stored, or already stored (``insert_decisions`` is idempotent on
  ``decision_id``) → the adapter returns, 200, acked;
* a message that can never be stored (data not base64, not UTF-8 JSON, not a
  valid DecisionRecord, a non-final status) → written to the ``rejected`` table
  with the reason and its raw payload by the store, and acked;
* a local delivery without the relay's push secret (``ENTAIL_PUSH_AUTH=secret``)
  → :class:`SenderRefused`, which the adapter answers 401, nothing stored;
* anything else (the audit file locked past the store's wait, an IO error, a
  bug) → raised: the framework answers 500 and the message comes again.

Messages arriving together are written together
(:class:`entail.audit.group_commit.GroupCommitter`): while one store call runs,
the decisions that arrive queue up for the next call, and each delivery still
returns only once its own decision is stored.

Imports nothing that needs Redis or httpx: the deployed function installs
neither (tests/cloud/test_cloudbuild.py).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pydantic_core

from . import tracing
from .audit.group_commit import GroupCommitter, Outcome
from .audit.port import AuditStore
from .bus.push import PUSH_SECRET_HEADER
from .logs import TIMED_TEXT_FORMAT, configure
from .settings import Settings

RAW_CHARS = 10_000  # of an undecodable payload kept in the rejected row
MAX_BATCH = 500  # decisions per store call at most
# a lone decision waits this long for company (audit.group_commit): a store call
# costs DuckDB some 4 ms whatever its rows, and at the local stack's 60 to 150
# decisions a second 40 ms gathered 2 to 4 of them; no client waits for it
GATHER_MS = 100

log = logging.getLogger("entail.audit_sink")


def configure_logging() -> None:
    """Every line on stderr in the format of every Entail process (entail.logs:
    Cloud Logging's JSON in production), and traces (entail.tracing): functions-framework
    configures neither."""
    try:
        settings = Settings()
    except ValueError:  # reported by the first message's store; log readably meanwhile
        settings = Settings.model_construct()
    configure(settings, "sink", text_format=TIMED_TEXT_FORMAT)
    tracing.setup(settings, "sink")


class SenderRefused(Exception):
    """A local delivery without the relay's push secret: answer 401, store nothing."""


def _undecodable(raw: str, error: str) -> dict[str, Any]:
    """A payload the store rejects (not a DecisionRecord), keeping what was received."""
    return {"raw": raw[:RAW_CHARS], "error": error}


def decode_payload(data: Any) -> dict[str, Any]:
    """The DecisionRecord dict carried by a ``messagePublished`` event's data, or a
    ``{"raw", "error"}`` dict saying why there is none (the store rejects it with
    that reason)."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        return _undecodable(json.dumps(data, default=str), "event data has no Pub/Sub message object")
    encoded = message.get("data", "")
    if not isinstance(encoded, str):
        return _undecodable(json.dumps(encoded, default=str), "message data is not a base64 string")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        return _undecodable(encoded, f"message data is not valid base64: {exc}")
    try:
        # the record as the worker wrote it, in one call of pydantic's JSON parser
        # (jiter): integers of any size read exactly, as the standard library
        # reads them (orjson turned one past 64 bits into a float, and the scan
        # for a run of 19 digits that guarded it cost three times the parse)
        payload = pydantic_core.from_json(raw)
    except ValueError:
        payload, why = _decode_slowly(raw)  # the reason (not UTF-8, not JSON), or the value
        if why is not None:
            return why
    if not isinstance(payload, dict):
        text = raw.decode("utf-8", errors="replace")
        return _undecodable(text, f"message data is a JSON {type(payload).__name__}, not an object")
    return payload


def _decode_slowly(raw: bytes) -> tuple[Any, dict[str, Any] | None]:
    """``raw`` decoded by the standard library, or the ``{"raw", "error"}`` dict of why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, _undecodable(raw.decode("utf-8", errors="replace"), f"message data is not UTF-8: {exc}")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, _undecodable(text, f"message data is not JSON: {exc}")


def _line_fields(payload: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The decision's labels and, for a stored one, the two latencies the SLOs'
    log metrics read from the line (docs/operations.md): ``decision_ms``
    (completed less submitted) and ``audit_lag_ms`` (now, stored, less completed)."""
    found = payload.get("ruleset")
    ruleset: dict[str, Any] = found if isinstance(found, dict) else {}
    labels = {
        "tenant": payload.get("tenant"),
        "decision_id": payload.get("decision_id"),
        "ruleset": ruleset.get("name"),
        "version": ruleset.get("version"),
    }
    fields: dict[str, float] = {}
    if outcome.stored:
        submitted, completed = _instant(payload.get("submitted_at")), _instant(payload.get("completed_at"))
        if submitted is not None and completed is not None:
            fields["decision_ms"] = round((completed - submitted).total_seconds() * 1000, 3)
        if completed is not None:
            fields["audit_lag_ms"] = round((datetime.now(UTC) - completed).total_seconds() * 1000, 3)
    return {"labels": labels, "json_fields": fields}


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _describe(outcome: Outcome) -> str:
    where = f" (batch of {outcome.batch_size})" if outcome.batch_size > 1 else ""
    if outcome.rejection is not None:
        return f"rejected{where}: {outcome.rejection.reason}"
    return f"stored{where}"


class AuditSink:
    """One instance's sink: its store, opened by the first message and kept (a
    failed open is not kept: the next message tries again), and its group commits.

    ``open_store`` opens the store; ``settings`` makes the settings that decide
    who may deliver (called on first use). Nothing connects on construction."""

    def __init__(
        self,
        open_store: Callable[[], AuditStore],
        *,
        settings: Callable[[], Settings],
        max_batch: int = MAX_BATCH,
        gather_ms: float = GATHER_MS,
    ) -> None:
        self._open_store = open_store
        self._settings_of = settings
        self._settings: Settings | None = None
        self._store: AuditStore | None = None
        self._lock = threading.Lock()
        self.committer = GroupCommitter(self.store, max_batch=max_batch, gather_ms=gather_ms)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self._settings_of()
        return self._settings

    @property
    def store_open(self) -> bool:
        return self._store is not None

    def store(self) -> AuditStore:
        """The instance's audit store, opened on first use."""
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store

    def reset(self) -> None:
        """Close and forget the store (tests; a changed environment)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = None

    def check_sender(self, headers: Any, remote: str | None) -> None:
        """Locally (``ENTAIL_PUSH_AUTH=secret``) only the relay may deliver: its
        request carries the push secret, as its pushes to the worker do; any other
        local process could otherwise forge an audit row for any tenant. In the
        cloud Pub/Sub delivers with an OIDC token and IAM admits only the
        function's invoker. ``headers``: the request's (a mapping with ``get``)."""
        if self.settings.push_auth != "secret":
            return
        presented = str(headers.get(PUSH_SECRET_HEADER, "") or "")
        if not hmac.compare_digest(presented.encode(), self.settings.push_secret.encode()):
            log.warning("refused a delivery from %s without the relay's push secret", remote)
            raise SenderRefused(f"send the relay's push secret in {PUSH_SECRET_HEADER}")

    def deliver(self, data: Any, event_id: str) -> Outcome:
        """Store the decision of one ``messagePublished`` event's data; raise only
        when a retry may help. ``event_id``: the CloudEvent's id, logged when the
        message carries no ``messageId``."""
        message = data.get("message") if isinstance(data, dict) else None
        message_id = (message.get("messageId") if isinstance(message, dict) else None) or event_id
        if not tracing.enabled():
            return self._deliver(data, message_id)
        attributes = message.get("attributes") if isinstance(message, dict) else None
        carried = {str(k): str(v) for k, v in attributes.items()} if isinstance(attributes, dict) else {}
        # a child of the delivery (locally the relay's push, in the cloud the publish)
        with tracing.message_span(
            "sink.store",
            carried,
            {"messaging.message.id": message_id, "decision_id": carried.get("decision_id")},
        ) as span:
            outcome = self._deliver(data, message_id)
            tracing.record(span, stored=outcome.stored, batch_size=outcome.batch_size)
            return outcome

    def _deliver(self, data: Any, message_id: str) -> Outcome:
        payload = decode_payload(data)
        decision_id = payload.get("decision_id")
        try:
            with tracing.span("audit.insert", {"decision_id": decision_id}):
                outcome = self.committer.insert(payload)
        except Exception as exc:
            log.error(
                "message %s decision %s: not stored, will be redelivered: %s: %s",
                message_id,
                decision_id,
                type(exc).__name__,
                exc,
            )
            raise
        log.info(
            "message %s decision %s: %s",
            message_id,
            decision_id,
            _describe(outcome),
            extra=_line_fields(payload, outcome),
        )
        return outcome
