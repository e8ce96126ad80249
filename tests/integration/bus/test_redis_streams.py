"""The Redis Streams bus adapter: what a publish writes."""

from __future__ import annotations

import json
import re

import pytest
import redis.asyncio as aioredis

from entail.bus.port import DECISIONS, REASONING_JOBS, Bus
from entail.bus.redis_streams import RedisStreamsBus, decode_entry, publish_time_of_id, stream_key

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_publish_appends_one_entry_with_raw_data_json_attributes_and_time(
    redis: aioredis.Redis,
) -> None:
    bus: Bus = RedisStreamsBus(redis, 1000)
    data = b"\x00\xff binary \xe2\x82"
    message_id = await bus.publish(REASONING_JOBS, data, {"decision_id": "dec_1", "tenant": "acme"})

    entries = await redis.xrange(stream_key(REASONING_JOBS))
    assert len(entries) == 1
    entry_id, fields = entries[0]
    assert entry_id.decode() == message_id
    assert set(fields) == {b"data", b"attributes", b"publish_time"}
    assert fields[b"data"] == data
    assert json.loads(fields[b"attributes"]) == {"decision_id": "dec_1", "tenant": "acme"}
    assert RFC3339_MS.match(fields[b"publish_time"].decode())

    message = decode_entry(entry_id, fields)
    assert (message.id, message.data, message.attributes) == (
        message_id,
        data,
        {"decision_id": "dec_1", "tenant": "acme"},
    )
    assert message.publish_time == fields[b"publish_time"].decode()


async def test_topics_are_separate_streams_and_ids_increase(redis: aioredis.Redis) -> None:
    bus = RedisStreamsBus(redis, 1000)
    first = await bus.publish(DECISIONS, b"1", {})
    second = await bus.publish(DECISIONS, b"2", {})
    assert tuple(map(int, first.split("-"))) < tuple(map(int, second.split("-")))
    assert await redis.xlen(stream_key(DECISIONS)) == 2
    assert await redis.xlen(stream_key(REASONING_JOBS)) == 0


async def test_streams_are_trimmed_to_about_max_len(redis: aioredis.Redis) -> None:
    bus = RedisStreamsBus(redis, 10)
    for i in range(600):
        await bus.publish(DECISIONS, str(i).encode(), {})
    length = await redis.xlen(stream_key(DECISIONS))
    assert 10 <= length < 600  # approximate trimming: whole macro nodes go


async def test_closed_bus_refuses_to_publish(redis: aioredis.Redis) -> None:
    bus = RedisStreamsBus(redis, 10)
    await bus.close()
    with pytest.raises(RuntimeError):
        await bus.publish(DECISIONS, b"x", {})


def test_entries_written_by_hand_are_decoded_leniently() -> None:
    message = decode_entry(b"1700000000123-0", {b"data": b"x", b"attributes": b"not json"})
    assert message.attributes == {}
    assert message.publish_time == publish_time_of_id("1700000000123-0") == "2023-11-14T22:13:20.123Z"
