"""The bus on Redis Streams: one stream per topic, ``entail:bus:{topic}``.

Each entry has three fields: ``data`` (the raw bytes), ``attributes`` (a JSON
object of strings) and ``publish_time`` (RFC 3339, UTC, milliseconds). The
stream id is the message id. Subscribers are consumer groups, delivered by
:mod:`entail.relay`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from ..models import utcnow
from ..state.durability import Durability
from .port import Bus, Message

log = logging.getLogger(__name__)

KEY_PREFIX = "entail:bus:"


def stream_key(topic: str) -> str:
    """The stream that holds a topic's messages."""
    return f"{KEY_PREFIX}{topic}"


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def publish_time_of_id(entry_id: str) -> str:
    """The publish time encoded in a stream id (its milliseconds part): the
    fallback for entries written by hand without a ``publish_time`` field."""
    millis = int(entry_id.split("-", 1)[0])
    stamp = datetime.fromtimestamp(millis // 1000, UTC) + timedelta(milliseconds=millis % 1000)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decode_entry(entry_id: bytes | str, fields: Mapping[Any, Any]) -> Message:
    """A stream entry as a :class:`Message`. Lenient on purpose: an entry with
    broken attributes is still delivered (and then acked or dead-lettered by the
    subscriber), never left to block its group."""
    ident = _text(entry_id)
    raw: dict[str, bytes] = {
        _text(k): (v if isinstance(v, bytes) else str(v).encode()) for k, v in fields.items()
    }
    attributes: dict[str, str] = {}
    if "attributes" in raw:
        try:
            parsed = json.loads(raw["attributes"])
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
            attributes = {str(k): str(v) for k, v in parsed.items()}
        except ValueError as exc:
            log.warning("bus message %s: unreadable attributes (%s); delivered without them", ident, exc)
    publish_time = raw["publish_time"].decode() if "publish_time" in raw else publish_time_of_id(ident)
    return Message(id=ident, data=raw.get("data", b""), attributes=attributes, publish_time=publish_time)


class RedisStreamsBus(Bus):
    """Publishes with ``XADD``, trimming each stream to about ``max_len`` entries.

    Trimming is approximate (``MAXLEN ~``) so that it costs nothing per publish;
    ``max_len`` of 0 or less disables it. The Redis client belongs to the caller
    (the composition root closes it), so :meth:`close` only stops publishing.

    A publish is a durable write (:mod:`entail.state.durability`): the message is
    on a replica before ``publish`` returns, as Pub/Sub has stored it when its
    publish future resolves. A publish retried after a lost reply may store the
    message twice, as a Pub/Sub publisher's retry may: subscribers are idempotent
    (the worker by its claim and the final record, the audit sink by decision id).
    """

    def __init__(
        self, redis: aioredis.Redis, max_len: int | None = None, *, durability: Durability | None = None
    ) -> None:
        self._redis = redis
        self._max_len = max_len if max_len and max_len > 0 else None
        self._durability = durability or Durability(redis)
        self._closed = False

    async def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        (entry_id,) = await self._durability.write(
            lambda pipe: self.queue_publish(pipe, topic, data, attributes)
        )
        return _text(entry_id)

    def joins(self, durability: Durability) -> bool:
        """Whether this bus writes through ``durability`` (entail.bus.port.InStoreBus)."""
        return durability is self._durability

    def queue_publish(self, pipe: Pipeline, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        """Queue the ``XADD`` of a publish on ``pipe`` (entail.bus.port.InStoreBus)."""
        if self._closed:
            raise RuntimeError("publish on a closed bus")
        fields: dict[Any, Any] = {
            "data": data,
            "attributes": json.dumps(attributes, sort_keys=True, separators=(",", ":")),
            "publish_time": utcnow(),
        }
        pipe.xadd(stream_key(topic), fields, maxlen=self._max_len, approximate=True)

    async def backlog(self, topic: str, subscription: str) -> int | None:
        from .stream_queries import pending_lag  # it builds on this module

        return await pending_lag(self._redis, topic, subscription)

    async def close(self) -> None:
        self._closed = True
