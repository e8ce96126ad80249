"""Commands on a few connections kept out of the pool: the client's per-call cost cut.

A command through ``Redis.execute_command`` costs the caller 80-120 µs of CPU
here, a send and a read on the same connection about 25 µs
(``bench/redis_client.py``-style loop on the embedded server, uvloop, hiredis):
the rest is the blocking pool's check-out (a condition, a timeout, a zero-timeout
read to see that the connection holds no stray data), the release, the retry
wrapper and redis-py's observability hooks, on every call. The worker's job
costs three to six durable requests, the backend's submit two or three.

:class:`DirectCalls` keeps up to ``max_connections`` connections checked out of
the client's own pool for good (the pool still owns them: closing the client
closes them) and sends each command on an idle one, parsed by the client's own
``parse_response`` (its reply callbacks, so the reply is what
``execute_command`` gives). What the client's path does for a failure is kept:

* a connection, timeout or socket error (a failover, a restart, a Sentinel
  connection told READONLY) drops that connection and sends the command again
  through ``execute_command``: reconnect, a fresh Sentinel lookup and retries
  within the retry window, as any call. The command may then run twice, as with
  the client's own retries: what goes through here is idempotent
  (:mod:`entail.state.durability`);
* a READONLY reply (a primary endpoint that still points at a demoted node) drops
  every idle connection and is raised, for the caller's retry;
* any other reply error (``NOSCRIPT``, a script's error) leaves the connection
  clean (its reply was read whole) and is raised;
* a call cancelled or failing otherwise while its reply may still be on the way
  drops its connection: no later command can read another one's reply.

With tracing on, every call takes the client's path, which the Redis
instrumentation traces. When every direct connection is busy, a call takes the
client's path too.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import tracing

DIRECT_CONNECTIONS = 8
"""Connections a client keeps for direct calls, taken from its pool's budget (at
most a quarter of ``ENTAIL_REDIS_MAX_CONNECTIONS``)."""


class DirectCalls:
    """``execute_command`` for idempotent commands, on connections of its own."""

    def __init__(self, redis: aioredis.Redis, *, max_connections: int = DIRECT_CONNECTIONS) -> None:
        self.redis = redis
        self.max_connections = max(0, max_connections)
        self._idle: list[Connection] = []
        self._held = 0  # connections taken from the pool (idle or busy)

    async def call(self, *args: Any, **options: Any) -> Any:
        """The reply of one command, as ``redis.execute_command(*args, **options)`` gives it."""
        if tracing.enabled():
            return await self.redis.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        conn = await self._take()
        if conn is None:
            return await self.redis.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        try:
            if not conn.is_connected:
                await conn.connect()  # type: ignore[no-untyped-call]
            await conn.send_packed_command(conn.pack_command(*args), check_health=False)
            reply = await self.redis.parse_response(conn, args[0], **options)
        except ReadOnlyError:
            await self._drop(conn)
            await self._forget_idle()
            raise
        except ResponseError:
            self._idle.append(conn)
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await self._drop(conn)
            return await self.redis.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except BaseException:
            await self._drop(conn)
            raise
        self._idle.append(conn)
        return reply

    async def pipeline(
        self,
        commands: Sequence[tuple[Sequence[Any], Mapping[str, Any]]],
        fallback: Callable[[], Awaitable[list[Any]]],
    ) -> list[Any]:
        """The replies of ``commands`` (``(args, options)``, as a pipeline's command
        stack holds them) sent in one write, as a non-transactional pipeline gives
        them: every reply read, then the first error raised. ``fallback`` runs the
        client's pipeline instead (tracing on, no connection free, or the connection
        failed: it reconnects and retries, and the commands may run twice)."""
        if tracing.enabled():
            return await fallback()
        conn = await self._take()
        if conn is None:
            return await fallback()
        try:
            if not conn.is_connected:
                await conn.connect()  # type: ignore[no-untyped-call]
            await conn.send_packed_command(conn.pack_commands([args for args, _ in commands]), False)
            replies: list[Any] = []
            for args, options in commands:
                try:
                    replies.append(await self.redis.parse_response(conn, args[0], **options))
                except ResponseError as error:
                    replies.append(error)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await self._drop(conn)
            return await fallback()
        except BaseException:
            await self._drop(conn)
            raise
        self._idle.append(conn)  # every reply was read: the connection is clean
        for reply in replies:
            if isinstance(reply, ReadOnlyError):
                await self._forget_idle()
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    async def _forget_idle(self) -> None:
        """Disconnect every idle connection: they reconnect on their next call
        (through a primary endpoint that moved, to the new primary)."""
        for idle in self._idle:
            await idle.disconnect(nowait=True)

    async def _take(self) -> Connection | None:
        if self._idle:
            return self._idle.pop()
        if self._held >= self.max_connections:
            return None
        self._held += 1
        try:
            # the pool's own check-out, once per connection: it stays in the
            # pool's in-use set, so the pool's limit counts it and aclose closes it
            conn: Connection = await self.redis.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            return conn
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self._held -= 1
            return None  # the server is not there now: the client's path, with its retries
        except BaseException:
            self._held -= 1
            raise

    async def _drop(self, conn: Connection) -> None:
        """Close a connection that may hold a stray reply and give it back to the pool."""
        self._held -= 1
        try:
            await conn.disconnect(nowait=True)
        finally:
            await self.redis.connection_pool.release(conn)


_BY_CLIENT: weakref.WeakKeyDictionary[aioredis.Redis, DirectCalls] = weakref.WeakKeyDictionary()


def direct_calls(redis: aioredis.Redis) -> DirectCalls:
    """The client's :class:`DirectCalls` (one per client, however many users it has)."""
    calls = _BY_CLIENT.get(redis)
    if calls is None:
        # at most a quarter of the pool: the client's own calls always find one
        pool_max = getattr(redis.connection_pool, "max_connections", DIRECT_CONNECTIONS * 4)
        calls = _BY_CLIENT[redis] = DirectCalls(redis, max_connections=min(DIRECT_CONNECTIONS, pool_max // 4))
    return calls


async def run_script(redis: aioredis.Redis, text: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """An idempotent Lua script's reply, by SHA1 on a direct connection: its text is
    sent only after a ``NOSCRIPT`` (a server restarted or promoted since), which
    loads it."""
    calls = direct_calls(redis)
    try:
        return await calls.call("EVALSHA", script_sha1(text), len(keys), *keys, *args)
    except NoScriptError:
        return await calls.call("EVAL", text, len(keys), *keys, *args)


_SHA1: dict[str, str] = {}


def script_sha1(text: str) -> str:
    """The script's SHA1 as Redis names it (computed once per script text: the
    scripts are module constants)."""
    sha = _SHA1.get(text)
    if sha is None:
        sha = _SHA1[text] = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    return sha
