"""The bus on Google Pub/Sub (``ENTAIL_BUS=pubsub``): the cloud adapter of the port.

Thin on purpose: ``PublisherClient.publish(topic_path, data, **attributes)`` and
its future awaited without blocking the event loop. Topics are
``projects/{ENTAIL_GCP_PROJECT}/topics/{topic}`` (``reasoning-jobs``,
``decisions``); push subscriptions deliver them to the worker and to the audit
sink (docs/decisions/0006-audit-sink-push-subscription.md), so there is no relay
in cloud mode.

Delivery is at least once, as with the Redis adapter: a publish retried by the
client library after a lost reply may store a message twice, and every
subscriber is idempotent on the decision id.

Errors: a publish that Pub/Sub did not store within
``ENTAIL_PUBSUB_PUBLISH_TIMEOUT_MS`` (after the client's own retries) raises
:class:`BusUnavailable` or :class:`BusTimeout`. They are subclasses of the Redis
client's ``ConnectionError`` and ``TimeoutError``, the errors the Redis Streams
adapter raises when its bus is down, so the services answer exactly as they do
then: the backend 503 with ``Retry-After``, the worker 503 (the push is
redelivered). A publish on a closed bus raises ``RuntimeError``, as there.

With an emulator (``ENTAIL_PUBSUB_EMULATOR_HOST`` or the standard
``PUBSUB_EMULATOR_HOST``) the client talks plaintext gRPC to it with no
credentials; otherwise Application Default Credentials (on Cloud Run: the
service's own account).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..settings import Settings
from .port import Bus

EMULATOR_ENV = "PUBSUB_EMULATOR_HOST"


class BusUnavailable(RedisConnectionError):
    """Pub/Sub refused or failed a publish (unavailable, permission, missing topic):
    the message is not on the bus. Handled like the Redis bus being down."""


class BusTimeout(RedisTimeoutError):
    """Pub/Sub did not confirm a publish within the publish timeout."""


def emulator_host(settings: Settings) -> str:
    """The emulator to use, or "" for Google's service."""
    return settings.pubsub_emulator_host or os.environ.get(EMULATOR_ENV, "")


def topic_path(project: str, topic: str) -> str:
    return f"projects/{project}/topics/{topic}"


def publisher_client(settings: Settings, *, timeout_s: float | None = None) -> Any:
    """A ``pubsub_v1.PublisherClient`` for the settings: batches flushed after
    5 ms (one decision is one message: latency matters more than batching), and
    retries of transient errors bounded by the publish timeout."""
    from google.api_core.retry import Retry, if_transient_error

    pubsub_v1 = _pubsub_v1()
    deadline_s = timeout_s if timeout_s is not None else settings.pubsub_publish_timeout_ms / 1000
    options = pubsub_v1.types.PublisherOptions(
        retry=Retry(predicate=if_transient_error, initial=0.1, maximum=2.0, timeout=deadline_s),
        timeout=deadline_s,
    )
    batching = pubsub_v1.types.BatchSettings(max_latency=0.005)
    host = emulator_host(settings)
    if not host:
        return pubsub_v1.PublisherClient(batch_settings=batching, publisher_options=options)
    return pubsub_v1.PublisherClient(
        batch_settings=batching, publisher_options=options, transport=_emulator_transport(host, "publisher")
    )


def subscriber_client(settings: Settings) -> Any:
    """A ``pubsub_v1.SubscriberClient`` (administration: creating push subscriptions
    on an emulator in tests; the services never subscribe, Pub/Sub pushes)."""
    pubsub_v1 = _pubsub_v1()
    host = emulator_host(settings)
    if not host:
        return pubsub_v1.SubscriberClient()
    return pubsub_v1.SubscriberClient(transport=_emulator_transport(host, "subscriber"))


def _pubsub_v1() -> Any:
    """``google.cloud.pubsub_v1``, which ships no type information (loaded by
    name so the type checker treats it as ``Any`` whatever else it has seen)."""
    return importlib.import_module("google.cloud.pubsub_v1")


def _emulator_transport(host: str, kind: str) -> Any:
    """Plaintext gRPC to an emulator: the library only does this by itself when
    the process environment has ``PUBSUB_EMULATOR_HOST``, and our setting may
    point elsewhere; a channel given to the transport carries no credentials."""
    import grpc  # type: ignore[import-untyped]

    channel = grpc.insecure_channel(host)
    if kind == "publisher":
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        return PublisherGrpcTransport(channel=channel)
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    return SubscriberGrpcTransport(channel=channel)


class PubSubBus(Bus):
    """Publishes to ``projects/{project}/topics/{topic}``; ``close`` flushes the
    pending batch and releases the client's channel."""

    def __init__(self, client: Any, project: str, timeout_s: float) -> None:
        self._client = client
        self._project = project
        self._timeout_s = timeout_s
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> PubSubBus:
        timeout_s = settings.pubsub_publish_timeout_ms / 1000
        return cls(publisher_client(settings, timeout_s=timeout_s), settings.gcp_project, timeout_s)

    async def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        from google.api_core.exceptions import GoogleAPIError

        if self._closed:
            raise RuntimeError("publish on a closed bus")
        path = topic_path(self._project, topic)
        try:
            future = self._client.publish(path, data, **attributes)
            message_id = await asyncio.wait_for(asyncio.wrap_future(future), self._timeout_s)
        except TimeoutError:
            raise BusTimeout(
                f"Pub/Sub did not confirm a publish to {path} within {self._timeout_s:g} s"
            ) from None
        except GoogleAPIError as exc:
            raise BusUnavailable(f"Pub/Sub publish to {path} failed: {type(exc).__name__}: {exc}") from exc
        return str(message_id)

    async def backlog(self, topic: str, subscription: str) -> int | None:
        return None  # a publisher cannot see a subscription's backlog: Cloud Monitoring can

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # stop() flushes the current batch and waits for it: not on the event loop
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        try:
            self._client.stop()
        finally:
            self._client.transport.close()
