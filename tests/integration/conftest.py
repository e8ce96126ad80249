"""Shared fixtures of the integration tests: a real valkey-server from the
pinned wheel, one per xdist worker (session scope is per worker process),
emptied before each test that asks for ``settings`` or ``redis``; and one
BigQuery emulator per worker, for the audit tiers (audit/, audit_bigquery/),
started only when a test asks for it; and one local stack of default settings per
worker (``shared_stack``), which the service and client modules that need nothing
else share, each with tenants of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis
from emulators.bigquery_emulator import BigQueryEmulator, available
from redis import Redis

from entail.settings import Settings
from entail.state.client import connect
from entail.state.embedded import EmbeddedRedis

if TYPE_CHECKING:
    from entail_worker.evaluation import Evaluations

    from entail.audit.bigquery_store import BigQueryAuditStore

    from .services.stack import LocalStack


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test server, which is emptied first."""
    with Redis.from_url(redis_url) as client:
        client.flushall()
    return Settings(redis_url=redis_url, data_dir=tmp_path)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """The client the services use (:func:`entail.state.connect`), closed afterwards."""
    client = connect(settings)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def evaluator(settings: Settings) -> AsyncIterator[Evaluations]:
    """The worker's evaluation processes (one), for tests that run jobs in-process;
    its process starts in the background, as in the worker."""
    from entail_worker.evaluation import Evaluations  # the worker's package: only the tests that ask

    evaluations = Evaluations(settings.model_copy(update={"worker_processes": 1}))
    evaluations.start_in_background()
    try:
        yield evaluations
    finally:
        evaluations.close()


@pytest.fixture(scope="session")
def emulator() -> Iterator[BigQueryEmulator]:
    """bqemulator, once per worker (it takes seconds to start)."""
    reason = available()
    if reason:
        pytest.fail(reason)  # make test installs it: a missing emulator is a broken setup, not a skip
    with BigQueryEmulator(project="entail-test") as bq:
        yield bq


@pytest.fixture
def bigquery_store(emulator: BigQueryEmulator) -> Iterator[BigQueryAuditStore]:
    """A BigQuery audit store on a fresh dataset of the emulator, dropped afterwards."""
    # imported here: the BigQuery client is heavy and most integration tests never use it
    from entail.audit.bigquery_store import BigQueryAuditStore

    s = BigQueryAuditStore(emulator.client(), dataset=f"audit_{uuid.uuid4().hex[:10]}", retry=None)
    s.ensure_tables()
    yield s
    s.client.delete_dataset(f"{s.project}.{s.dataset}", delete_contents=True, not_found_ok=True, retry=None)
    s.close()


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack of default settings, once per worker: starting one takes 15-20 s,
    so modules that need nothing else share it, each through
    :meth:`LocalStack.with_own_tenants` (its own tenants, keys, rulesets, decisions).
    A module that changes settings or breaks the stack on purpose starts its own."""
    from .services.stack import local_stack

    # keys added by with_own_tenants are taken within a tenth of a second
    with local_stack(tmp_path_factory.mktemp("shared-stack"), ENTAIL_API_KEYS_RELOAD_S="0.1") as s:
        yield s
