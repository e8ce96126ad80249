"""Direct calls (entail.state.direct_calls) on the real server: the replies are the
client's, a connection the server dropped or a call cancelled mid-reply never
hands a later call the wrong reply, and the connections stay few and the pool's."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from entail.settings import Settings
from entail.state import connect
from entail.state.direct_calls import DIRECT_CONNECTIONS, DirectCalls, direct_calls


async def test_replies_are_what_execute_command_gives(redis: aioredis.Redis) -> None:
    calls = DirectCalls(redis)
    for name, *rest in (("SET", "v"), ("GET",), ("XADD", "*", "f", "1"), ("ZADD", 1, "m"), ("HGETALL",)):
        mine = await calls.call(name, f"mine-{name}", *rest)
        theirs = await redis.execute_command(name, f"theirs-{name}", *rest)
        if name == "XADD":  # ids differ, their kind does not
            assert isinstance(mine, bytes) and isinstance(theirs, bytes)
        else:
            assert mine == theirs, name
    assert await calls.call("SET", "k", "v") is True  # the client's reply callback applied
    with pytest.raises(NoScriptError):
        await calls.call("EVALSHA", "0" * 40, 0)
    with pytest.raises(ResponseError):
        await calls.call("EVAL", "return redis.call('INCR', KEYS[1])", 1, "k")  # not an integer
    # reply errors leave the connection clean: the next call gets its own reply
    assert await calls.call("GET", "k") == b"v"


async def test_a_connection_the_server_dropped_is_replaced_and_the_call_answered(
    redis: aioredis.Redis,
) -> None:
    calls = DirectCalls(redis)
    await redis.set("k", "v")
    assert await calls.call("GET", "k") == b"v"  # a direct connection opened
    # the server closes the direct connection: the next call reconnects and answers
    await redis.execute_command("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
    assert await calls.call("GET", "k") == b"v"
    assert await calls.call("GET", "k") == b"v"


async def test_a_cancelled_call_leaves_no_stray_reply_for_the_next(redis: aioredis.Redis) -> None:
    calls = DirectCalls(redis, max_connections=1)  # one connection: the next call would reuse it
    await redis.set("k", "v")
    waiting = asyncio.create_task(calls.call("BLPOP", "empty", 0.3))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await redis.rpush("empty", "late")  # a reply the cancelled call would have read
    assert await calls.call("GET", "k") == b"v"
    await asyncio.sleep(0.4)
    assert await calls.call("GET", "k") == b"v"


async def test_connections_are_few_and_calls_beyond_them_take_the_clients_path(
    redis: aioredis.Redis,
) -> None:
    calls = direct_calls(redis)
    assert direct_calls(redis) is calls  # one set per client
    await redis.set("k", "v")
    replies = await asyncio.gather(*(calls.call("GET", "k") for _ in range(3 * DIRECT_CONNECTIONS)))
    assert replies == [b"v"] * (3 * DIRECT_CONNECTIONS)
    assert len(calls._idle) <= DIRECT_CONNECTIONS
    # they are the pool's, in use: closing the client closes them
    in_use = redis.connection_pool._in_use_connections  # type: ignore[attr-defined]
    assert set(calls._idle) <= set(in_use)
    await redis.connection_pool.disconnect()
    assert all(not conn.is_connected for conn in calls._idle)
    assert await calls.call("GET", "k") == b"v"  # and a later call reconnects


async def test_a_pipeline_answers_as_the_clients_and_raises_its_first_error_after_reading_all(
    redis: aioredis.Redis,
) -> None:
    calls = DirectCalls(redis, max_connections=1)

    def commands(prefix: str) -> list[tuple[tuple[object, ...], dict[str, object]]]:
        return [(("SET", f"{prefix}k", "v"), {}), (("GET", f"{prefix}k"), {}), (("INCR", f"{prefix}n"), {})]

    async def client_pipeline(prefix: str) -> list[object]:
        async with redis.pipeline(transaction=False) as pipe:
            for args, _ in commands(prefix):
                pipe.execute_command(*args)
            return await pipe.execute()  # type: ignore[no-any-return]

    async def unused() -> list[object]:
        raise AssertionError("the direct pipeline fell back")

    assert await calls.pipeline(commands("a:"), unused) == await client_pipeline("b:")
    failing = [(("SET", "s", "x"), {}), (("INCR", "s"), {}), (("SET", "after", "1"), {})]
    with pytest.raises(ResponseError):
        await calls.pipeline(failing, unused)
    assert await redis.get("after") == b"1"  # the commands after the error ran
    assert await calls.call("GET", "s") == b"x"  # and every reply was read: the next is its own


async def test_a_pipeline_on_a_dropped_connection_takes_the_fallback(redis: aioredis.Redis) -> None:
    calls = DirectCalls(redis, max_connections=1)
    assert await calls.call("PING") is True
    await redis.execute_command("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
    fell_back: list[bool] = []

    async def fallback() -> list[object]:
        fell_back.append(True)
        return ["through the client"]

    assert await calls.pipeline([(("GET", "k"), {})], fallback) == ["through the client"]
    assert fell_back == [True]
    assert await calls.pipeline([(("SET", "k", "v"), {})], fallback) == [True]  # reconnected


async def test_a_small_pool_lends_at_most_a_quarter_of_its_connections(settings: Settings) -> None:
    client = connect(settings.model_copy(update={"redis_max_connections": 4}))
    try:
        calls = direct_calls(client)
        assert calls.max_connections == 1
        await client.set("k", "v")
        # more calls at once than the pool has connections: all answered, none waits out
        replies = await asyncio.wait_for(asyncio.gather(*(calls.call("GET", "k") for _ in range(12))), 5)
        assert replies == [b"v"] * 12
        assert await client.get("k") == b"v"  # the client's own calls find a connection
    finally:
        await client.aclose()
