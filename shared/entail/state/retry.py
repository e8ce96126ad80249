"""Retrying Redis calls through a failover: for a bounded time, not a count.

A failover takes a second or two (the Sentinels agree the primary is down, then
promote a replica), so a fixed number of quick retries either gives up too soon
or waits too long when Redis is really gone. These policies retry a call until a
deadline, with capped exponential backoff and jitter.

redis-py nests its retries (a command's retry reconnects, and the connect has a
retry of its own); the deadline is kept in a context variable, so a nested retry
shares its caller's deadline instead of starting a new window.

Blind retries re-send a command whose reply was lost, so it may run twice: the
operations that use these clients are idempotent (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry as SyncRetry

T = TypeVar("T")

RETRIED_ERRORS: tuple[type[RedisError], ...] = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)
"""Errors of a failover: the primary is gone, slow, or was demoted to a replica.
(Sentinel-managed connections turn READONLY into a ConnectionError themselves;
a plain URL, such as Memorystore's primary endpoint, sees ReadOnlyError.)"""

BACKOFF_BASE_S = 0.025
BACKOFF_CAP_S = 0.25  # short: the first retry after the promotion should come soon

_deadline: ContextVar[float | None] = ContextVar("entail_redis_retry_deadline", default=None)


def backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S)


class DeadlineRetry(AsyncRetry):
    """redis-py's asyncio ``Retry``, bounded by ``window_s`` instead of a count."""

    def __init__(self, window_s: float) -> None:
        super().__init__(backoff(), retries=-1, supported_errors=RETRIED_ERRORS)
        self.window_s = window_s

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, DeadlineRetry) and other.window_s == self.window_s

    __hash__ = AsyncRetry.__hash__

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        outer = _deadline.get()
        deadline = outer if outer is not None else time.monotonic() + self.window_s
        token = _deadline.set(deadline) if outer is None else None
        try:
            failures = 0
            while True:
                try:
                    return await do()
                except self._supported_errors as error:
                    if is_retryable is not None and not is_retryable(error):
                        raise
                    failures += 1
                    await (fail(error, failures) if with_failure_count else fail(error))
                    pause = self._backoff.compute(failures)
                    if time.monotonic() + pause > deadline:
                        raise error
                    await asyncio.sleep(pause)
        finally:
            if token is not None:
                _deadline.reset(token)


class SyncDeadlineRetry(SyncRetry):
    """The same policy for the synchronous client."""

    def __init__(self, window_s: float) -> None:
        super().__init__(backoff(), retries=-1, supported_errors=RETRIED_ERRORS)
        self.window_s = window_s

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, SyncDeadlineRetry) and other.window_s == self.window_s

    __hash__ = SyncRetry.__hash__

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        outer = _deadline.get()
        deadline = outer if outer is not None else time.monotonic() + self.window_s
        token = _deadline.set(deadline) if outer is None else None
        try:
            failures = 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if is_retryable is not None and not is_retryable(error):
                        raise
                    failures += 1
                    if with_failure_count:
                        fail(error, failures)
                    else:
                        fail(error)
                    pause = self._backoff.compute(failures)
                    if time.monotonic() + pause > deadline:
                        raise error
                    time.sleep(pause)
        finally:
            if token is not None:
                _deadline.reset(token)


def remaining_s() -> float | None:
    """Seconds left of the retry window of the call in progress (None outside one)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


async def retry_until(
    window_s: float, attempt: Callable[[], Awaitable[T]], errors: tuple[type[BaseException], ...]
) -> T:
    """Run ``attempt`` until it does not raise one of ``errors`` or ``window_s`` has
    passed (then the last error). Calls inside share the deadline."""
    outer = _deadline.get()
    deadline = outer if outer is not None else time.monotonic() + window_s
    token = _deadline.set(deadline) if outer is None else None
    policy = backoff()
    try:
        failures = 0
        while True:
            try:
                return await attempt()
            except errors:
                failures += 1
                pause = policy.compute(failures)
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
    finally:
        if token is not None:
            _deadline.reset(token)
