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

This module only adapts functions-framework to :class:`entail.audit_sink.AuditSink`
(decoding, group commits, logging), built by the composition root
(:func:`entail.bootstrap.open_audit_sink`, which chooses the store). The local
stack runs the same sink from the installed ``entail_dev.sink``. Nothing
connects at import: the store is opened by the first message and kept for the
life of the instance.
"""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http import CloudEvent

from entail.audit_sink import SenderRefused, configure_logging
from entail.bootstrap import open_audit_sink
from entail.process_heap import freeze_startup_heap

configure_logging()
sink = open_audit_sink()
freeze_startup_heap()  # full collections skip the startup heap (entail.process_heap): no 100 ms pauses


@functions_framework.cloud_event
def audit_sink(cloud_event: CloudEvent) -> None:
    """Store the decision of one Pub/Sub message; raise only when a retry may help."""
    if flask.has_request_context():  # a direct call (tests) is code in this process, not a sender
        try:
            sink.check_sender(flask.request.headers, flask.request.remote_addr)
        except SenderRefused as exc:
            flask.abort(401, description=str(exc))
    sink.deliver(cloud_event.get_data(), cloud_event["id"])
