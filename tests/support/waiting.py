"""Waiting with a deadline: the one way the tests wait for something to happen.

Tests never assert that something took less than N seconds (a loaded CI machine
makes such a bound flaky); they wait for the outcome until a generous deadline,
and fail then with what they waited for."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None],
    timeout_s: float = 20.0,
    what: str = "condition",
    *,
    interval_s: float = 0.05,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy (which is returned), or
    fail after ``timeout_s`` naming ``what`` and adding ``explain()`` (logs)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            details = f"\n{explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{details}")
        time.sleep(interval_s)


async def eventually(
    check: Callable[[], Awaitable[T | None] | T | None],
    timeout_s: float = 10.0,
    what: str = "condition",
    *,
    interval_s: float = 0.01,
) -> T:
    """:func:`wait_for` inside an event loop: ``check`` may be sync or async."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)
