"""Queries on the Redis Streams that stand in for Pub/Sub locally: the keys next
to a topic's stream, its dead letters and a subscription's backlog.

Keys, next to the topic's stream ``entail:bus:{topic}`` (consumer group = the
subscription name):

* ``entail:bus:{topic}:{sub}:attempts`` — hash, message id -> deliveries so far,
  so that a restarted relay continues counting towards ``max_attempts``;
* ``entail:bus:{topic}:{sub}:dead-letter`` — stream of the messages given up on.

Used by the relay (:mod:`entail.relay`), the bus adapter's ``backlog()`` and
the tests; nothing here delivers.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from .redis_streams import decode_entry, stream_key


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def attempts_key(topic: str, subscription: str) -> str:
    return f"{stream_key(topic)}:{subscription}:attempts"


def dead_letter_key(topic: str, subscription: str) -> str:
    return f"{stream_key(topic)}:{subscription}:dead-letter"


def read_entries(reply: Any) -> list[tuple[bytes | str, Any]]:
    """The (id, fields) entries of an ``XREADGROUP`` reply, RESP2 (a list of
    ``[stream, entries]``) or RESP3 (a map of stream to entries)."""
    if not reply:
        return []
    per_stream = reply.values() if isinstance(reply, dict) else (item[1] for item in reply)
    out: list[tuple[bytes | str, Any]] = []
    for entries in per_stream:
        if entries and isinstance(entries[0], list) and entries[0] and isinstance(entries[0][0], list):
            entries = entries[0]  # RESP3 wraps the entries once more
        out.extend((entry[0], entry[1]) for entry in entries)
    return out


async def dead_letters(
    redis: aioredis.Redis, topic: str, sub: str, *, count: int | None = None
) -> list[dict[str, Any]]:
    """The dead letters of a subscription, oldest first: ``id`` (in the dead-letter
    stream), ``original_id``, ``data`` (bytes), ``attributes`` (dict),
    ``publish_time``, ``attempts`` (int), ``last_error``, ``dead_lettered_at``."""
    out: list[dict[str, Any]] = []
    for entry_id, fields in await redis.xrange(dead_letter_key(topic, sub), count=count) or []:
        if entry_id is None or fields is None:
            continue
        raw = {_text(k): v for k, v in fields.items()}
        message = decode_entry(raw.get("original_id", entry_id), fields)
        out.append(
            {
                "id": _text(entry_id),
                "original_id": message.id,
                "data": message.data,
                "attributes": message.attributes,
                "publish_time": message.publish_time,
                "subscription": _text(raw.get("subscription", sub)),
                "attempts": int(raw.get("attempts", 0)),
                "last_error": _text(raw.get("last_error", b"")),
                "dead_lettered_at": _text(raw.get("dead_lettered_at", b"")),
            }
        )
    return out


async def pending_lag(redis: aioredis.Redis, topic: str, sub: str) -> int:
    """Messages of ``topic`` not yet acknowledged by subscription ``sub``: never read
    (the group's lag) plus read but not acked (its pending count). Before the relay
    created the group, every message in the stream (the group starts at 0)."""
    key = stream_key(topic)
    try:
        groups = await redis.xinfo_groups(key)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return 0
        raise
    for info in groups:
        if _text(info["name"]) != sub:
            continue
        lag = info.get("lag")
        if lag is None:  # Redis cannot tell after deletions inside the range: estimate
            read = info.get("entries-read")
            length = int(await redis.xlen(key))
            lag = max(0, length - int(read)) if read is not None else length
        return int(lag) + int(info["pending"])
    return int(await redis.xlen(key))
