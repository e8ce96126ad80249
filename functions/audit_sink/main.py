"""The audit sink: a Cloud Function (gen2) on topic ``decisions`` that stores
every final decision in the audit store, once.

Fed by a Pub/Sub push subscription of its own on ``decisions``, with OIDC tokens
and a dead-letter topic, not an Eventarc trigger
(docs/decisions/0006-audit-sink-push-subscription.md): functions-framework turns
each push envelope into the CloudEvent an Eventarc trigger would deliver,
``google.cloud.pubsub.topic.v1.messagePublished``, whose data is
``{"message": {"data": <base64>, "attributes", "messageId", "publishTime"},
"subscription"}``; locally ``entail relay`` delivers exactly that CloudEvent
(subscription ``audit-sink``). The message data is one
:class:`entail.models.DecisionRecord` as JSON.

Outcomes, by what the framework answers (Pub/Sub redelivers anything but 2xx):

* stored, or already stored (``insert_decisions`` is idempotent on
  ``decision_id``: at-least-once delivery lands once) → 200, acked;
* a message that can never be stored (data not base64, not UTF-8 JSON, not a
  valid DecisionRecord, a non-final status) → written to the ``rejected`` table
  with the reason and its raw payload by the store, and acked: retrying cannot help;
* a delivery without the relay's push secret (locally, ``ENTAIL_PUSH_AUTH=secret``)
  → 401, nothing stored;
* anything else (the audit file locked by another process past the store's
  wait, an IO error, a bug) → the function raises, the framework answers 500
  and the message is delivered again later.

Nothing connects at import: the store is opened by the first message and kept
for the life of the instance.

Messages arriving together are written together (:mod:`entail.audit.group_commit`):
the framework serves each request on its own thread, and while one store call
runs, the decisions that arrive queue up and go in the next call. Each request
still answers only once its own decision is stored, so a 2xx remains a
durable acknowledgement.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import sys
import threading
from functools import cache
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from entail.audit.factory import open_audit_store
from entail.audit.group_commit import GroupCommitter, Outcome
from entail.audit.port import AuditStore
from entail.bus.push import PUSH_SECRET_HEADER
from entail.settings import Settings

log = logging.getLogger("entail.audit_sink")
if not log.handlers:  # the framework configures no logging: one line per message on stderr
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False

RAW_CHARS = 10_000  # of an undecodable payload kept in the rejected row
MAX_BATCH = 500  # decisions per store call at most

_store: AuditStore | None = None
_store_lock = threading.Lock()


def get_store() -> AuditStore:
    """The instance's audit store, opened on first use from ``Settings()``. A
    failure to open is not cached: the next message tries again."""
    global _store
    with _store_lock:
        if _store is None:
            _store = open_audit_store(Settings(), steady_writer=True)
        return _store


def reset_store() -> None:
    """Close and forget the cached store (tests; a changed environment)."""
    global _store
    with _store_lock:
        if _store is not None:
            _store.close()
        _store = None


committer = GroupCommitter(get_store, max_batch=MAX_BATCH)


def _undecodable(raw: str, error: str) -> dict[str, Any]:
    """A payload the store rejects (not a DecisionRecord), keeping what was received."""
    return {"raw": raw[:RAW_CHARS], "error": error}


def decode_payload(data: Any) -> dict[str, Any]:
    """The DecisionRecord dict carried by the event data, or a ``{"raw", "error"}``
    dict describing why there is none (the store rejects it with a reason)."""
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
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _undecodable(raw.decode("utf-8", errors="replace"), f"message data is not UTF-8: {exc}")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        return _undecodable(text, f"message data is not JSON: {exc}")
    if not isinstance(payload, dict):
        return _undecodable(text, f"message data is a JSON {type(payload).__name__}, not an object")
    return payload


def _outcome(outcome: Outcome) -> str:
    where = f" (batch of {outcome.batch_size})" if outcome.batch_size > 1 else ""
    if outcome.rejection is not None:
        return f"rejected{where}: {outcome.rejection.reason}"
    return f"stored{where}"


@cache
def _settings() -> Settings:
    return Settings()


def check_sender() -> None:
    """Locally (``ENTAIL_PUSH_AUTH=secret``) only the relay may deliver: its request
    carries the push secret, as its pushes to the worker do, or it gets a 401 and
    no row is written — any other local process could otherwise forge an audit
    row for any tenant. In the cloud Pub/Sub's push subscription delivers with an
    OIDC token, and the function accepts only its invoker (IAM). A direct call
    outside an HTTP request (tests) is code in this process, not a sender."""
    if not flask.has_request_context() or _settings().push_auth != "secret":
        return
    presented = flask.request.headers.get(PUSH_SECRET_HEADER, "")
    if not hmac.compare_digest(presented.encode(), _settings().push_secret.encode()):
        log.warning("refused a delivery from %s without the relay's push secret", flask.request.remote_addr)
        flask.abort(401, description=f"send the relay's push secret in {PUSH_SECRET_HEADER}")


@functions_framework.cloud_event
def audit_sink(cloud_event: CloudEvent) -> None:
    """Store the decision of one Pub/Sub message; raise only when a retry may help."""
    check_sender()
    data = cloud_event.get_data()
    message = data.get("message") if isinstance(data, dict) else None
    message_id = (message.get("messageId") if isinstance(message, dict) else None) or cloud_event["id"]
    payload = decode_payload(data)
    decision_id = payload.get("decision_id")
    try:
        outcome = committer.insert(payload)
    except Exception as exc:
        log.error(
            "message %s decision %s: not stored, will be redelivered: %s: %s",
            message_id,
            decision_id,
            type(exc).__name__,
            exc,
        )
        raise
    log.info("message %s decision %s: %s", message_id, decision_id, _outcome(outcome))
