"""The bus port: what the services need from a message bus, nothing more.

Kept to one publish call and a close so that the Redis Streams adapter used
locally and a Google Pub/Sub adapter in the cloud are interchangeable (the
Pub/Sub one is ``PublisherClient.publish(topic_path, data, **attributes)`` and
``result()`` in an executor). Delivery to subscribers is not part of the port:
Pub/Sub pushes to the services itself; locally :mod:`entail.relay` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

REASONING_JOBS = "reasoning-jobs"
"""Topic: one :class:`entail.models.Job` per message, published by the backend."""

DECISIONS = "decisions"
"""Topic: one final :class:`entail.models.DecisionRecord` per message, published by the worker."""

TOPICS = (REASONING_JOBS, DECISIONS)


class Bus(Protocol):
    """Publish-only view of a topic-based message bus."""

    async def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        """Publish one message; returns its message id once the bus has stored it."""
        ...

    async def backlog(self, topic: str, subscription: str) -> int | None:
        """Messages of ``topic`` not yet acknowledged by ``subscription``, or None
        where the adapter cannot tell (Pub/Sub: Cloud Monitoring's
        ``subscription/num_undelivered_messages`` is the figure there)."""
        ...

    async def close(self) -> None:
        """Release what the adapter owns (not a Redis client it was given)."""
        ...


@dataclass(frozen=True)
class Message:
    """One message as a subscriber sees it (the fields of a Pub/Sub ``PubsubMessage``)."""

    id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    publish_time: str = ""  # RFC 3339 UTC with milliseconds, e.g. 2025-01-31T12:00:00.123Z
