"""Fixtures of the bus tests: the push endpoint and fast relay settings.

Redis (``redis``, ``settings``, FLUSHALL per test) comes from tests/integration/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from entail.settings import Settings

from .receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = await Receiver().start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    """Backoff in tens of milliseconds so that retries and dead letters take no time."""
    return settings.model_copy(
        update={
            "relay_backoff_initial_ms": 20,
            "relay_backoff_max_ms": 80,
            "relay_ack_deadline_ms": 5_000,
            "relay_max_attempts": 5,
            "stream_max_len": 10_000,
        }
    )
