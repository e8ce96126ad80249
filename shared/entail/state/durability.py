"""Durable acknowledgements: a write a client is told about is on a replica first.

Redis replicates asynchronously: a primary that dies right after answering may
take the write with it, and the replica promoted in its place never saw it.
``WAIT n timeout`` closes that gap: it blocks until ``n`` replicas have
acknowledged every write the *same connection* made before it. So a durable
write is one pipeline, on one connection — the write commands, then ``WAIT`` —
and a retry (after a connection error or a failover) re-sends the whole of it,
which is why every durable write is idempotent.

``WAIT`` runs only when replicas exist: the primary's ``connected_slaves`` (from
``INFO replication``) is trusted for ``redis_replica_check_ms``, so a single
server (``make run``) does exactly what it did before, with no extra round trip.
When fewer replicas confirm than asked for (at most as many as are connected),
the count is refreshed once — a replica that just went away is not waited for —
and if still short, :class:`DurabilityNotConfirmed` is raised: the APIs answer 503
rather than promise durability they lack. The write itself may have happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ReadOnlyError

from ..settings import Settings
from .direct_calls import direct_calls, run_script
from .retry import retry_until


class DurabilityNotConfirmed(RuntimeError):
    """Fewer replicas than required confirmed a write within the WAIT timeout."""

    def __init__(self, required: int, confirmed: int, timeout_ms: int) -> None:
        super().__init__(
            f"the write was confirmed by {confirmed} of {required} required Redis replica(s) "
            f"within {timeout_ms} ms; it may not survive a failover"
        )
        self.required, self.confirmed, self.timeout_ms = required, confirmed, timeout_ms


class Durability:
    """Runs durable writes on ``redis`` (the primary client)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        replicas: int = 1,
        timeout_ms: int = 1_000,
        check_ms: int = 1_000,
        retry_window_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.replicas = max(0, replicas)
        self.timeout_ms = timeout_ms
        self.check_s = check_ms / 1000
        self.retry_window_s = retry_window_s
        self._connected: int | None = None
        self._checked_at = 0.0

    @classmethod
    def from_settings(cls, redis: aioredis.Redis, settings: Settings) -> Durability:
        return cls(
            redis,
            replicas=settings.redis_wait_replicas,
            timeout_ms=settings.redis_wait_timeout_ms,
            check_ms=settings.redis_replica_check_ms,
            retry_window_s=settings.redis_retry_window_s,
        )

    async def connected_replicas(self, *, refresh: bool = False) -> int:
        """The primary's connected replicas (cached for ``check_ms``)."""
        now = time.monotonic()
        if refresh or self._connected is None or now - self._checked_at > self.check_s:
            info = await self.redis.info("replication")
            self._connected = int(info.get("connected_slaves", 0))
            self._checked_at = time.monotonic()
        return self._connected

    async def write(self, build: Callable[[Pipeline], Any], *, one_trip: bool = False) -> list[Any]:
        """Queue commands with ``build(pipe)``, run them on one connection followed by
        ``WAIT`` when replicas exist, and return their replies (without WAIT's).
        ``one_trip``: several commands go as one pipeline even with nothing to wait
        for (one round trip instead of one per command).

        Scripts must be queued with ``pipe.eval`` (not EVALSHA): a promoted replica
        has an empty script cache. A READONLY reply (a primary endpoint still
        pointing at a demoted node) is retried within the retry window, like a
        connection error."""
        if self.replicas == 0:
            return await self._run(build, 0, one_trip)
        required = min(self.replicas, await self.connected_replicas())
        if required == 0:
            return await self._run(build, 0, one_trip)
        replies = await self._run(build, required)
        confirmed = int(replies.pop())
        if confirmed < required:
            # a replica may have gone since we counted: ask again, and wait for what is there
            now_required = min(self.replicas, await self.connected_replicas(refresh=True))
            if confirmed < now_required:
                raise DurabilityNotConfirmed(now_required, confirmed, self.timeout_ms)
        return replies

    async def script(self, text: str, keys: Sequence[str], args: Sequence[str | int | bytes]) -> Any:
        """Run one Lua script durably (:meth:`write` with ``pipe.eval``) and return its
        reply.

        With nothing to wait for, it goes as ``EVALSHA`` on a direct connection
        (:mod:`entail.state.direct_calls`): no pipeline object, and the script's
        text is neither packed nor sent nor hashed again by the server on every
        call (~1.5 KB for the worker's start and complete scripts); the text
        follows only after a ``NOSCRIPT`` (a server that restarted or was
        promoted since), which also loads it. With replicas to
        wait for, it is the pipeline with ``EVAL`` and ``WAIT``, as before."""
        if self.replicas > 0 and min(self.replicas, await self.connected_replicas()) > 0:
            (reply,) = await self.write(lambda pipe: pipe.eval(text, len(keys), *keys, *args))
            return reply

        async def direct() -> Any:
            try:
                return await run_script(self.redis, text, keys, args)
            except ReadOnlyError:
                await self.redis.connection_pool.disconnect(inuse_connections=False)
                raise

        return await retry_until(self.retry_window_s, direct, (ReadOnlyError,))

    async def _run(
        self, build: Callable[[Pipeline], Any], wait_for: int, one_trip: bool = False
    ) -> list[Any]:
        async def direct() -> list[Any]:
            # nothing to wait for: the commands as plain calls, which cost what
            # they cost before durability existed (a pipeline adds ~50 us per write),
            # on the direct connections (state/direct_calls.py: ~60 us less each)
            pipe = self.redis.pipeline(transaction=False)
            build(pipe)
            commands = list(pipe.command_stack)
            await pipe.reset()  # type: ignore[no-untyped-call]
            calls = direct_calls(self.redis)
            try:
                return [await calls.call(*args, **options) for args, options in commands]
            except ReadOnlyError:
                await self.redis.connection_pool.disconnect(inuse_connections=False)
                raise

        async def attempt() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as pipe:
                build(pipe)
                if wait_for:
                    pipe.wait(wait_for, self.timeout_ms)
                try:
                    replies: list[Any] = await pipe.execute()
                except ReadOnlyError:
                    await self.redis.connection_pool.disconnect(inuse_connections=False)
                    raise
                return replies

        async def one_trip_direct() -> list[Any]:
            # nothing to wait for, several commands: one write on a direct
            # connection (state/direct_calls.py), the client's pipeline if it fails
            pipe = self.redis.pipeline(transaction=False)
            build(pipe)
            commands = list(pipe.command_stack)
            await pipe.reset()  # type: ignore[no-untyped-call]
            try:
                return await direct_calls(self.redis).pipeline(commands, attempt)
            except ReadOnlyError:
                await self.redis.connection_pool.disconnect(inuse_connections=False)
                raise

        run = attempt if wait_for else one_trip_direct if one_trip else direct
        return await retry_until(self.retry_window_s, run, (ReadOnlyError,))
