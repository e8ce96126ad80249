"""The push wire format: what Pub/Sub (or, locally, the relay) POSTs to a subscriber.

One codec for every party: the relay encodes (:func:`push_envelope`,
:func:`cloudevent_request`), the reasoning worker decodes a push
(:class:`PushEnvelope`), and the audit sink reads the CloudEvent that
functions-framework makes of the same envelope. Two shapes:

* a **push envelope** (a Cloud Run service such as the worker): JSON
  ``{"message": {"data": base64, "attributes", "messageId", "publishTime"},
  "subscription", "deliveryAttempt"}``, ids and times in both spellings, as
  Pub/Sub sends them;
* a **binary-mode CloudEvent** (a gen2 Cloud Function such as the audit sink):
  ``ce-*`` headers and ``MessagePublishedData`` as the body, which is what
  functions-framework hands a function for a push of a Pub/Sub message.

Locally every push also carries :data:`PUSH_SECRET_HEADER` (the relay's shared
secret, ``ENTAIL_PUSH_AUTH=secret``); in the cloud Pub/Sub signs an OIDC token
instead. This module imports nothing beyond pydantic, so the audit sink, which
installs neither Redis nor httpx, can use it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..models import utcnow
from .port import Message

PUSH_SUCCESS_STATUSES = frozenset({102, 200, 201, 202, 204})
"""The answers Pub/Sub takes as an acknowledgement of a push (any other is a nack)."""

PUBSUB_CLOUDEVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
"""The CloudEvent type of a Pub/Sub message delivered to a function."""

PUSH_SECRET_HEADER = "X-Entail-Push-Secret"
"""The header of the local relay's shared secret, on every push it makes."""


def subscription_path(name: str) -> str:
    return f"projects/local/subscriptions/{name}"


def topic_path(topic: str) -> str:
    return f"projects/local/topics/{topic}"


def _message_json(message: Message, publish_time: str) -> dict[str, Any]:
    return {
        "data": base64.b64encode(message.data).decode("ascii"),
        "attributes": dict(message.attributes),
        "messageId": message.id,
        "message_id": message.id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    }


def push_envelope(message: Message, subscription: str, attempt: int) -> dict[str, Any]:
    """The body of a Pub/Sub push request, field for field (both spellings of the
    ids and times, as Pub/Sub sends them)."""
    return {
        "message": _message_json(message, message.publish_time),
        "subscription": subscription_path(subscription),
        "deliveryAttempt": attempt,
    }


def cloudevent_request(message: Message, topic: str, subscription: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent a gen2 function receives for
    a Pub/Sub message: the ``ce-*`` attributes in headers, the
    ``MessagePublishedData`` as the JSON body (no ``deliveryAttempt`` there)."""
    publish_time = message.publish_time or utcnow()
    headers = {
        "ce-id": message.id,
        "ce-source": f"//pubsub.googleapis.com/{topic_path(topic)}",
        "ce-type": PUBSUB_CLOUDEVENT_TYPE,
        "ce-specversion": "1.0",
        "ce-time": publish_time,
        "content-type": "application/json",
    }
    body = {"message": _message_json(message, publish_time), "subscription": subscription_path(subscription)}
    return headers, json.dumps(body, separators=(",", ":")).encode()


class PushMessage(BaseModel):
    """The ``message`` of a push envelope, either spelling of its ids and times."""

    model_config = ConfigDict(extra="ignore")

    data: str  # a push without data is not a message of ours
    attributes: dict[str, str] = Field(default_factory=dict)
    messageId: str | None = None  # noqa: N815 - Pub/Sub's spelling
    message_id: str | None = None
    publishTime: str | None = None  # noqa: N815 - Pub/Sub's spelling
    publish_time: str | None = None

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"data is not valid base64: {exc}") from exc
        return value


class PushEnvelope(BaseModel):
    """A Pub/Sub push request's body, as the worker receives it."""

    model_config = ConfigDict(extra="ignore")

    message: PushMessage
    subscription: str = ""
    deliveryAttempt: int | None = None  # noqa: N815 - Pub/Sub's spelling

    def to_message(self) -> Message:
        m = self.message
        return Message(
            id=m.messageId or m.message_id or "",
            data=base64.b64decode(m.data, validate=True),
            attributes=dict(m.attributes),
            publish_time=m.publishTime or m.publish_time or "",
        )


class BadEnvelope(ValueError):
    """A push body that is not a Pub/Sub push envelope (the subscriber answers 400)."""


def decode_push(body: bytes) -> Message:
    """The message of a push envelope; :class:`BadEnvelope` says what is wrong."""
    try:
        return PushEnvelope.model_validate_json(body).to_message()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadEnvelope(f"not a Pub/Sub push envelope: {where}: {first['msg']}") from exc
