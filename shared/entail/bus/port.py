"""The bus port: what the services need from a message bus, nothing more.

Kept to one publish call and a close so that the Redis Streams adapter used
locally and a Google Pub/Sub adapter in the cloud are interchangeable (the
Pub/Sub one is ``PublisherClient.publish(topic_path, data, **attributes)`` and
``result()`` in an executor). Delivery to subscribers is not part of the port:
Pub/Sub pushes to the services itself; locally :mod:`entail.relay` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class InStoreBus(Protocol):
    """Optional, besides :class:`Bus`: a bus whose messages are kept in the state
    store itself (Redis Streams), so that a publish can join a durable write of
    that store, one round trip for both (a cache hit's record and its audit
    message). Pub/Sub is not one: there, state writes and publishes stay apart."""

    def joins(self, durability: Any) -> bool:
        """Whether this bus writes through ``durability`` (the same server, the same ``WAIT``)."""
        ...

    def queue_publish(self, pipe: Any, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        """Queue a publish on ``pipe``, the pipeline of a ``durability.write`` this bus
        :meth:`joins`: the message is stored when that write returns."""
        ...


@dataclass(frozen=True)
class Message:
    """One message as a subscriber sees it (the fields of a Pub/Sub ``PubsubMessage``)."""

    id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    publish_time: str = ""  # RFC 3339 UTC with milliseconds, e.g. 2025-01-31T12:00:00.123Z
